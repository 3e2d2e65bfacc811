"""The naming convention that keeps DEV, PROD and the story branches' sandboxes apart
inside one Airflow.

Every DAG id, task id, tag set and cross-DAG reference starts with `dev_prod_flag`:
`PROD` where the DAG file's flag says `DEV = False`, else `DEV`, or in the sandbox of a
story branch `SBX_<name>`. A sandbox is a DEV copy: it uses DEV's connections and settings.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

DBT_CLOUD_ACCOUNT_ID = {{ cookiecutter.dbt_cloud_account_id }}


def environment(dev: bool) -> str:
    """The prefix for everything a DAG file creates: "DEV", "PROD" or "SBX_<name>"."""
    if not dev:
        return "PROD"
    # The deploy ships this package once per owner, as DEV_common, PROD_common or
    # SBX_<name>_common (a sandbox name has no "_"): its own name says whose copy it is.
    package = __name__.split(".")[0]
    return "_".join(package.split("_")[:2]) if package.startswith("SBX_") else "DEV"


def settings_of(dev_prod_flag: str) -> str:
    """Whose connections and settings a DAG uses: PROD's, or DEV's (sandboxes included)."""
    return "PROD" if dev_prod_flag == "PROD" else "DEV"


def dbt_cloud_conn_id(dev_prod_flag: str) -> str:
    """MWAA has one secrets backend for both environments: their connections differ by id."""
    return f"{settings_of(dev_prod_flag)}_{{ cookiecutter.dbt_cloud_conn_id }}"


def default_args(dev_prod_flag: str) -> dict[str, Any]:
    """Task defaults: PROD retries before it pages anyone, DEV and sandboxes fail fast."""
    return {
        "owner": "data-platform",
        "retries": 2 if settings_of(dev_prod_flag) == "PROD" else 0,
        "retry_delay": timedelta(minutes=5),
    }
