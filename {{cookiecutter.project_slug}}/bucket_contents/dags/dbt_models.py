"""Build the warehouse models in dbt Cloud, when the sources DAG says they are fresh.

Written once, deployed as DEV_dbt_models with `DEV = True`, as PROD_dbt_models
with the flag rewritten to `DEV = False` by the PROD deploy, and in a story branch's
sandbox as SBX_<name>_dbt_models, a DEV copy.
"""

from __future__ import annotations

import pendulum
{%- if cookiecutter.__airflow_major == "2" %}
from airflow import DAG
{%- endif %}
from airflow.providers.dbt.cloud.operators.dbt import DbtCloudRunJobOperator
{%- if cookiecutter.__airflow_major != "2" %}
from airflow.sdk import DAG
{%- endif %}

from common.conventions import (
    DBT_CLOUD_ACCOUNT_ID,
    dbt_cloud_conn_id,
    environment,
)

DEV = True

dev_prod_flag = environment(DEV)
DBT_JOB_ID = {{ cookiecutter.dev_dbt_job_id }} if DEV else {{ cookiecutter.prod_dbt_job_id }}

with DAG(
    dag_id=f"{dev_prod_flag}_dbt_models",
    description="dbt Cloud: build and test the models",
    schedule=None,  # started by the sources DAG of the same environment
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=[dev_prod_flag, "dbt"],
):
    # Deferrable: while dbt Cloud runs, the wait sits in the triggerer, not in a worker slot.
    DbtCloudRunJobOperator(
        task_id=f"{dev_prod_flag}_build_models",
        dbt_cloud_conn_id=dbt_cloud_conn_id(dev_prod_flag),
        account_id=DBT_CLOUD_ACCOUNT_ID,
        job_id=DBT_JOB_ID,
        wait_for_termination=True,
        deferrable=True,
        check_interval=60,
        timeout=3 * 60 * 60,
    )
