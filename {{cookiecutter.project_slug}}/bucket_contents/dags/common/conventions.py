"""The naming convention that keeps DEV and PROD apart inside one Airflow.

Every DAG id, task id, tag set, connection id and cross-DAG reference starts with the
environment, `DEV_` or `PROD_`, taken from the DAG file's `DEV` flag.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

DBT_CLOUD_ACCOUNT_ID = {{ cookiecutter.dbt_cloud_account_id }}


def environment(dev: bool) -> str:
    """The prefix for everything a DAG file creates: "DEV" or "PROD"."""
    return "DEV" if dev else "PROD"


def dbt_cloud_conn_id(dev_prod_flag: str) -> str:
    """MWAA has one secrets backend for both environments: their connections differ by id."""
    return f"{dev_prod_flag}_{{ cookiecutter.dbt_cloud_conn_id }}"


def default_args(dev_prod_flag: str) -> dict[str, Any]:
    """Task defaults: PROD retries before it pages anyone, DEV fails fast."""
    return {
        "owner": "data-platform",
        "retries": 2 if dev_prod_flag == "PROD" else 0,
        "retry_delay": timedelta(minutes=5),
    }
