"""Each environment reaches AWS as its own role (DESIGN: "Run time"): the task roles of the
baked iam/task-roles.yaml, in an endpoint that enforces them (moto's server, which answers
STS's AssumeRole too), reached as MWAA's tasks reach AWS: the real Amazon provider of the
baked Airflow, with the execution role's credentials and the connections DEV_aws and
PROD_aws that the baked docs/run-time.md has users create (role_arn in the extra).

The execution role here is an IAM user of the endpoint, its ARN the stack's
ExecutionRoleArn. Each role's trust policy names it, which is all AWS needs within one
account; moto also wants the caller's own policy to allow sts:AssumeRole, so the user has
that, and nothing else: whatever it reaches, it reaches through a task role.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.helpers import NEWEST, OLDEST, VENVS, bake, filled, make, user_environment

ROLES = {"DEV": "DevTaskRole", "PROD": "ProdTaskRole"}
# One data bucket, IAM user and roles per test: the endpoint lives as long as the run.
NUMBERS = itertools.count()
# Each environment's data, and a sandbox's inside DEV's.
KEYS = ("dev/orders.json", "prod/orders.json", "dev/sbx_ann/orders.json")

# What a task does with an environment's connection: read and write each key through the
# Amazon provider's S3Hook; "allowed", or "denied" where AWS answers 403.
TRY_EVERY_KEY = """
import json, sys
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from botocore.exceptions import ClientError

bucket, keys = sys.argv[1], sys.argv[2:]
found = {}
for conn_id in ("DEV_aws", "PROD_aws"):
    hook = S3Hook(aws_conn_id=conn_id)
    for key in keys:
        for action, call in [
            ("read", lambda: hook.read_key(key, bucket_name=bucket)),
            ("write", lambda: hook.load_string("{}", key=key, bucket_name=bucket, replace=True)),
        ]:
            try:
                call()
                found[f"{conn_id} {action} {key}"] = "allowed"
            except ClientError as error:
                status = error.response["ResponseMetadata"]["HTTPStatusCode"]
                found[f"{conn_id} {action} {key}"] = "denied" if status == 403 else str(error)
print(json.dumps(found))
"""

# What the scheduler runs: each deployed copy's task of the example DAG lake_heartbeat.
RUN_HEARTBEATS = """
import sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2
    from airflow.models.dagbag import DagBag

dags, owners = sys.argv[1], sys.argv[2:]
sys.path.insert(0, dags)  # as MWAA puts its DAGs folder on the path
bag = DagBag(dag_folder=dags)
assert not bag.import_errors, bag.import_errors
for owner in owners:
    bag.dags[f"{owner}_lake_heartbeat"].get_task(f"{owner}_write_heartbeat").python_callable()
