"""The deploy roles of iam/deploy-roles.yaml, enforced (DESIGN: the DEV role can write only
dags/DEV_* and the story branches' sandboxes dags/SBX_*; the PROD role dags/PROD_* and the
instance-wide files).

The endpoint checks every request against the policies of the caller, as AWS does: the
roles' own policy documents are loaded into its IAM, and each deploy runs with their keys.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from mwaa_deploy.bucket import history, sync
from mwaa_deploy.bucket.s3_bucket import S3Bucket
from mwaa_deploy.exceptions import BucketError
from mwaa_deploy.instance.instance_files import REQUIREMENTS
from tests.deploy_tool.helpers import FOREIGN, SETTINGS, contents, deploy, new_s3_bucket
from tests.deploy_tool.s3_endpoint import S3Endpoint
from tests.helpers import filled

ACCOUNT = "123456789012"  # the endpoint's account
ROLES = {"DEV": "DevDeployRole", "PROD": "ProdDeployRole"}


def policy(env: str, bucket: str) -> dict[str, Any]:
    """The role's policy document, with its parameters as CloudFormation would fill them."""
    template = yaml.safe_load((SETTINGS.root / "iam" / "deploy-roles.yaml").read_text())
    [document] = template["Resources"][ROLES[env]]["Properties"]["Policies"]
    values = {
        "AWS::Partition": "aws",
        "AWS::Region": SETTINGS.aws_region,
        "AWS::AccountId": ACCOUNT,
        "BucketName": bucket,
        "EnvironmentName": SETTINGS.mwaa_environment,
        "DeveloperRoleName": SETTINGS.developer_role,
    }
    return filled(document["PolicyDocument"], values)


@pytest.fixture
def admin(
    aws: S3Endpoint,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
) -> S3Bucket:
    """A bucket holding PROD's and others' files, seen by its administrator; a deploy user
    per role in the endpoint's IAM, with that role's policy."""
    bucket = S3Bucket.open(new_s3_bucket(), SETTINGS.aws_region)
    for key, body in FOREIGN.items():
        bucket.put(key, body)
    deploy(bucket, "PROD")
    iam = boto3.client("iam", region_name=SETTINGS.aws_region)
    for env in ROLES:
        iam.create_user(UserName=user(env, bucket.name))
        iam.put_user_policy(
            UserName=user(env, bucket.name),
            PolicyName=f"deploy-{env.lower()}",
            PolicyDocument=json.dumps(policy(env, bucket.name)),
        )
    return bucket


def user(env: str, bucket: str) -> str:
    return f"deploy-{env.lower()}-{bucket}"


