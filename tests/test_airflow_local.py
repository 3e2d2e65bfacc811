"""A running `make airflow-local`: the baked project's real Airflow on its local bucket,
started as a user starts it and asked through its REST API. It sets up its database (anew
for a project upgraded from another Airflow), shows DEV's and PROD's copies of every example
DAG and a story branch's sandbox, runs each against dbt Cloud's API with its own
environment's connection, picks up a redeploy without a restart, lets each of the project's
roles touch only its own environments' DAGs, cleans DEV's and the sandboxes' runs and DAGs
and leaves PROD's alone, and, with DEV's pool set as on MWAA, runs a PROD task at once while
a flood of DEV tasks holds DEV's pool.

One Airflow per version serves the module's tests, since each start costs half a minute;
each test works on DAGs, runs, users or a sandbox of its own. The newest's project takes
the home of started_twice's (conftest.py), whose starts and stops are tested in
test_airflow_local_starts.py."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.airflow_local import (
    PICKUP_SECONDS,
    AirflowApi,
    AirflowUser,
    airflow_local,
    free_port,
    processes_in,
    wait_for,
)
from tests.dbt_cloud import DbtCloudApi
from tests.helpers import DEFAULTS, NEWEST, OLDEST, bake, commit_all, make

pytestmark = pytest.mark.starts_airflow

RUN_SECONDS = 180
# How soon a PROD task runs to its end while DEV's tasks hold every slot of DEV's pool: the
# time Airflow takes to schedule and start one task, with room for a busy machine.
PROD_START_SECONDS = 30
GIT = ["git", "-c", "user.name=ann", "-c", "user.email=ann@example.com"]
# Every example DAG's, DEV's, PROD's and story/ann's sandbox's copy.
EXAMPLES = ("dbt_models", "dbt_sources", "lake_heartbeat")
DEPLOYED = {f"{owner}_{dag}" for owner in ("DEV", "PROD") for dag in EXAMPLES} | {
    "SBX_ann_dbt_models"
}


def made(project: Path, version: str, *targets: str, **variables: str) -> str:
    """`make <targets>` in the project, as its user runs it beside airflow-local: its output."""
    done = make(project, *targets, airflow_version=version, **variables)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def on_branch(project: Path, version: str, branch: str, dag: str, description: str) -> None:
    """Commit an edit of `dag`'s description on a new `branch`, deploy its sandbox from
    there, and come back to the default branch."""
    subprocess.run([*GIT, "checkout", "-q", "-b", branch], cwd=project, check=True)
    source = project / "bucket_contents" / "dags" / f"{dag}.py"
    source.write_text(source.read_text().replace("build and test the models", description))
    subprocess.run([*GIT, "commit", "-q", "-am", description], cwd=project, check=True)
    made(project, version, "deploy-dev")
    subprocess.run([*GIT, "checkout", "-q", "main"], cwd=project, check=True)


class Running(NamedTuple):
    project: Path
    version: str
    port: int
    log: Path
    api: AirflowApi
    dbt_cloud: DbtCloudApi

    def make(self, *targets: str, **variables: str) -> str:
        return made(self.project, self.version, *targets, **variables)


@pytest.fixture(scope="module", params=[NEWEST, OLDEST])
def airflow(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """A baked project with DEV and PROD deployed, and story/ann's sandbox from its branch,
    and its airflow-local with both environments' dbt Cloud connections; then stopped,
    leaving no process behind. The newest Airflow's project is one upgraded from the oldest:
    it has the airflow_home of a project that ran on the oldest (started_twice)."""
    version = request.param
    folder = tmp_path_factory.mktemp(f"airflow-{version}")
    project = bake(folder, airflow_version=version)
    commit_all(project)
    if version == NEWEST:  # upgraded from the oldest: the home of a project on it moves over
        home = request.getfixturevalue("started_twice").project / "airflow_home"
        shutil.copytree(home, project / "airflow_home")
    made(project, version, "install", "deploy-dev", "deploy-prod")
    on_branch(project, version, "story/ann", "dbt_models", "ann's models")
    dbt_cloud = DbtCloudApi(folder)
    log = folder / "airflow-local.out"
    port = free_port()
    # One connection per environment, as on MWAA: the same API, a token of its own, each
    # from the project's airflow_settings.yaml, its secrets from the user's environment.
    tokens = {f"{env}_DBT_CLOUD_TOKEN": f"{env}-token" for env in ("DEV", "PROD")}
    try:
        with airflow_local(
            project, version, port, log, dbt_cloud.ca_file, DBT_CLOUD_HOST=dbt_cloud.host, **tokens
        ) as api:
            wait_for(lambda: DEPLOYED <= api.dag_ids(), PICKUP_SECONDS, "DAGs not listed", log)
            yield Running(project, version, port, log, api, dbt_cloud)
    finally:
        dbt_cloud.stop()
    assert not processes_in(project)


def test_airflow_local_shows_dev_prod_and_a_sandbox_and_runs_each_with_its_environments_connection(
    airflow: Running,
) -> None:
    api = airflow.api
    assert api.dag_ids() == DEPLOYED
    assert api.get("/importErrors")["import_errors"] == []
    # The sandbox's copy runs with DEV's settings: DEV's connection and dbt job.
    runs = [api.start_run(f"{owner}_dbt_models") for owner in ("DEV", "PROD", "SBX_ann")]
    wait_for(
        lambda: all(api.get(run)["state"] in ("success", "failed") for run in runs),
        RUN_SECONDS,
        "the dbt_models runs did not finish",
        airflow.log,
    )
    assert [api.get(run)["state"] for run in runs] == ["success", "success", "success"]
    account = DEFAULTS["dbt_cloud_account_id"]
    assert sorted(airflow.dbt_cloud.triggered) == [
        (account, DEFAULTS["dev_dbt_job_id"], "Token DEV-token"),
        (account, DEFAULTS["dev_dbt_job_id"], "Token DEV-token"),
        (account, DEFAULTS["prod_dbt_job_id"], "Token PROD-token"),
    ]
    assert api.get("/dags/SBX_ann_dbt_models/details")["description"] == "dbt Cloud: ann's models"


def test_airflow_local_sets_up_its_database_and_a_new_one_for_another_airflow(
    airflow: Running,
) -> None:
    """A new project's first start sets up its database; a project now on another Airflow
    (the newest's, as after an upgrade) gets a new one, since Airflow migrates a database
    forward only, and this module's tests then run on it."""
    said = {
        OLDEST: "(the first start sets up its database, up to a minute;",
        NEWEST: f"(sets up a new database: the one in airflow_home was Airflow {OLDEST}'s;",
    }
    assert said[airflow.version] in airflow.log.read_text()


def test_airflow_local_picks_up_a_redeploy_of_dev_without_a_restart_and_leaves_prod(
    airflow: Running,
) -> None:
    source = airflow.project / "bucket_contents" / "dags" / "dbt_sources.py"
    source.write_text(source.read_text().replace('description="', 'description="edited: '))
    redeployed = airflow.make("deploy-dev")
    assert "DEV deployed: 1 uploaded (0 new, 1 changed)" in redeployed
    details = airflow.api.get
    wait_for(
        lambda: details("/dags/DEV_dbt_sources/details")["description"].startswith("edited: "),
        PICKUP_SECONDS,
        "the redeployed DAG was not picked up",
        airflow.log,
    )
    assert not details("/dags/PROD_dbt_sources/details")["description"].startswith("edited: ")
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=airflow.project, check=True)


