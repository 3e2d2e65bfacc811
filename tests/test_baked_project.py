"""The baked project works as a new user finds it: deploys, lint and tests, on real Airflow."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from tests.helpers import NEWEST, OLDEST, TEMPLATE, bake, commit_all, make, user_environment

SCRATCH = (
    ".git", ".venv", ".cache", "demo", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache"
)  # fmt: skip
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def test_defaults_deploy_dev_and_prod_side_by_side_to_the_local_bucket(output: Path) -> None:
    project = bake(output)
    result = make(project, "deploy-dev", "deploy-prod", airflow_version=NEWEST)
    assert result.returncode == 0, result.stdout + result.stderr
    dags = {p.name for p in (project / "local_bucket" / "dags").iterdir()}
    assert {"DEV_dbt_models.py", "PROD_dbt_models.py", "DEV_common", "PROD_common"} <= dags
    prod = (project / "local_bucket/dags/PROD_dbt_models.py").read_text()
    assert "\nDEV = False\n" in prod and "from PROD_common.conventions import" in prod

    again = make(project, "deploy-dev", airflow_version=NEWEST)
    assert "DEV deployed: 0 uploaded" in again.stdout, again.stdout


def test_a_bucket_answer_deploys_to_s3_through_the_sdk_endpoint(
    output: Path, s3_endpoint: dict[str, str]
) -> None:
    project = bake(output, s3_bucket="acme-mwaa-dags")
    commit_all(project)  # deploy-prod to S3 runs from a clean checkout of the default branch
    s3 = boto3.client("s3", endpoint_url=s3_endpoint["AWS_ENDPOINT_URL"], **CREDENTIALS)
    s3.create_bucket(
        Bucket="acme-mwaa-dags", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_bucket_versioning(Bucket="acme-mwaa-dags", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="acme-mwaa-dags", Key="requirements.txt", Body=b"# instance-wide\n")

    def run(*targets: str) -> str:
        result = make(project, *targets, airflow_version=NEWEST, **s3_endpoint)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def keys() -> list[str]:
        return [o["Key"] for o in s3.list_objects_v2(Bucket="acme-mwaa-dags")["Contents"]]

    assert "to s3://acme-mwaa-dags" in run("deploy-dev", "deploy-prod")
    assert {"dags/DEV_dbt_models.py", "dags/PROD_dbt_models.py"} <= set(keys())
    s3.put_object(Bucket="acme-mwaa-dags", Key="dags/PROD_dbt_models.py", Body=b"# by hand\n")
    plan = run("plan-prod")
    assert "changed  dags/PROD_dbt_models.py" in plan and "0 new, 1 changed, 0 deleted" in plan
    assert "PROD deployed: 1 uploaded (0 new, 1 changed)" in run("deploy-prod")
    run("clean-dev")
    assert not [key for key in keys() if key.startswith("dags/DEV_")]
    body = s3.get_object(Bucket="acme-mwaa-dags", Key="requirements.txt")["Body"].read()
    assert body == b"# instance-wide\n"


def test_deploy_prod_to_s3_off_the_default_branch_is_refused_unless_forced(
    output: Path, s3_endpoint: dict[str, str]
) -> None:
    project = bake(output, s3_bucket="acme-mwaa-off-path")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint["AWS_ENDPOINT_URL"], **CREDENTIALS)
    s3.create_bucket(
        Bucket="acme-mwaa-off-path", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    s3.put_bucket_versioning(
        Bucket="acme-mwaa-off-path", VersioningConfiguration={"Status": "Enabled"}
    )
    commit_all(project)
    subprocess.run(["git", "switch", "--quiet", "-c", "story/new-dag"], cwd=project, check=True)

    refused = make(project, "deploy-prod", airflow_version=NEWEST, **s3_endpoint)
    assert refused.returncode != 0
    assert "deploy-prod runs from main, not from story/new-dag: merge first" in refused.stderr
    assert "Contents" not in s3.list_objects_v2(Bucket="acme-mwaa-off-path")
    forced = make(project, "deploy-prod", "FORCE=1", airflow_version=NEWEST, **s3_endpoint)
    assert forced.returncode == 0, forced.stderr
    assert "PROD deployed" in forced.stdout


def test_a_broken_dag_file_stops_the_deploy_with_file_line_and_fix(output: Path) -> None:
    project = bake(output)
    (project / "bucket_contents/dags/adhoc.py").write_text(
        "import os\n\nif os.environ:\n    DEV = True\n"
    )
    result = make(project, "deploy-prod", airflow_version=NEWEST)
    assert result.returncode != 0
    assert "bucket_contents/dags/adhoc.py:4: `DEV` is assigned inside a block" in result.stderr
    assert "nothing was deployed to PROD" in result.stderr
    assert not (project / "local_bucket").exists()


@pytest.mark.parametrize("version", [NEWEST, OLDEST])
def test_baked_project_lint_and_tests_pass_on_its_real_airflow(output: Path, version: str) -> None:
    project = bake(output, airflow_version=version)
    result = make(project, "install", "lint", "test", airflow_version=version)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


def test_make_alone_lists_every_target_with_one_line(output: Path) -> None:
    project = bake(output)
    result = subprocess.run(
        ["make"], cwd=project, env=user_environment(), capture_output=True, text=True, check=True
    )
    listed = [line.split()[1] for line in result.stdout.splitlines()]
    makefile = (project / "Makefile").read_text().replace("\\\n", " ")
    phony = next(line for line in makefile.splitlines() if line.startswith(".PHONY:"))
    assert listed == phony.split()[1:]


def test_cruft_create_bakes_the_template(tmp_path: Path) -> None:
    # cruft records the template's git commit: give it a repository, as a user's clone is.
    template = Path(
        shutil.copytree(TEMPLATE, tmp_path / "template", ignore=shutil.ignore_patterns(*SCRATCH))
    )
    commit_all(template)
    result = subprocess.run(
        [sys.executable, "-m", "cruft", "create", "--no-input", str(template)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    baked = tmp_path / "data-platform-airflow"
    assert (baked / ".cruft.json").is_file() and (baked / "bucket_contents/dags").is_dir()
