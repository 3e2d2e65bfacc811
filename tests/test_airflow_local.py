"""`make airflow-local`: the baked project's real Airflow on its local bucket, started as a
user starts it, asked through its REST API, running the example DAGs of both environments
and of a story branch's sandbox against dbt Cloud's API, and stopped with Ctrl-C, leaving
nothing behind; with DEV's pool set as on MWAA, so that a flood of DEV tasks leaves PROD
the rest of the workers."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.airflow_local import (
    PICKUP_SECONDS,
    STARTUP_SECONDS,
    AirflowApi,
    airflow_local,
    free_port,
    processes_in,
    wait_for,
)
from tests.dbt_cloud import DbtCloudApi
from tests.helpers import (
    DEFAULTS,
    NEWEST,
    OLDEST,
    VENVS,
    bake,
    commit_all,
    make,
    user_environment,
)

pytestmark = pytest.mark.starts_airflow

RUN_SECONDS = 180
# How soon a PROD task runs to its end while DEV's tasks hold every slot of DEV's pool: the
# time Airflow takes to schedule and start one task, with room for a busy machine.
PROD_START_SECONDS = 30


@pytest.fixture
def dbt_cloud(tmp_path: Path) -> Iterator[DbtCloudApi]:
    api = DbtCloudApi(tmp_path)
    yield api
    api.stop()


@pytest.mark.parametrize("version", [NEWEST, OLDEST])
def test_airflow_local_shows_and_runs_dev_prod_and_a_sandbox_picks_up_a_redeploy_and_stops_whole(
    output: Path, version: str, dbt_cloud: DbtCloudApi
) -> None:
    project = bake(output, airflow_version=version)
    deployed = make(project, "install", "deploy-dev", "deploy-prod", airflow_version=version)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    # A story branch that edits one DAG deploys it to its own sandbox.
    commit_all(project)
    git = ["git", "-c", "user.name=ann", "-c", "user.email=ann@example.com"]
    subprocess.run([*git, "checkout", "-q", "-b", "story/ann"], cwd=project, check=True)
    source = project / "bucket_contents" / "dags" / "dbt_models.py"
    source.write_text(source.read_text().replace("build and test the models", "ann's models"))
    sandboxed = make(project, "deploy-dev", airflow_version=version)
    assert "SBX_ann deployed: 4 uploaded" in sandboxed.stdout, sandboxed.stdout + sandboxed.stderr
    subprocess.run([*git, "commit", "-q", "-am", "ann"], cwd=project, check=True)
    subprocess.run([*git, "checkout", "-q", "main"], cwd=project, check=True)
    both_copies = {p.stem for p in (project / "local_bucket" / "dags").glob("*.py")}
    assert {"DEV_dbt_models", "PROD_dbt_models", "SBX_ann_dbt_models"} <= both_copies
    port = free_port()
    log = output / "airflow-local.out"

    # One connection per environment, as on MWAA: the same API, a token of its own, each
    # from the project's airflow_settings.yaml, its secrets from the user's environment.
    tokens = {f"{env}_DBT_CLOUD_TOKEN": f"{env}-token" for env in ("DEV", "PROD")}
    with airflow_local(
        project, version, port, log, dbt_cloud.ca_file, DBT_CLOUD_HOST=dbt_cloud.host, **tokens
    ) as api:
        wait_for(lambda: api.dag_ids() == both_copies, PICKUP_SECONDS, "DAGs not listed", log)
        assert api.get("/importErrors")["import_errors"] == []
        # The sandbox's copy runs with DEV's settings: DEV's connection and dbt job.
        runs = [api.start_run(f"{owner}_dbt_models") for owner in ("DEV", "PROD", "SBX_ann")]
        wait_for(
            lambda: all(api.get(run)["state"] in ("success", "failed") for run in runs),
            RUN_SECONDS,
            "the dbt_models runs did not finish",
            log,
        )
        assert [api.get(run)["state"] for run in runs] == ["success", "success", "success"]
        account = DEFAULTS["dbt_cloud_account_id"]
        assert sorted(dbt_cloud.triggered) == [
            (account, DEFAULTS["dev_dbt_job_id"], "Token DEV-token"),
            (account, DEFAULTS["dev_dbt_job_id"], "Token DEV-token"),
            (account, DEFAULTS["prod_dbt_job_id"], "Token PROD-token"),
        ]
        assert (
            api.get("/dags/SBX_ann_dbt_models/details")["description"] == "dbt Cloud: ann's models"
        )

        source.write_text(source.read_text().replace("build and test the models", "edited"))
        redeployed = make(project, "deploy-dev", airflow_version=version)
        assert "DEV deployed: 1 uploaded (0 new, 1 changed)" in redeployed.stdout
        wait_for(
            lambda: api.get("/dags/DEV_dbt_models/details")["description"] == "dbt Cloud: edited",
            PICKUP_SECONDS,
            "the redeployed DAG was not picked up",
            log,
        )
        assert api.get("/dags/PROD_dbt_models/details")["description"] != "dbt Cloud: edited"
    assert not processes_in(project)

    with airflow_local(project, version, port, log, dbt_cloud.ca_file) as api:
        assert api.dag_ids() == both_copies
    assert not processes_in(project)


def started(project: Path, version: str, log: Path) -> str:
    """Start airflow-local and stop it once it answers: what it said."""
    with airflow_local(project, version, free_port(), log):
        pass
    return log.read_text()


def test_airflow_local_keeps_its_database_between_starts_and_sets_up_a_new_one_for_another_airflow(
    output: Path, tmp_path: Path
) -> None:
    """The second start of a project skips setting up its database, and says so; a project
    now on another Airflow (here the newest, as after an upgrade) gets a new one. The two
    starts on one database are on the quicker Airflow to start."""
    project = bake(output, airflow_version=OLDEST)
    deployed = make(project, "deploy-dev", airflow_version=OLDEST)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    log = output / "airflow-local.out"

    first = started(project, OLDEST, log)
    assert "(the first start sets up its database, up to a minute;" in first
    again = started(project, OLDEST, log)
    assert "(on its database from the last start;" in again
    assert "sets up" not in again
    last_start = (project / "airflow_home" / "standalone.log").read_text()
    assert "Checking database is initialized" not in last_start.rsplit("Starting Airflow", 1)[1]

    upgraded = bake(tmp_path, airflow_version=NEWEST)
    deployed = make(upgraded, "deploy-dev", airflow_version=NEWEST)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    (project / "airflow_home").rename(upgraded / "airflow_home")
    started_again = started(upgraded, NEWEST, log)
    assert (
        f"(sets up a new database: the one in airflow_home was Airflow {OLDEST}'s;" in started_again
    )


def test_airflow_local_refuses_a_settings_file_where_dev_reaches_prod(output: Path) -> None:
    """airflow_settings.yaml keeps the DEV/PROD rules: one line a problem, naming file:line,
    and Airflow does not start. The role may come from the environment, and is checked too."""
    project = bake(output)
    (project / "local_bucket" / "dags").mkdir(parents=True)
    settings = project / "airflow_settings.yaml"
    text = settings.read_text()
    prod_role = "arn:aws:iam::123456789012:role/data-ProdTaskRole-AB12"
    text = text.replace("conn_password: ${PROD_DBT_CLOUD_TOKEN}", "conn_password: hunter2")
    text += "    - variable_name: orders_table\n      variable_value: orders\n"
    settings.write_text(text)
    lines = text.splitlines()

    def line_of(words: str) -> int:
        return next(n for n, line in enumerate(lines) if words in line) + 1

    refused = make(
        project,
        "airflow-local",
        airflow_version=NEWEST,
        DEV_TASK_ROLE_ARN=prod_role,
        PROD_TASK_ROLE_ARN=prod_role,
        PORT=str(free_port()),
    )
    assert refused.returncode != 0
    dev_role = line_of("DEV_TASK_ROLE_ARN")
    assert refused.stderr.splitlines()[:-1] == [
        f"airflow_settings.yaml:{dev_role}: DEV_aws: conn_extra.role_arn {prod_role!r} names"
        " PROD: a DEV connection may not reach PROD's account, role or secrets; give it DEV's",
        f"airflow_settings.yaml:{dev_role}: DEV_aws: role_arn is PROD_aws's, PROD's role: give"
        " DEV's task role (iam/task-roles.yaml, output DevTaskRoleArn)",
        f"airflow_settings.yaml:{line_of('hunter2')}: PROD_dbt_cloud: conn_password is a secret"
        " written into the repository: write ${PROD_DBT_CLOUD_CONN_PASSWORD} instead, and set"
        " PROD_DBT_CLOUD_CONN_PASSWORD where airflow-local runs",
        f"airflow_settings.yaml:{line_of('variable_name: orders_table')}:"
        " orders_table is neither DEV's nor PROD's: start it with DEV_ or PROD_, as the DAGs'"
        " ids do (a sandbox uses DEV's)",
        "Airflow was not started.",
    ]
    assert not (project / "airflow_home").exists()


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


def test_a_flood_of_dev_tasks_holds_devs_pool_only_and_a_prod_task_runs_at_once(
    output: Path, tmp_path: Path
) -> None:
    """DEV starts twice as many tasks as its pool has slots, each holding its slot until
    released; a PROD task started then runs to its end at once, beside them, while DEV runs
    exactly its pool's 3. (Airflow 3 alone: airflow-local on Airflow 2 runs one task at a
    time, on SQLite's SequentialExecutor.)"""
    project = bake(output, airflow_version=NEWEST)
    release = tmp_path / "release"
    hold = f'while [ ! -e "{release}" ]; do sleep 0.5; done'
    for name, text in FLOOD_DAGS.items():
        (project / "bucket_contents" / "dags" / name).write_text(
            text.replace('"RELEASE_COMMAND"', repr(hold))
        )
    deployed = make(project, "deploy-dev", "deploy-prod", airflow_version=NEWEST)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    log = output / "airflow-local.out"

    with airflow_local(project, NEWEST, free_port(), log) as api:
        assert "Pool DEV_pool: created with 3 slots, DEV's share of the workers." in log.read_text()
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
        release.touch()  # DEV's tasks end within a second; stopping Airflow waits for none
        # On a busy machine Airflow may end a held task that misses its heartbeats: another
        # of DEV's takes its slot, and DEV still holds exactly its pool's.
        assert held.count("running") == 3, held


