"""The baked project works as a new user finds it: deploys, lint and tests, on real Airflow."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from tests.helpers import (
    NEWEST,
    OLDEST,
    TEMPLATE,
    VENVS,
    bake,
    commit_all,
    make,
    user_environment,
)

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

    # A switch set to off is off, in any case; only a documented true value switches it on.
    for off in ("", "FORCE=0", "FORCE=no", "FORCE=False", "FORCE=FALSE", "FORCE=No", "FORCE=off"):
        refused = make(
            project, "deploy-prod", *filter(None, [off]), airflow_version=NEWEST, **s3_endpoint
        )
        assert refused.returncode != 0
        assert "deploy-prod runs from main, not from story/new-dag: merge first" in refused.stderr
    unknown = make(project, "deploy-prod", "FORCE=maybe", airflow_version=NEWEST, **s3_endpoint)
    assert unknown.returncode != 0
    assert unknown.stderr.splitlines()[0] == (
        "FORCE='maybe' is not a switch: FORCE=1 (or true, yes, on) switches it on,"
        " FORCE=0 (or false, no, off, or nothing) leaves it off"
    )
    assert "Contents" not in s3.list_objects_v2(Bucket="acme-mwaa-off-path")
    forced = make(project, "deploy-prod", "FORCE=True", airflow_version=NEWEST, **s3_endpoint)
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


def readme_example_dag(project: Path) -> str:
    """The DAG file the baked README's "Writing a new DAG" shows, verbatim."""
    guide = (project / "README.md").read_text().split("### Writing a new DAG")[1]
    return guide.split("```python\n")[1].split("```")[0]


@pytest.mark.parametrize("version", [NEWEST, OLDEST])
def test_baked_project_with_the_readme_example_dag_passes_lint_and_tests_on_real_airflow(
    output: Path, version: str
) -> None:
    project = bake(output, airflow_version=version)
    (project / "bucket_contents" / "dags" / "orders.py").write_text(readme_example_dag(project))
    result = make(project, "install", "lint", "test", airflow_version=version)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
    assert "DEV_orders" in result.stdout  # the parse-time summary lists the new file


