"""A real Airflow behind the MWAA stand-in, for the live instance's tests: `make airflow-local
MWAA_LOCAL=1` of a baked project, and stand-ins (mwaa_local.py) that copy a bucket of their
own into its DAGs folder, as MWAA copies its bucket; the DAG files they deploy there."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from mwaa_deploy import config
from mwaa_deploy.__main__ import main
from mwaa_deploy.local.airflow_api import AirflowApi
from mwaa_deploy.local.airflow_local import admin_password, dags_folder
from mwaa_deploy.local.mwaa_local import MwaaLocal
from mwaa_deploy.local.mwaa_local_env import Environment
from tests.deploy_tool.helpers import SETTINGS, new_s3_bucket
from tests.deploy_tool.s3_endpoint import S3Endpoint
from tests.helpers import VENVS, user_environment

STARTUP_SECONDS = 300
NAME = SETTINGS.mwaa_environment

# A DAG file for either Airflow, in the project's convention: its one task gets its pool
# and priority from the platform's policy, which the gate reads back.
GOOD_DAG = """\
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

DEV = True
dev_prod_flag = "DEV" if DEV else "PROD"

with DAG(f"{dev_prod_flag}_orders", schedule=None, start_date=pendulum.datetime(2025, 1, 1)):
    EmptyOperator(task_id=f"{dev_prod_flag}_noop")
"""
BROKEN_DAG = GOOD_DAG.replace("import pendulum\n", "import pendulum\nimport no_such_module\n")


class RunningAirflow(NamedTuple):
    version: str
    api: AirflowApi
    dags: Path  # the folder it reads, which a stand-in fills from its bucket


@contextlib.contextmanager
def running_airflow(project: Path, version: str) -> Iterator[RunningAirflow]:
    """The project's `make airflow-local MWAA_LOCAL=1`, until Ctrl-C on leaving."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = project / "airflow-local.out"
    with open(log, "w") as output:
        airflow = subprocess.Popen(
            ["make", "airflow-local", f"VENV={VENVS / f'airflow-{version}'}", f"PORT={port}"],
            cwd=project,
            env=user_environment() | {"MWAA_LOCAL": "1"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, to stop whole
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while "Press Ctrl-C" not in log.read_text():
            assert airflow.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        password = admin_password(config.load(project))
        assert password, log.read_text()
        api = AirflowApi(f"http://127.0.0.1:{port}", version, password)
        yield RunningAirflow(version, api, dags_folder(config.load(project), mwaa_local=True))
    finally:
        # Ctrl-C, as in its terminal: airflow-local then stops Airflow, which runs in a
        # process group of its own that no signal to make's group reaches.
        os.killpg(airflow.pid, signal.SIGINT)
        airflow.wait()


@contextlib.contextmanager
def stand_in_before(airflow: RunningAirflow, s3_endpoint: S3Endpoint) -> Iterator[MwaaLocal]:
    """An MWAA environment of a new bucket whose Airflow is `airflow`: it makes the DAGs
    folder what the bucket holds, so a stand-in starts with the folder emptied."""
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("AWS_ENDPOINT_URL", s3_endpoint.url)
        environment.setenv("AWS_ACCESS_KEY_ID", "testing")
        environment.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        stand_in = MwaaLocal(
            Environment(NAME, airflow.version, new_s3_bucket(), SETTINGS.aws_region),
            airflow.api,
            airflow.dags,
        )
    yield stand_in
    stand_in.stop()


def deploy(env: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`make deploy-<env>`: its exit status, stdout and stderr."""
    code = main(["deploy", env, *(["--force"] if env == "PROD" else [])])
    out, err = capsys.readouterr()
    return code, out, err
