"""Refresh the raw sources in dbt Cloud every morning, then start the model build.

Written once, deployed as DEV_dbt_sources with `DEV = True`, as PROD_dbt_sources
with the flag rewritten to `DEV = False` by the PROD deploy, and in a story branch's
sandbox as SBX_<name>_dbt_sources, a DEV copy.
Everything environment-specific below follows from that one flag: PROD's copy runs every
morning, DEV's when started by hand (the platform's policy: docs/run-time.md).
"""

from __future__ import annotations

import pendulum
{%- if cookiecutter.__airflow_major == "2" %}
from airflow import DAG
{%- endif %}
from airflow.providers.dbt.cloud.operators.dbt import DbtCloudRunJobOperator
from airflow.providers.dbt.cloud.sensors.dbt import DbtCloudJobRunSensor
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
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
    dag_id=f"{dev_prod_flag}_dbt_sources",
    description="dbt Cloud: source freshness and snapshots, then the model build",
    schedule="0 4 * * *",  # PROD's clock; DEV's copy runs when started
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=[dev_prod_flag, "dbt"],
):
    start_run = DbtCloudRunJobOperator(
        task_id=f"{dev_prod_flag}_start_sources_run",
        dbt_cloud_conn_id=dbt_cloud_conn_id(dev_prod_flag),
        account_id=DBT_CLOUD_ACCOUNT_ID,
        job_id=DBT_JOB_ID,
        steps_override=["dbt source freshness", "dbt snapshot"],
        wait_for_termination=False,
    )

    # Deferrable: the wait happens in the triggerer, so no worker slot is held for it.
    wait_for_run = DbtCloudJobRunSensor(
        task_id=f"{dev_prod_flag}_wait_for_sources_run",
        dbt_cloud_conn_id=dbt_cloud_conn_id(dev_prod_flag),
        account_id=DBT_CLOUD_ACCOUNT_ID,
        run_id=start_run.output,
        deferrable=True,
        timeout=2 * 60 * 60,
    )

    start_models = TriggerDagRunOperator(
        task_id=f"{dev_prod_flag}_trigger_models",
        trigger_dag_id=f"{dev_prod_flag}_dbt_models",
    )

    start_run >> wait_for_run >> start_models
