"""Baking: every answer the template accepts gives a complete project; bad answers bake nothing."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import boto3
import pytest

from tests.helpers import (
    AIRFLOW_VERSIONS,
    DEFAULTS_SLUG,
    MWAA_CONSTRAINTS,
    TEMPLATE,
    bake,
    bake_cli,
)

BAKED_FILES = {
    ".gitignore",
    ".github/workflows/ci.yml",
    ".github/workflows/deploy-dev.yml",
    ".github/workflows/deploy-prod.yml",
    ".github/workflows/remove-sandbox.yml",
    ".github/workflows/rollback-prod.yml",
    "iam/deploy-roles.yaml",
    "iam/task-roles.yaml",
    "iam/airflow-roles.yaml",
    "Makefile",
    "README.md",
    "docs/adopting.md",
    "docs/airflow-roles.md",
    "docs/ci.md",
    "docs/deploying.md",
    "docs/history-and-rollback.md",
    "docs/instance-wide-files.md",
    "docs/local-airflow.md",
    "docs/run-time.md",
    "docs/sandboxes.md",
    "docs/settings.md",
    "docs/upgrades.md",
    "docs/writing-dags.md",
    "airflow_settings.yaml",
    "pyproject.toml",
    "renovate.json",
    "tools.lock",
    "mwaa-constraints/3.3.1/airflow_constraints.txt",
    "mwaa-constraints/3.3.1/mwaa_essential_constraints.txt",
    "bucket_contents/requirements.txt",
    "bucket_contents/dags/dbt_models.py",
    "bucket_contents/dags/dbt_sources.py",
    "bucket_contents/dags/lake_heartbeat.py",
    "bucket_contents/dags/common/__init__.py",
    "bucket_contents/dags/common/conventions.py",
    "bucket_contents/plugins/airflow_local_settings.py",
    "mwaa_deploy/__init__.py",
    "mwaa_deploy/__main__.py",
    "mwaa_deploy/adopt/__init__.py",
    "mwaa_deploy/adopt/boto3_calls.py",
    "mwaa_deploy/adopt/codemod.py",
    "mwaa_deploy/adopt/dags.py",
    "mwaa_deploy/adopt/default_args.py",
    "mwaa_deploy/adopt/edits.py",
    "mwaa_deploy/adopt/files.py",
    "mwaa_deploy/adopt/module.py",
    "mwaa_deploy/adopt/resources.py",
    "mwaa_deploy/adopt/retire.py",
    "mwaa_deploy/adopt/settings.py",
    "mwaa_deploy/adopt/signatures.py",
    "mwaa_deploy/adopt/strings.py",
    "mwaa_deploy/adopt/values.py",
    "mwaa_deploy/bucket/__init__.py",
    "mwaa_deploy/bucket/buckets.py",
    "mwaa_deploy/bucket/claims.py",
    "mwaa_deploy/bucket/history.py",
    "mwaa_deploy/bucket/local_bucket.py",
    "mwaa_deploy/bucket/plans.py",
    "mwaa_deploy/bucket/s3_bucket.py",
    "mwaa_deploy/bucket/s3_lock.py",
    "mwaa_deploy/bucket/sync.py",
    "mwaa_deploy/bucket/uploads.py",
    "mwaa_deploy/checkout.py",
    "mwaa_deploy/commands/__init__.py",
    "mwaa_deploy/commands/adopt.py",
    "mwaa_deploy/commands/airflow_cleanup.py",
    "mwaa_deploy/commands/branch_state.py",
    "mwaa_deploy/commands/deploys.py",
    "mwaa_deploy/commands/environment.py",
    "mwaa_deploy/commands/prod_path.py",
    "mwaa_deploy/commands/requirements_history.py",
    "mwaa_deploy/commands/roles.py",
    "mwaa_deploy/commands/sandboxes.py",
    "mwaa_deploy/config.py",
    "mwaa_deploy/exceptions.py",
    "mwaa_deploy/file_state.py",
    "mwaa_deploy/instance/__init__.py",
    "mwaa_deploy/instance/dag_sources.py",
    "mwaa_deploy/instance/instance_files.py",
    "mwaa_deploy/instance/instance_history.py",
    "mwaa_deploy/instance/live_instance.py",
    "mwaa_deploy/instance/metadata_cleanup.py",
    "mwaa_deploy/instance/mwaa_constraints.py",
    "mwaa_deploy/instance/mwaa_environment.py",
    "mwaa_deploy/instance/parse_gate.py",
    "mwaa_deploy/instance/pip_requirements.py",
    "mwaa_deploy/instance/policy.py",
    "mwaa_deploy/instance/policy_check.py",
    "mwaa_deploy/instance/pools.py",
    "mwaa_deploy/instance/record_shape.py",
    "mwaa_deploy/instance/resolved_requirements.py",
    "mwaa_deploy/instance/roles.py",
    "mwaa_deploy/instance/sdk_models/README.md",
    "mwaa_deploy/instance/sdk_models/mwaa/2020-07-01/service-2.json",
    "mwaa_deploy/instance/sdist_pins.py",
    "mwaa_deploy/instance/startup.py",
    "mwaa_deploy/instance/wheels.py",
    "mwaa_deploy/local/__init__.py",
    "mwaa_deploy/local/airflow_api.py",
    "mwaa_deploy/local/airflow_db.py",
    "mwaa_deploy/local/airflow_local.py",
    "mwaa_deploy/local/airflow_settings.py",
    "mwaa_deploy/local/fab_standalone.py",
    "mwaa_deploy/local/find_python.py",
    "mwaa_deploy/local/local_venv.py",
    "mwaa_deploy/local/local_roles.py",
    "mwaa_deploy/local/mwaa_local.py",
    "mwaa_deploy/local/mwaa_local_env.py",
    "mwaa_deploy/local/s3_local.py",
    "mwaa_deploy/local/tools_lock.py",
    "mwaa_deploy/local/upgrade_check.py",
    "mwaa_deploy/owners.py",
    "mwaa_deploy/settings_rules.py",
    "mwaa_deploy/stamping/__init__.py",
    "mwaa_deploy/stamping/build.py",
    "mwaa_deploy/stamping/run_time_rules.py",
    "mwaa_deploy/stamping/selection.py",
    "mwaa_deploy/stamping/sources.py",
    "mwaa_deploy/stamping/stamp.py",
    "mwaa_deploy/stamping/stamp_cache.py",
    "tests/conftest.py",
    "tests/dag_rules.py",
    "tests/platform_rules.py",
    "tests/resource_rules.py",
    "tests/helpers.py",
    "tests/test_config.py",
    "tests/test_dag_integrity.py",
    "tests/test_stamp.py",
}


def files(project: Path) -> set[str]:
    return {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}


def test_defaults_bake_exactly_the_expected_files(output: Path) -> None:
    project = bake(output)
    assert project == output / DEFAULTS_SLUG
    assert files(project) == BAKED_FILES


def test_git_ignores_no_baked_file_so_a_clone_holds_them_all(output: Path) -> None:
    """The .gitignore keeps out what commands write (build/, local_bucket/, ...) at the
    project's top only: a folder of the same name inside the package is code."""
    project = bake(output)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "add", "."], cwd=project, check=True)
    listed = subprocess.run(
        ["git", "ls-files"], cwd=project, check=True, capture_output=True, text=True
    )
    assert set(listed.stdout.splitlines()) == BAKED_FILES


