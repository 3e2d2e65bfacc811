"""Starting and stopping `make airflow-local`: the database it keeps from one start to the
next and sets up anew for another Airflow, what it refuses to start on, and Ctrl-C stopping
all of it, also with its output piped to `tee`. (What a running airflow-local shows and does
is in test_airflow_local.py.)

Each start costs half a minute: one project's two starts serve the tests of keeping the
database, of a stop with tee, and, moved into a project on the newest Airflow, of a new
database."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

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
from tests.helpers import NEWEST, OLDEST, VENVS, bake, make, user_environment

pytestmark = pytest.mark.starts_airflow

STOP_SECONDS = 120


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


class StartedTwice(NamedTuple):
    """A project on the oldest Airflow with DEV deployed, started and stopped twice."""

    project: Path
    dev_copies: set[str]
    first: str  # what the first start said
    second: str  # what the second start, piped to tee, wrote through tee
    listed_at_once: set[str]  # the DAGs the second start listed as soon as it answered
    left_running: list[str]  # what of the second start still ran after Ctrl-C


@pytest.fixture(scope="module")
def started_twice(tmp_path_factory: pytest.TempPathFactory) -> StartedTwice:
    """The first start as airflow_local() runs it; the second as a user who keeps a log runs
    it, `make airflow-local 2>&1 | tee log`, stopped with Ctrl-C: the terminal's SIGINT
    reaches tee too, so the command's next line goes to a closed pipe. (On the oldest
    Airflow: the quickest to start, and the pipe is the command's, not Airflow's.)"""
    output = tmp_path_factory.mktemp("started-twice")
    project = bake(output, airflow_version=OLDEST)
    deployed = make(project, "deploy-dev", airflow_version=OLDEST)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    dev_copies = {
        f"DEV_{file.stem}" for file in (project / "bucket_contents" / "dags").glob("*.py")
    }
    log = output / "airflow-local.out"
    with airflow_local(project, OLDEST, free_port(), log) as api:
        wait_for(lambda: api.dag_ids() == dev_copies, PICKUP_SECONDS, "DAGs not listed", log)
    assert not processes_in(project)
    first = log.read_text()

    tee_log = output / "tee.log"
    tee_log.touch()  # for the wait to read before tee opens it
    port = free_port()
    shell = subprocess.Popen(
        ["bash", "-c", f'make airflow-local VENV="$1" PORT={port} 2>&1 | tee "$2"',
         "bash", str(VENVS / f"airflow-{OLDEST}"), str(tee_log)],
        cwd=project,
        env=user_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a terminal's foreground job: make, the command and tee
    )  # fmt: skip
    try:
        wait_for(
            lambda: "Press Ctrl-C" in tee_log.read_text() or shell.poll() is not None,
            STARTUP_SECONDS,
            "Airflow was not ready",
            tee_log,
        )
        assert shell.poll() is None, tee_log.read_text()
        second = tee_log.read_text()
        password = next(
            line for line in second.splitlines() if line.startswith("Log in as admin, password ")
        )
        listed_at_once = AirflowApi(port, OLDEST, password.rsplit(" ", 1)[1]).dag_ids()
        os.killpg(shell.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_SECONDS
        while processes_in(project) and time.monotonic() < deadline:
            time.sleep(1)
        left_running = processes_in(project)
    finally:
        for pid in pids_in(project):  # what a failed stop left behind, all of it this test's
            os.kill(pid, signal.SIGKILL)
    return StartedTwice(project, dev_copies, first, second, listed_at_once, left_running)


def test_airflow_local_keeps_its_database_between_starts(started_twice: StartedTwice) -> None:
    """The second start of a project skips setting up its database, and says so."""
    assert "(the first start sets up its database, up to a minute;" in started_twice.first
    assert "(on its database from the last start;" in started_twice.second
    assert "sets up" not in started_twice.second
    assert started_twice.listed_at_once == started_twice.dev_copies  # what the last one parsed
    last_start = (started_twice.project / "airflow_home" / "standalone.log").read_text()
    assert "Checking database is initialized" not in last_start.rsplit("Starting Airflow", 1)[1]


def test_airflow_local_piped_to_tee_stops_whole_on_ctrl_c(started_twice: StartedTwice) -> None:
    """Nothing of the second start, the one piped to tee, runs on after its Ctrl-C."""
    assert started_twice.left_running == [], started_twice.second


def test_airflow_local_sets_up_a_new_database_for_another_airflow(
    started_twice: StartedTwice, tmp_path: Path
) -> None:
    """A project now on another Airflow (here the newest, as after an upgrade) gets a new
    database: Airflow migrates one forward only."""
    upgraded = bake(tmp_path, airflow_version=NEWEST)
    deployed = make(upgraded, "deploy-dev", airflow_version=NEWEST)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    shutil.copytree(started_twice.project / "airflow_home", upgraded / "airflow_home")
    log = tmp_path / "airflow-local.out"
    with airflow_local(upgraded, NEWEST, free_port(), log):
        pass
    assert not processes_in(upgraded)
    said = log.read_text()
    assert f"(sets up a new database: the one in airflow_home was Airflow {OLDEST}'s;" in said


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