def test_baked_make_test_says_no_warning(output: Path) -> None:
    project = bake(output)
    result = make(project, "test", airflow_version=NEWEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in (result.stdout + result.stderr).lower(), result.stdout


def test_a_dag_file_without_its_flag_stops_make_test_once_with_the_stamps_line(
    output: Path,
) -> None:
    project = bake(output)
    (project / "bucket_contents" / "dags" / "orders.py").write_text("x = 1\n")
    result = make(project, "test", airflow_version=NEWEST)
    said = result.stdout + result.stderr
    assert result.returncode != 0
    assert said.count("bucket_contents/dags/orders.py:1: no `DEV = True` flag") == 1, said
    assert "Stamp failed: fix the lines above" in said
    assert len(said.splitlines()) < 30, said


def without_uv(environment: dict[str, str]) -> dict[str, str]:
    """`environment` with no uv on its PATH."""
    path = environment["PATH"].split(os.pathsep)
    return environment | {"PATH": os.pathsep.join(p for p in path if not (Path(p) / "uv").exists())}


def test_with_a_bucket_answer_and_no_aws_the_first_commands_work_or_say_what_to_do(
    output: Path, tmp_path: Path
) -> None:
    """On a machine with no AWS account and no uv: make brings uv, uv MWAA's Python. Deploys
    need none of MWAA's constraint files (which come from GitHub): here there are none."""
    project = bake(output, s3_bucket="acme-mwaa-dags")
    no_aws = {
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "MWAA_CONSTRAINTS": str(tmp_path / "no-constraints"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    environment = without_uv(user_environment()) | no_aws

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=project, env=environment, capture_output=True, text=True, check=False
        )

    local = run("env", "S3_BUCKET=", "make", "deploy-dev", "deploy-prod")
    assert local.returncode == 0, local.stdout + local.stderr
    assert {"DEV_dbt_models.py", "PROD_dbt_models.py"} <= {
        p.name for p in (project / "local_bucket" / "dags").iterdir()
    }
    s3 = run("make", "deploy-dev")
    assert s3.returncode != 0
    [line] = [line for line in s3.stderr.splitlines() if not line.startswith("make: ***")]
    assert line.endswith(
        "no AWS credentials found: set AWS_PROFILE (after `aws sso login`), or AWS_ACCESS_KEY_ID"
        " and AWS_SECRET_ACCESS_KEY; or deploy to ./local_bucket instead: S3_BUCKET= make"
        " deploy-dev"
    ), s3.stderr


def test_without_uv_on_path_projects_share_one_uv_of_the_locked_version_in_the_users_cache(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    environment = without_uv(user_environment()) | {"XDG_CACHE_HOME": str(cache)}
    said = []
    for name in ("first", "second"):
        project = bake(tmp_path / name)
        deployed = subprocess.run(
            ["make", "deploy-dev", f"VENV={VENVS / f'airflow-{NEWEST}'}"],
            cwd=project,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        said.append(deployed.stdout)
        assert not (project / ".tools").exists()
    [version] = [
        line.removeprefix("uv==")
        for line in (project / "tools.lock").read_text().splitlines()
        if line.startswith("uv==")
    ]
    uv = cache / "mwaa-deploy" / f"uv-{version}" / "bin" / "uv"
    reported = subprocess.run([uv, "--version"], capture_output=True, text=True, check=True)
    assert reported.stdout.split()[1] == version
    assert [text.count("Installing uv") for text in said] == [1, 0]


def test_make_finds_mwaas_python_in_pyenvs_versions_when_pyenv_has_not_selected_it(
    output: Path, tmp_path: Path
) -> None:
    """No Python 3.12 on PATH (pyenv's shims of unselected versions do not answer), one in
    a pyenv folder: .venv is built on it, and no variable is set by hand."""
    project = bake(output)
    mwaa_python = Path(os.path.realpath(VENVS / f"airflow-{NEWEST}" / "bin" / "python"))
    asked = [str(mwaa_python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]
    version = subprocess.run(asked, capture_output=True, text=True, check=True).stdout.strip()
    versions = tmp_path / "pyenv" / "versions" / version / "bin"
    versions.mkdir(parents=True)
    (versions / "python3.12").symlink_to(mwaa_python)
    environment = user_environment() | {
        "PYENV_ROOT": str(tmp_path / "pyenv"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON_INSTALL_DIR": str(tmp_path / "no-uv-pythons"),
    }
    environment.pop("PYENV_VERSION", None)
    environment["PATH"] = os.pathsep.join(
        p
        for p in environment["PATH"].split(os.pathsep)
        if not (Path(p) / "python3.12").exists() or (Path(p) / "uv").exists()
    )
    venv = tmp_path / "venv"

    deployed = subprocess.run(
        ["make", "deploy-dev", f"VENV={venv}"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert f"version_info = {version}" in (venv / "pyvenv.cfg").read_text()


@pytest.mark.parametrize("version", [NEWEST, OLDEST])
def test_make_s3_local_serves_the_bucket_the_deploys_then_reach(output: Path, version: str) -> None:
    """Deploys one after another, each over the last one's record and lock: conditional
    writes, with the AWS SDK that MWAA pins for the Airflow version."""
    project = bake(output, s3_bucket="acme-mwaa-dags", airflow_version=version)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    venv = VENVS / f"airflow-{version}"
    server = subprocess.Popen(
        ["make", "s3-local", f"PORT={port}", f"VENV={venv}"],
        cwd=project,
        env=user_environment(),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        said = []
        while not said or not said[-1].startswith("  export "):
            line = server.stdout.readline() if server.stdout else ""
            assert line, "s3-local ended before saying how to use it"
            said.append(line)
        variables = dict(v.split("=", 1) for v in said[-1].split()[1:])
        assert variables == {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "S3_BUCKET": "acme-mwaa-dags",
            "MWAA_ENVIRONMENT": "",
        }
        deployed = make(project, "deploy-dev", airflow_version=version, **variables)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert "Deploying DEV to s3://acme-mwaa-dags" in deployed.stdout
        dag = next((project / "bucket_contents" / "dags").glob("*.py"))
        dag.write_text(dag.read_text() + "# edited\n")
        again = make(project, "deploy-dev", airflow_version=version, **variables)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "DEV deployed: 1 uploaded (0 new, 1 changed)" in again.stdout, again.stdout
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=20)


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


def test_make_format_lays_out_an_adopted_file_of_the_teams_own_layout_for_make_lint(
    output: Path,
) -> None:
    """make adopt keeps a team's layout and says make format lays it out; make format does,
    although its long adopted lines are lint errors ruff cannot fix by itself."""
    project = bake(output)
    (project / "bucket_contents" / "dags" / "orders.py").write_text(
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "from airflow.sdk import DAG\n\n"
        "with DAG('orders_loaded_into_the_warehouse_each_morning', schedule=None, catchup=False):\n"
        "    EmptyOperator(task_id='t')\n"
    )
    commit_all(project)
    adopted = make(project, "adopt", airflow_version=NEWEST)
    assert "Next: make format (for make lint);" in adopted.stdout, adopted.stdout + adopted.stderr

    formatted = make(project, "format", "lint", airflow_version=NEWEST)

    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