PASSWORD = "a-password-of-the-tests"
ALLOWED = {"trigger": 200, "clear": 200, "pause": 200}
REFUSED = {"trigger": 403, "clear": 403, "pause": 403}


def test_a_developer_runs_dev_and_sandbox_dags_only_and_a_prod_operator_runs_prods(
    airflow: Running,
) -> None:
    """Who may touch PROD in the shared UI: airflow-local creates the project's two roles,
    the cluster policy grants them each owner's DAGs, and Airflow refuses what a role does
    not hold (Airflow 3 runs FAB's auth manager, as MWAA does)."""
    said = airflow.log.read_text()
    # Made empty before Airflow parses a DAG (fab_standalone.py), then given their permissions.
    assert "Role Developer: added " in said and "Role PROD_operator: added " in said
    password = (airflow.project / "airflow_home" / "standalone_admin_password.txt").read_text()
    admin = AirflowUser(airflow.port, airflow.version, "admin", password.strip())
    for user, role in [("dev", "Developer"), ("operator", "PROD_operator")]:
        created = admin.fab_status(
            "POST",
            "/users",
            {
                "username": user,
                "password": PASSWORD,
                "first_name": user,
                "last_name": user,
                "email": f"{user}@example.com",
                "roles": [{"name": role}],
            },
        )
        assert created == 200, (user, created)
    dev = AirflowUser(airflow.port, airflow.version, "dev", PASSWORD)
    operator = AirflowUser(airflow.port, airflow.version, "operator", PASSWORD)
    assert dev.attempts("DEV_lake_heartbeat") == ALLOWED
    assert dev.attempts("SBX_ann_dbt_models") == ALLOWED
    assert dev.attempts("PROD_lake_heartbeat") == REFUSED
    assert dev.status("GET", "/dags/PROD_lake_heartbeat") == 200
    assert operator.attempts("PROD_lake_heartbeat") == ALLOWED
    for user in (dev, operator):
        assert user.fab_status("PATCH", "/roles/Developer", {"name": "Developer"}) == 403
        assert user.fab_status("POST", "/roles", {"name": "Mine", "actions": []}) == 403