@pytest.mark.parametrize("version", AIRFLOW_VERSIONS)
def test_every_airflow_version_bakes_with_its_constraints_and_python(
    output: Path, version: str
) -> None:
    project = bake(output, airflow_version=version)
    python = "3.11" if version.startswith("2.10") else "3.12"
    requirements = (project / "bucket_contents/requirements.txt").read_text().splitlines()
    assert requirements[0] == (
        '--constraint "https://raw.githubusercontent.com/apache/airflow/'
        f'constraints-{version}/constraints-{python}.txt"'
    )
    pyproject = (project / "pyproject.toml").read_text()
    assert f'"apache-airflow=={version}"' in pyproject
    assert f'python_version = "{python}"' in pyproject
    dag_import = "from airflow import DAG" if version[0] == "2" else "from airflow.sdk import DAG"
    for dag in (project / "bucket_contents/dags").glob("*.py"):
        assert dag_import in dag.read_text()


@pytest.mark.parametrize("version", AIRFLOW_VERSIONS)
def test_no_template_syntax_is_left_in_any_baked_file(output: Path, version: str) -> None:
    project = bake(output, airflow_version=version, s3_bucket="my-mwaa-bucket")
    for file in project.rglob("*"):
        if file.is_file():
            text = file.read_text()
            # ${{ ... }} is GitHub Actions' own syntax, in the workflows.
            assert not re.search(r"(?<!\$)\{\{|\{%|cookiecutter\.", text), file