"""


class Aws:
    """The test endpoint as its administrator sees it, and as MWAA's execution role."""

    def __init__(self, endpoint: dict[str, str], project: Path, bucket: str, home: Path) -> None:
        self.endpoint, self.bucket, self.home = endpoint, bucket, home
        admin = {
            "endpoint_url": endpoint["AWS_ENDPOINT_URL"],
            "region_name": endpoint["AWS_REGION"],
            "aws_access_key_id": endpoint["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": endpoint["AWS_SECRET_ACCESS_KEY"],
        }
        self.s3 = boto3.client("s3", **admin)
        self.s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": admin["region_name"]}
        )
        for key in KEYS:
            self.s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
        iam = boto3.client("iam", **admin)
        execution = iam.create_user(UserName=f"mwaa-execution-{bucket}")["User"]
        iam.put_user_policy(
            UserName=execution["UserName"],
            PolicyName="assume-the-task-roles",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
                }
            ),
        )
        self.keys = iam.create_access_key(UserName=execution["UserName"])["AccessKey"]
        stack = yaml.safe_load((project / "iam" / "task-roles.yaml").read_text())
        parameters = {
            "AWS::Partition": "aws",
            "ExecutionRoleArn": execution["Arn"],
            "DataBucketName": bucket,
        }
        self.role_arns = {}
        for env, resource in ROLES.items():
            role = filled(stack["Resources"][resource]["Properties"], parameters)
            name = f"{resource}-{bucket}"
            self.role_arns[env] = iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"])
            )["Role"]["Arn"]
            for policy in role["Policies"]:
                iam.put_role_policy(
                    RoleName=name,
                    PolicyName=policy["PolicyName"],
                    PolicyDocument=json.dumps(policy["PolicyDocument"]),
                )

    @contextmanager
    def enforcing_iam(self) -> Iterator[None]:
        """Every request checked against its caller's policies, until exit."""
        self._set_auth("0")
        try:
            yield
        finally:
            self._set_auth("inf")

    def as_execution_role(self, version: str, script: str, *arguments: str) -> str:
        """Run `script` in the baked Airflow of `version` as a task on MWAA runs, with the
        execution role's credentials and the two environments' AWS connections; the last
        line it prints."""
        connections = {
            f"AIRFLOW_CONN_{env}_AWS": json.dumps(
                {"conn_type": "aws", "extra": {"role_arn": arn, "region_name": "eu-west-1"}}
            )
            for env, arn in self.role_arns.items()
        }
        done = subprocess.run(
            [VENVS / f"airflow-{version}" / "bin" / "python", "-c", script, *arguments],
            env=user_environment()
            | connections
            | {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AWS_ENDPOINT_URL": self.endpoint["AWS_ENDPOINT_URL"],
                "AWS_REGION": self.endpoint["AWS_REGION"],
                "AWS_ACCESS_KEY_ID": self.keys["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": self.keys["SecretAccessKey"],
            },
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        return done.stdout.splitlines()[-1] if done.stdout else ""  # after Airflow's log lines

    def read(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def _set_auth(self, free_requests: str) -> None:
        url = f"{self.endpoint['AWS_ENDPOINT_URL']}/moto-api/reset-auth"
        headers = {"Content-Type": "text/plain"}  # not a form: moto reads the raw body
        urllib.request.urlopen(
            urllib.request.Request(url, free_requests.encode(), headers, method="POST")
        ).close()


@pytest.fixture
def aws(output: Path, s3_endpoint: dict[str, str], tmp_path: Path) -> tuple[Path, Aws]:
    """A project baked with a data bucket of its own, and that bucket and the project's task
    roles in the endpoint's IAM."""
    bucket = f"lake-{next(NUMBERS)}-{os.getpid()}"
    project = bake(output, data_bucket=bucket)
    return project, Aws(s3_endpoint, project, bucket, tmp_path / "airflow-home")


@pytest.mark.parametrize("version", [NEWEST, OLDEST])
def test_each_environments_connection_reaches_its_own_data_and_is_denied_the_others(
    aws: tuple[Path, Aws], version: str
) -> None:
    _, endpoint = aws
    with endpoint.enforcing_iam():
        found = json.loads(
            endpoint.as_execution_role(version, TRY_EVERY_KEY, endpoint.bucket, *KEYS)
        )
    for action in ("read", "write"):
        assert {key: found[f"DEV_aws {action} {key}"] for key in KEYS} == {
            "dev/orders.json": "allowed",
            "prod/orders.json": "denied",
            "dev/sbx_ann/orders.json": "allowed",  # a sandbox's data, inside DEV's
        }
        assert {key: found[f"PROD_aws {action} {key}"] for key in KEYS} == {
            "dev/orders.json": "denied",
            "prod/orders.json": "allowed",
            "dev/sbx_ann/orders.json": "denied",
        }


def test_the_example_dag_writes_as_its_environments_role_and_a_sandbox_as_devs(
    aws: tuple[Path, Aws],
) -> None:
    """Each copy of lake_heartbeat, as deployed, writes its heartbeat with the connection
    conventions.aws_conn_id gives it, where conventions.data_prefix says: the sandbox's
    under DEV's data, as DEV's role, which is all that role may write."""
    project, endpoint = aws
    for deployed in (
        make(project, "deploy-dev", "deploy-prod", airflow_version=NEWEST),
        make(project, "deploy-dev", airflow_version=NEWEST, SANDBOX="ann"),
    ):
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    dags = str(project / "local_bucket" / "dags")
    with endpoint.enforcing_iam():
        endpoint.as_execution_role(NEWEST, RUN_HEARTBEATS, dags, "DEV", "PROD", "SBX_ann")
    written = {
        key: endpoint.read(key)["environment"]
        for key in ("dev/heartbeat.json", "prod/heartbeat.json", "dev/sbx_ann/heartbeat.json")
    }
    assert written == {
        "dev/heartbeat.json": "DEV",
        "prod/heartbeat.json": "PROD",
        "dev/sbx_ann/heartbeat.json": "SBX_ann",
    }