def pids_in(folder: Path) -> list[int]:
    """What processes_in lists, by process id."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cwd").resolve() == folder.resolve():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_airflow_local_piped_to_tee_stops_whole_on_ctrl_c(output: Path) -> None:
    """`make airflow-local 2>&1 | tee log`, then Ctrl-C: the terminal's SIGINT reaches tee
    too, so the command's next line goes to a closed pipe; Airflow stops all the same. (On
    the oldest Airflow: the quickest to start, and the pipe is the command's, not Airflow's.)"""
    project = bake(output, airflow_version=OLDEST)
    (project / "local_bucket" / "dags").mkdir(parents=True)
    log = output / "tee.log"
    log.touch()  # for the wait to read before tee opens it
    venv = VENVS / f"airflow-{OLDEST}"
    shell = subprocess.Popen(
        ["bash", "-c", f'make airflow-local VENV="$1" PORT={free_port()} 2>&1 | tee "$2"',
         "bash", str(venv), str(log)],
        cwd=project,
        env=user_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a terminal's foreground job: make, the command and tee
    )  # fmt: skip
    try:
        wait_for(
            lambda: "Press Ctrl-C" in log.read_text() or shell.poll() is not None,
            STARTUP_SECONDS,
            "Airflow was not ready",
            log,
        )
        assert shell.poll() is None, log.read_text()
        os.killpg(shell.pid, signal.SIGINT)
        wait_for(lambda: not processes_in(project), 120, "Airflow did not stop", log)
    finally:
        for pid in pids_in(project):  # what a failed stop left behind, all of it this test's
            os.kill(pid, signal.SIGKILL)