def runs(api: AirflowApi, dag_id: str) -> list[str]:
    return [run["dag_run_id"] for run in api.get(f"/dags/{dag_id}/dagRuns")["dag_runs"]]


def finished_run(api: AirflowApi, dag_id: str) -> str:
    """A run of the DAG, marked a success as its play button and "Mark as success" would."""
    run = api.send(
        "POST", f"/dags/{dag_id}/dagRuns", {} if api.airflow_2 else {"logical_date": None}
    )
    path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}"
    api.send("PATCH", path, {"state": "success"})
    return run["dag_run_id"]


def listed(api: AirflowApi, dag_id: str) -> bool:
    try:
        api.get(f"/dags/{dag_id}")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise
    return True


def test_clean_runs_and_clean_dev_on_airflow_local_leave_prod_alone(airflow: Running) -> None:
    """`make clean-runs` removes DEV's and the sandboxes' runs older than the retention and
    keeps PROD's; `make clean-dev` of a sandbox removes its DAGs and runs from Airflow once
    its files are gone, and nothing else. Runs are made old in airflow-local's own
    database, as time would make them."""
    api, port = airflow.api, str(airflow.port)
    on_branch(airflow.project, airflow.version, "story/bob", "dbt_models", "bob's models")
    owned = ["DEV_dbt_sources", "PROD_dbt_sources", "SBX_bob_dbt_models"]
    wait_for(lambda: listed(api, owned[-1]), PICKUP_SECONDS, "the sandbox not listed", airflow.log)
    aged = {dag_id: finished_run(api, dag_id) for dag_id in owned}
    with sqlite3.connect(airflow.project / "airflow_home" / "airflow.db", timeout=30) as database:
        database.executemany(
            "UPDATE dag_run SET end_date = '2020-01-01 00:00:00.000000'"
            " WHERE dag_id = ? AND run_id = ?",
            aged.items(),
        )
    cleaned = airflow.make("clean-runs", PORT=port)
    assert "Removed 2 run(s)" in cleaned, cleaned
    left = {dag_id: aged[dag_id] in runs(api, dag_id) for dag_id in owned}
    assert left == {"DEV_dbt_sources": False, "PROD_dbt_sources": True, "SBX_bob_dbt_models": False}

    finished_run(api, "SBX_bob_dbt_models")
    removed = airflow.make("clean-dev", PORT=port, SANDBOX="story/bob")
    assert "SBX_bob_dbt_models" in removed, removed
    assert not listed(api, "SBX_bob_dbt_models")
    assert listed(api, "SBX_ann_dbt_models") and listed(api, "DEV_dbt_sources")
    assert aged["PROD_dbt_sources"] in runs(api, "PROD_dbt_sources")