REFUSED = [
    ("project_slug=my project", "project_slug='my project' is not valid"),
    ("project_slug=-dash", "project_slug='-dash' is not valid"),
    ("s3_bucket=My_Bucket", "s3_bucket='My_Bucket' is not valid"),
    ("s3_bucket=ab", "s3_bucket='ab' is not valid"),
    ("s3_bucket=my.dotted.bucket", "s3_bucket='my.dotted.bucket' is not valid"),
    ("s3_bucket=xn--bucket", "s3_bucket='xn--bucket' is not valid"),
    ("data_bucket=Data_Lake", "data_bucket='Data_Lake' is not valid: use 3-63 lowercase"),
    ("data_bucket=lake..data", "data_bucket='lake..data' is not valid: use 3-63 lowercase"),
    # The bucket holds both environments' data: a name that names one would break the rules
    # that keep each environment's assets its own.
    ("data_bucket=prod-lake", "data_bucket='prod-lake' is not valid: leave the environments"),
    ("data_bucket=lake.dev", "data_bucket='lake.dev' is not valid: leave the environments"),
    ("aws_region=europe", "aws_region='europe' is not valid"),
    ("aws_region=eu-west-9", "aws_region='eu-west-9' is not valid: use a region where MWAA"),
    ("dbt_cloud_account_id=12a", "dbt_cloud_account_id='12a' is not valid"),
    ("dev_dbt_job_id=one", "dev_dbt_job_id='one' is not valid"),
    ("prod_dbt_job_id=100001", "dev_dbt_job_id and prod_dbt_job_id are the same"),
    # The DAGs put DEV_ and PROD_ in front: PROD_dbt_cloud would become DEV_PROD_dbt_cloud.
    ("dbt_cloud_conn_id=PROD_dbt_cloud", "dbt_cloud_conn_id='PROD_dbt_cloud' is not valid"),
    ("dbt_cloud_conn_id=dev_dbt_cloud", "dbt_cloud_conn_id='dev_dbt_cloud' is not valid"),
    ("dbt_cloud_conn_id=Prod-dbt", "dbt_cloud_conn_id='Prod-dbt' is not valid"),
    ("github_repository=just-a-name", "github_repository='just-a-name' is not valid"),
    ("github_repository=a/b/c", "github_repository='a/b/c' is not valid"),
    # cookiecutter refuses an unknown choice itself, before the hook runs
    ("airflow_version=2.9.3", "2.9.3 provided for choice variable airflow_version"),
    ("default_branch=story/**", "dev_branch_pattern and default_branch are the same"),
    ("dev_branch_pattern=story's/*", 'dev_branch_pattern="story\'s/*" is not valid'),
]


@pytest.mark.parametrize(("answer", "message"), REFUSED, ids=[a for a, _ in REFUSED])
def test_a_refused_answer_says_why_and_leaves_no_directory(
    output: Path, answer: str, message: str
) -> None:
    result = bake_cli(output, answer)
    assert result.returncode != 0
    assert message in result.stderr
    assert not output.exists() or not any(output.iterdir())


# Answers that look like a refused one but are fine.
ACCEPTED = [
    "aws_region=cn-north-1",
    "dbt_cloud_conn_id=production_dbt",
    "dbt_cloud_conn_id=device-dbt",
    "data_bucket=product.lake",
    "data_bucket=acme-prod-lake",
]


@pytest.mark.parametrize("answer", ACCEPTED)
def test_an_answer_like_a_refused_one_bakes(output: Path, answer: str) -> None:
    result = bake_cli(output, answer)
    assert result.returncode == 0, result.stderr


def test_the_hooks_mwaa_regions_are_the_aws_sdks() -> None:
    """The hook cannot ask the AWS SDK (cookiecutter runs without it): its list is a copy,
    checked here against the SDK's own endpoint data, every partition (China's included)."""
    hook = ast.parse((TEMPLATE / "hooks" / "pre_gen_project.py").read_text())
    [listed] = [
        ast.literal_eval(node.value)
        for node in hook.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "MWAA_REGIONS"
    ]
    session = boto3.session.Session()
    offered = {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("mwaa", partition_name=partition)
    }
    assert sorted(listed) == sorted(offered), (
        "MWAA_REGIONS in hooks/pre_gen_project.py differs from the AWS SDK's regions for MWAA;"
        f" make it {sorted(offered)}"
    )


def test_an_answer_holding_python_cannot_run(output: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = f"""x'''\"\"\"; open({str(marker)!r}, "w"); \"\"\"'''"""
    result = bake_cli(output, f"project_name={payload}", "project_slug=safe")
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert payload in (output / "safe" / "README.md").read_text()


@pytest.mark.parametrize("version", AIRFLOW_VERSIONS)
def test_each_airflow_version_bakes_its_own_tools_lock_and_mwaa_constraint_files(
    output: Path, version: str
) -> None:
    project = bake(output, airflow_version=version)
    lock = TEMPLATE / "templates" / "tools-lock" / f"{version}.lock"
    assert (project / "tools.lock").read_bytes() == lock.read_bytes()
    shipped = project / "mwaa-constraints"
    assert [folder.name for folder in shipped.iterdir()] == [version]
    for name in ("airflow_constraints.txt", "mwaa_essential_constraints.txt"):
        copy = MWAA_CONSTRAINTS / version / name
        assert (shipped / version / name).read_bytes() == copy.read_bytes()
