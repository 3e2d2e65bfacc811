"""`make clean-runs` and `make clean-dev` against airflow-local (issue 29, part 1): on a real
Airflow, started once, DEV's and a sandbox's old runs go and PROD's stay, then a removed
sandbox's DAGs go from Airflow with their runs, and DEV's and PROD's DAGs stay.

Airflow 2.10.3, the quickest to start; runs are made finished through the REST API, and
made old in airflow-local's own database, as time would make them.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import VENVS, bake, commit_all, make, user_environment

pytestmark = pytest.mark.starts_airflow

VERSION = "2.10.3"
STARTUP_SECONDS = 300
PICKUP_SECONDS = 60
GIT = ["git", "-c", "user.name=ann", "-c", "user.email=ann@example.com"]
DAGS = {f"{owner}_dbt_models" for owner in ("DEV", "PROD", "SBX_ann")}


class Api:
    """airflow-local's REST API (v1 on Airflow 2), as admin."""

    def __init__(self, port: int, password: str) -> None:
        self.base = f"http://127.0.0.1:{port}/api/v1"
        login = base64.b64encode(f"admin:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {login}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, data: dict | None = None) -> tuple[int, dict]:
        body = None if data is None else json.dumps(data).encode()
        request = urllib.request.Request(self.base + path, body, self.headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, {}

    def dag_ids(self) -> set[str]:
        return {dag["dag_id"] for dag in self.call("GET", "/dags?limit=100")[1].get("dags", [])}

    def runs(self, dag_id: str) -> int:
        status, answer = self.call("GET", f"/dags/{dag_id}/dagRuns")
        assert status == 200, (status, answer)
        return answer["total_entries"]

    def finished_run(self, dag_id: str) -> None:
        status, run = self.call("POST", f"/dags/{dag_id}/dagRuns", {})
        assert status == 200, (status, run)
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}"
        assert self.call("PATCH", path, {"state": "success"})[0] == 200


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], bool], seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds} s; output:\n{log.read_text()[-4000:]}")
        time.sleep(1)


def deployed_project(output: Path) -> Path:
    """DEV and PROD deployed from main, and story/ann's sandbox from its branch."""
    project = bake(output, airflow_version=VERSION)
    commit_all(project)
    subprocess.run([*GIT, "checkout", "-q", "-b", "story/ann"], cwd=project, check=True)
    source = project / "bucket_contents" / "dags" / "dbt_models.py"
    source.write_text(source.read_text().replace("build and test the models", "ann's models"))
    subprocess.run([*GIT, "commit", "-q", "-am", "ann"], cwd=project, check=True)
    for branch, targets in (("story/ann", ["deploy-dev"]), ("main", ["deploy-dev", "deploy-prod"])):
        subprocess.run([*GIT, "checkout", "-q", branch], cwd=project, check=True)
        done = make(project, *targets, airflow_version=VERSION)
        assert done.returncode == 0, done.stdout + done.stderr
    return project


def test_clean_runs_and_clean_dev_on_airflow_local_leave_prod_alone(output: Path) -> None:
    project = deployed_project(output)
    port = str(free_port())
    log = output / "airflow-local.out"
    with open(log, "w") as written:
        airflow = subprocess.Popen(
            ["make", "airflow-local", f"VENV={VENVS / f'airflow-{VERSION}'}", f"PORT={port}"],
            cwd=project,
            env=user_environment(),
            stdout=written,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ctrl-C reaches all of it
        )
    try:
        wait_for(lambda: "Press Ctrl-C" in log.read_text(), STARTUP_SECONDS, "not ready", log)
        said = log.read_text().splitlines()
        password = next(line for line in said if line.startswith("Log in as admin, password "))
        api = Api(int(port), password.rsplit(" ", 1)[1])
        wait_for(lambda: DAGS <= api.dag_ids(), PICKUP_SECONDS, "DAGs not listed", log)
        for dag_id in sorted(DAGS):
            api.finished_run(dag_id)
        with sqlite3.connect(project / "airflow_home" / "airflow.db", timeout=30) as database:
            database.execute("UPDATE dag_run SET end_date = '2020-01-01 00:00:00.000000'")

        cleaned = make(project, "clean-runs", airflow_version=VERSION, PORT=port)

        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert "Removed 2 run(s)" in cleaned.stdout, cleaned.stdout
        assert {dag_id: api.runs(dag_id) for dag_id in sorted(DAGS)} == {
            "DEV_dbt_models": 0,
            "PROD_dbt_models": 1,
            "SBX_ann_dbt_models": 0,
        }

        api.finished_run("SBX_ann_dbt_models")
        removed = make(
            project, "clean-dev", airflow_version=VERSION, PORT=port, SANDBOX="story/ann"
        )

        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert "SBX_ann_dbt_models" in removed.stdout, removed.stdout
        assert api.call("GET", "/dags/SBX_ann_dbt_models")[0] == 404
        assert api.call("GET", "/dags/DEV_dbt_models")[0] == 200
        assert api.runs("PROD_dbt_models") == 1
    finally:
        os.killpg(airflow.pid, signal.SIGINT)
        airflow.wait(120)