# DAG file -> its text: DEV's copy of `flood` starts more tasks than DEV's pool has slots,
# each holding its slot until the test releases it; `probe` is one quick task.
FLOOD_DAGS = {
    "flood.py": """\
import pendulum
from airflow.providers.standard.operators.bash import BashOperator

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG

from common.conventions import environment

DEV = True
flag = environment(DEV)

with DAG(
    f"{flag}_flood",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    tags=[flag],
):
    for n in range(6):
        BashOperator(task_id=f"{flag}_hold_{n}", bash_command="RELEASE_COMMAND")
""",
    "probe.py": """\
import pendulum
from airflow.providers.standard.operators.bash import BashOperator

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG

from common.conventions import environment

DEV = True
flag = environment(DEV)

with DAG(
    f"{flag}_probe",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    tags=[flag],
):
    BashOperator(task_id=f"{flag}_probe", bash_command="true")
""",
}


def states(api: AirflowApi, run: str) -> list[str]:
    return [ti["state"] for ti in api.get(f"{run}/taskInstances")["task_instances"]]


# Airflow 3 alone: airflow-local on Airflow 2 runs one task at a time, on SQLite's
# SequentialExecutor.
@pytest.mark.parametrize("airflow", [NEWEST], indirect=True)
def test_a_flood_of_dev_tasks_holds_devs_pool_only_and_a_prod_task_runs_at_once(
    airflow: Running, tmp_path: Path
) -> None:
    """DEV starts twice as many tasks as its pool has slots, each holding its slot until
    released; a PROD task started then runs to its end at once, beside them, while DEV runs
    exactly its pool's 3."""
    api, log = airflow.api, airflow.log
    assert "Pool DEV_pool: created with 3 slots, DEV's share of the workers." in log.read_text()
    release = tmp_path / "release"
    hold = f'while [ ! -e "{release}" ]; do sleep 0.5; done'
    dags = airflow.project / "bucket_contents" / "dags"
    for name, text in FLOOD_DAGS.items():
        (dags / name).write_text(text.replace('"RELEASE_COMMAND"', repr(hold)))
    commit_all(airflow.project)
    try:
        airflow.make("deploy-dev", "deploy-prod")
        wait_for(
            lambda: {"DEV_flood", "PROD_probe"} <= api.dag_ids(),
            PICKUP_SECONDS,
            "DAGs not listed",
            log,
        )
        flood = api.start_run("DEV_flood")
        wait_for(
            lambda: states(api, flood).count("running") == 3,
            RUN_SECONDS,
            "DEV's pool did not fill",
            log,
        )
        probe = api.start_run("PROD_probe")
        wait_for(
            lambda: api.get(probe)["state"] == "success",
            PROD_START_SECONDS,
            "the PROD task did not run beside DEV's flood",
            log,
        )
        held = states(api, flood)
        # On a busy machine Airflow may end a held task that misses its heartbeats: another
        # of DEV's takes its slot, and DEV still holds exactly its pool's.
        assert held.count("running") == 3, held
    finally:
        release.touch()  # DEV's tasks end within a second
    # Then DEV's other three take the slots and end too: the module's Airflow then stops at
    # once, where a stop as its tasks end may wait out airflow-local's minute of grace.
    wait_for(lambda: api.get(flood)["state"] == "success", RUN_SECONDS, "the flood ran on", log)
