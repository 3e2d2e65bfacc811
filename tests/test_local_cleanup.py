"""`make clean-runs` and `make clean-dev` against airflow-local (issue 29, part 1): on a real
Airflow, started once, DEV's and a sandbox's old runs go and PROD's stay, then a removed
sandbox's DAGs go from Airflow with their runs, and DEV's and PROD's DAGs stay.

Airflow 2.10.3, the quickest to start; runs are made finished through the REST API, and
made old in airflow-local's own database, as time would make them.
"""

from __future__ import annotations

import sqlite3
import subprocess
import urllib.error
import urllib.parse
from pathlib import Path

import pytest

from tests.airflow_local import PICKUP_SECONDS, AirflowApi, airflow_local, free_port, wait_for
from tests.helpers import OLDEST, bake, commit_all, make

pytestmark = pytest.mark.starts_airflow

VERSION = OLDEST
GIT = ["git", "-c", "user.name=ann", "-c", "user.email=ann@example.com"]
DAGS = {f"{owner}_dbt_models" for owner in ("DEV", "PROD", "SBX_ann")}


def runs(api: AirflowApi, dag_id: str) -> int:
    return api.get(f"/dags/{dag_id}/dagRuns")["total_entries"]


def finished_run(api: AirflowApi, dag_id: str) -> None:
    """A run of the DAG, marked a success as its play button and "Mark as success" would."""
    run = api.send("POST", f"/dags/{dag_id}/dagRuns", {})
    path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}"
    api.send("PATCH", path, {"state": "success"})


def listed(api: AirflowApi, dag_id: str) -> bool:
    try:
        api.get(f"/dags/{dag_id}")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise
    return True


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
    port = free_port()
    log = output / "airflow-local.out"
    with airflow_local(project, VERSION, port, log) as api:
        wait_for(lambda: DAGS <= api.dag_ids(), PICKUP_SECONDS, "DAGs not listed", log)
        for dag_id in sorted(DAGS):
            finished_run(api, dag_id)
        with sqlite3.connect(project / "airflow_home" / "airflow.db", timeout=30) as database:
            database.execute("UPDATE dag_run SET end_date = '2020-01-01 00:00:00.000000'")

        cleaned = make(project, "clean-runs", airflow_version=VERSION, PORT=str(port))

        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert "Removed 2 run(s)" in cleaned.stdout, cleaned.stdout
        assert {dag_id: runs(api, dag_id) for dag_id in sorted(DAGS)} == {
            "DEV_dbt_models": 0,
            "PROD_dbt_models": 1,
            "SBX_ann_dbt_models": 0,
        }

        finished_run(api, "SBX_ann_dbt_models")
        removed = make(
            project, "clean-dev", airflow_version=VERSION, PORT=str(port), SANDBOX="story/ann"
        )

        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert "SBX_ann_dbt_models" in removed.stdout, removed.stdout
        assert not listed(api, "SBX_ann_dbt_models")
        assert listed(api, "DEV_dbt_models")
        assert runs(api, "PROD_dbt_models") == 1
