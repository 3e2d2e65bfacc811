"""A real Airflow behind the MWAA stand-in, for the live instance's tests: `make airflow-local
MWAA_LOCAL=1` of a baked project, started as its docs' mwaa-local recipe starts it, and
stand-ins (mwaa_local.py) that copy a bucket of their own into its DAGs folder, as MWAA copies
its bucket; the DAG files they deploy there."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
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
from tests.helpers import VENVS, shell_block, user_environment, wait_for_line

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
    recipe: Recipe  # of its project, whose second terminal runs it


class Recipe(NamedTuple):
    """The mwaa-local recipe of a baked project's docs/local-airflow.md, as a reader copies
    it: the block's export, then each make line in a fresh terminal of its own."""

    project: Path
    export: str
    serving: list[str]  # each until Ctrl-C: s3-local, airflow-local, mwaa-local
    deploy: str

    @classmethod
    def of(cls, project: Path) -> Recipe:
        page = (project / "docs" / "local-airflow.md").read_text()
        lines = shell_block(page, "The parse gate, too, runs here").splitlines()
        first = next(n for n, line in enumerate(lines) if line.startswith("make "))
        *serving, deploy = lines[first:]
        return cls(project, "\n".join(lines[:first]), serving, deploy)

    @property
    def airflow_local(self) -> str:
        return next(line for line in self.serving if line.startswith("make airflow-local"))

    def terminal(self, line: str, log: Path, version: str) -> subprocess.Popen[bytes]:
        """`line` in a fresh terminal, as a job of its own until Ctrl-C, its output in `log`."""
        with open(log, "w") as output:
            return subprocess.Popen(
                self._shell(line),
                cwd=self.project,
                env=self._fresh_terminal(version),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def run(self, line: str, version: str) -> subprocess.CompletedProcess[str]:
        """`line` in a fresh terminal, to its end."""
        return subprocess.run(
            self._shell(line),
            cwd=self.project,
            env=self._fresh_terminal(version),
            capture_output=True,
            text=True,
            check=False,
        )

    def _shell(self, line: str) -> list[str]:
        return ["bash", "-c", f"{self.export}\n{line}"]

    @staticmethod
    def _fresh_terminal(version: str) -> dict[str, str]:
        """No variable of this process's: the block's export comes first in the line's shell.
        The baked venv of `version` as .venv, as `make install` would have built it."""
        return user_environment() | {"VENV": str(VENVS / f"airflow-{version}")}


@contextlib.contextmanager
def running_airflow(project: Path, version: str) -> Iterator[RunningAirflow]:
    """The project's Airflow as its docs' recipe runs it (`make airflow-local MWAA_LOCAL=1`,
    on the port the page names), until Ctrl-C on leaving."""
    recipe = Recipe.of(project)
    log = project.parent / "airflow-local.out"
    airflow = recipe.terminal(recipe.airflow_local, log, version)
    try:
        wait_for_line(log, "Press Ctrl-C", airflow, STARTUP_SECONDS)
        url = re.search(r"^Airflow is ready: (\S+)$", log.read_text(), re.MULTILINE)
        password = admin_password(config.load(project))
        assert url and password, log.read_text()
        api = AirflowApi(url[1], version, password)
        yield RunningAirflow(
            version, api, dags_folder(config.load(project), mwaa_local=True), recipe
        )
    finally:
        # Ctrl-C, as in its terminal: airflow-local then stops Airflow, which runs in a
        # process group of its own that no signal to the terminal's group reaches.
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
