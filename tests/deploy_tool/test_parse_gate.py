"""The parse gate against a real Airflow (DESIGN: a deploy to S3 waits for MWAA to parse what
it wrote and fails on import errors in its own files only), on the oldest and the newest
Airflow, through the MWAA stand-in (mwaa_local.py) that the SDK reaches as it reaches AWS.

One Airflow a version, `make airflow-local` of a baked project, serves every test here: the
stand-in copies the bucket's dags/ into its DAGs folder, as MWAA does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mwaa_deploy import config, mwaa_local, parse_gate
from mwaa_deploy.__main__ import main
from mwaa_deploy.airflow_local import admin_password
from mwaa_deploy.mwaa_local import AirflowApi, Environment, MwaaLocal
from tests.deploy_tool.helpers import SETTINGS, new_s3_bucket
from tests.deploy_tool.s3_endpoint import S3Endpoint
from tests.helpers import NEWEST, OLDEST, VENVS, bake, user_environment

STARTUP_SECONDS = 300
NAME = SETTINGS.mwaa_environment

# A DAG file for either Airflow, in the project's convention.
GOOD_DAG = """\
import pendulum

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

DEV = True
dev_prod_flag = "DEV" if DEV else "PROD"

with DAG(f"{dev_prod_flag}_orders", schedule=None, start_date=pendulum.datetime(2025, 1, 1)):
    pass
"""
BROKEN_DAG = GOOD_DAG.replace("import pendulum\n", "import pendulum\nimport no_such_module\n")


@dataclass
class Instance:
    """A real Airflow behind the MWAA stand-in, and the bucket it copies from."""

    airflow_version: str
    bucket: str
    stand_in: MwaaLocal


@pytest.fixture(scope="module", params=[NEWEST, OLDEST])
def instance(
    request: pytest.FixtureRequest,
    s3_endpoint: S3Endpoint,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Instance]:
    """`make airflow-local` of a project baked for the version, and the stand-in before it."""
    version = request.param
    project = bake(tmp_path_factory.mktemp(f"airflow-{version}"), airflow_version=version)
    (project / "local_bucket" / "dags").mkdir(parents=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = project / "airflow-local.out"
    with open(log, "w") as output:
        airflow = subprocess.Popen(
            ["make", "airflow-local", f"VENV={VENVS / f'airflow-{version}'}", f"PORT={port}"],
            cwd=project,
            env=user_environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, which Ctrl-C stops whole
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while "Press Ctrl-C" not in log.read_text():
            assert airflow.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        password = admin_password(config.load(project))
        assert password, log.read_text()
        with pytest.MonkeyPatch.context() as environment:
            environment.setenv("AWS_ENDPOINT_URL", s3_endpoint.url)
            environment.setenv("AWS_ACCESS_KEY_ID", "testing")
            environment.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            bucket = new_s3_bucket()
            stand_in = MwaaLocal(
                Environment(NAME, version, bucket, SETTINGS.aws_region),
                AirflowApi(f"http://127.0.0.1:{port}", version, password),
                project / "local_bucket" / "dags",
            )
        yield Instance(version, bucket, stand_in)
        stand_in.stop()
    finally:
        # Stopping it gracefully is airflow-local's own test; this one has no more to say.
        os.killpg(airflow.pid, signal.SIGKILL)
        airflow.wait()


@pytest.fixture
def sources(
    instance: Instance,
    aws: S3Endpoint,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A project deploying to the instance's bucket, waiting for its parse: its one DAG
    file is the test's to write."""
    root = tmp_path / "project"
    (root / "bucket_contents" / "dags").mkdir(parents=True)
    (root / "pyproject.toml").write_bytes((SETTINGS.root / "pyproject.toml").read_bytes())
    monkeypatch.setattr("mwaa_deploy.config.PROJECT_ROOT", root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("S3_BUCKET", instance.bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", instance.stand_in.url)
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    monkeypatch.setenv("PARSE_GATE_SECONDS", "120")
    # The stand-in copies the bucket every COPY_SECONDS, not every 30 s as MWAA does.
    monkeypatch.setattr(parse_gate, "BUCKET_COPY_SECONDS", mwaa_local.COPY_SECONDS)
    monkeypatch.setattr(parse_gate, "POLL_SECONDS", 0.5)
    return root / "bucket_contents" / "dags"


def deploy(env: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`make deploy-<env>`: its exit status, stdout and stderr."""
    code = main(["deploy", env, *(["--force"] if env == "PROD" else [])])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_import_error_fails_its_own_environments_deploy_only_and_a_fix_passes(
    sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (sources / "orders.py").write_text(GOOD_DAG)
    code, out, _ = deploy("PROD", capsys)
    assert code == 0
    assert out.splitlines()[-1] == (
        f"{NAME} parsed PROD's 1 DAG file(s) without import errors; DAGs listed: PROD_orders."
    )

    (sources / "orders.py").write_text(BROKEN_DAG)
    code, out, err = deploy("DEV", capsys)
    assert code == 1
    assert "DEV deployed: 1 uploaded (1 new, 0 changed), 0 deleted, 0 unchanged." in out
    assert err.splitlines() == [
        "dags/DEV_orders.py:2: ModuleNotFoundError: No module named 'no_such_module'",
        f"Parse gate: DEV is deployed, but {NAME} did not import 1 of its 1 DAG file(s)"
        " (above); fix them and deploy again.",
    ]

    # PROD, deployed from the good version while DEV holds the broken one, still passes.
    (sources / "orders.py").write_text(GOOD_DAG)
    code, out, _ = deploy("PROD", capsys)
    assert code == 0
    assert out.splitlines()[-1] == (
        f"{NAME} parsed PROD's 1 DAG file(s) without import errors; DAGs listed: PROD_orders."
        " 1 import error(s) in other files, not this deploy's."
    )

    code, out, _ = deploy("DEV", capsys)
    assert code == 0
    assert out.splitlines()[-1] == (
        f"{NAME} parsed DEV's 1 DAG file(s) without import errors; DAGs listed: DEV_orders."
    )