@pytest.fixture
def as_role(admin: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], S3Bucket]:
    """Open the bucket with the keys of the `env` deploy role."""
    iam = boto3.client("iam", region_name=SETTINGS.aws_region)
    keys = {
        env: iam.create_access_key(UserName=user(env, admin.name))["AccessKey"] for env in ROLES
    }

    def open_as(env: str) -> S3Bucket:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys[env]["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys[env]["SecretAccessKey"])
        return S3Bucket.open(admin.name, SETTINGS.aws_region)

    return open_as


def denied(action: Callable[[], Any]) -> bool:
    try:
        action()
    except ClientError as error:
        return error.response["Error"]["Code"] == "AccessDenied"
    return False


def test_the_dev_role_deploys_dev_and_every_sandbox_and_cannot_touch_prod_the_instance_or_others(
    admin: S3Bucket, as_role: Callable[[str], S3Bucket], aws: S3Endpoint
) -> None:
    deploy(admin, "SBX_bob")
    bobs = admin.list("dags/SBX_bob_")
    before = contents(admin)
    with aws.enforcing_iam():
        dev = as_role("DEV")
        assert deploy(dev, "DEV").uploads
        assert deploy(dev, "DEV").uploads == {}
        assert deploy(dev, "SBX_ann").uploads
        s3 = dev.client
        # What cleaning a sandbox needs, one key at a time: moto authorizes a multi-object
        # delete against the bucket, not against each key as S3 does.
        for key in bobs:
            s3.delete_object(Bucket=dev.name, Key=key)
        for key in ("dags/PROD_dbt_models.py", "dags/PROD_new.py", "requirements.txt"):
            assert denied(lambda key=key: s3.put_object(Bucket=dev.name, Key=key, Body=b"x"))
        for key in ("dags/PROD_dbt_models.py", "dags/team_b_report.py", "plugins.zip"):
            assert denied(lambda key=key: s3.delete_object(Bucket=dev.name, Key=key))
    after = contents(admin)
    assert not any(key.startswith("dags/SBX_bob_") for key in after)
    mine = ("dags/DEV_", "dags/SBX_ann_", "dags/SBX_bob_")
    assert {k: v for k, v in after.items() if not k.startswith(mine)} == {
        k: v for k, v in before.items() if not k.startswith(mine)
    }


def test_the_prod_role_deploys_prod_and_the_instance_files_and_cannot_touch_dev_or_sandboxes(
    admin: S3Bucket, as_role: Callable[[str], S3Bucket], aws: S3Endpoint
) -> None:
    deploy(admin, "DEV")
    deploy(admin, "SBX_ann")
    before = contents(admin)
    with aws.enforcing_iam():
        prod = as_role("PROD")
        assert deploy(prod, "PROD").uploads == {}  # up to date, which it could read
        assert prod.put(REQUIREMENTS, b"six\n").version
        assert prod.get(REQUIREMENTS) == b"six\n"
        s3 = prod.client
        for key in ("dags/DEV_new.py", "dags/SBX_ann_new.py", "dags/team_b_report.py"):
            assert denied(lambda key=key: s3.put_object(Bucket=prod.name, Key=key, Body=b"x"))
        for key in ("dags/DEV_dbt_models.py", "dags/SBX_ann_dbt_models.py"):
            assert denied(lambda key=key: s3.delete_object(Bucket=prod.name, Key=key))
    after = contents(admin)
    assert after.pop(REQUIREMENTS) == b"six\n"
    before.pop(REQUIREMENTS)
    assert after == before


def test_the_dev_role_rolls_back_dev_and_cannot_roll_back_prod(
    admin: S3Bucket, as_role: Callable[[str], S3Bucket], aws: S3Endpoint, tmp_path: Path
) -> None:
    deploy(admin, "DEV")
    one_more = tmp_path / "sources"
    shutil.copytree(SETTINGS.sources, one_more)
    # A change, not a new file: moto authorizes a multi-object delete against the bucket,
    # so a rollback that deletes cannot run under its IAM (see the test above).
    with open(one_more / "dags" / "dbt_models.py", "a") as edited:
        edited.write("# reviewed\n")
    deploy(admin, "DEV", one_more)
    deploy(admin, "PROD", one_more)
    before = contents(admin)
    with aws.enforcing_iam():
        dev = as_role("DEV")
        with pytest.raises(BucketError, match="access denied"):
            sync.rollback(dev, "PROD", "")
        assert history.read(dev, "DEV") is not None
        _, rolled_back = sync.rollback(dev, "DEV", "")
    assert rolled_back.changed == ["dags/DEV_dbt_models.py"]
    after = contents(admin)
    assert {k: v for k, v in after.items() if not k.startswith("dags/DEV_")} == {
        k: v for k, v in before.items() if not k.startswith("dags/DEV_")
    }


def test_keys_outside_the_policy_are_denied_to_anyone_else(
    admin: S3Bucket, aws: S3Endpoint
) -> None:
    """The check is real: keys the endpoint's IAM does not know cannot even find the bucket."""
    with aws.enforcing_iam(), pytest.raises(BucketError, match="access denied"):
        S3Bucket.open(admin.name, SETTINGS.aws_region)


def test_of_mwaa_the_dev_role_may_only_ask_what_the_instance_parsed_and_delete_dags() -> None:
    """The parse gate's one permission: airflow:InvokeRestApi as Airflow's Viewer role of
    this environment (reading, never triggering); removing a sandbox deletes its DAGs, as the
    project's developer role, whose DAGs the platform's policy narrows to DEV's and the
    sandboxes'. Only PROD updates the environment, and sets DEV's pool, which takes
    Airflow's Op role (Viewer may only read pools)."""

    def airflow_grants(env: str) -> list[tuple[str, str]]:
        statements = policy(env, "any-bucket")["Statement"]
        return sorted(
            (action, resource)
            for statement in statements
            for action in as_list(statement["Action"])
            if action.startswith("airflow:")
            for resource in as_list(statement["Resource"])
        )

    arn = f"arn:aws:airflow:{SETTINGS.aws_region}:{ACCOUNT}"
    environment = f"{arn}:environment/{SETTINGS.mwaa_environment}"
    role = f"{arn}:role/{SETTINGS.mwaa_environment}"
    assert airflow_grants("DEV") == [
        ("airflow:InvokeRestApi", f"{role}/{SETTINGS.developer_role}"),
        ("airflow:InvokeRestApi", f"{role}/Viewer"),
    ]
    assert airflow_grants("PROD") == [
        ("airflow:GetEnvironment", environment),
        ("airflow:InvokeRestApi", f"{role}/Op"),
        ("airflow:UpdateEnvironment", environment),
    ]


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value
