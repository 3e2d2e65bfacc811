"""Write a heartbeat into this environment's part of the data lake every morning, for the
lake's readers to see that its pipelines run.

Written once, deployed as DEV_lake_heartbeat with `DEV = True`, as PROD_lake_heartbeat
with the flag rewritten to `DEV = False` by the PROD deploy, and in a story branch's
sandbox as SBX_<name>_lake_heartbeat, a DEV copy. Its AWS call runs as the environment's
own role, through the environment's own connection (DEV_aws, PROD_aws): DEV's copy can
write only under s3://{{ cookiecutter.data_bucket }}/dev/ (a sandbox's under
dev/sbx_<name>/), PROD's only under .../prod/.
"""

from __future__ import annotations

import json

import pendulum
{%- if cookiecutter.__airflow_major == "2" %}
from airflow import DAG
from airflow.decorators import task
{%- else %}
from airflow.sdk import DAG, task
{%- endif %}

from common.conventions import (
    DATA_BUCKET,
    aws_conn_id,
    data_prefix,
    environment,
)

DEV = True

dev_prod_flag = environment(DEV)
HEARTBEAT_KEY = f"{data_prefix(dev_prod_flag)}heartbeat.json"

with DAG(
    dag_id=f"{dev_prod_flag}_lake_heartbeat",
    description="A heartbeat in the environment's part of the data lake",
    schedule="0 7 * * *",  # PROD's clock; DEV's copy runs when started
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=[dev_prod_flag, "lake"],
):

    @task(task_id=f"{dev_prod_flag}_write_heartbeat")
    def write_heartbeat() -> None:
        # Imported here, not at the top: the scheduler parses this file again and again,
        # and the AWS SDK is slow to import.
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        heartbeat = {"environment": dev_prod_flag, "at": pendulum.now("UTC").isoformat()}
        S3Hook(aws_conn_id=aws_conn_id(dev_prod_flag)).load_string(
            json.dumps(heartbeat), key=HEARTBEAT_KEY, bucket_name=DATA_BUCKET, replace=True
        )

    write_heartbeat()
