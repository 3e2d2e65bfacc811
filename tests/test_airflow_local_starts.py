"""Starting and stopping `make airflow-local`: the database it keeps from one start to the
next, what it refuses to start on, and Ctrl-C stopping all of it, also with its output piped
to `tee`. (What a running airflow-local shows and does is in test_airflow_local.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.airflow_local import (
    PICKUP_SECONDS,
    STARTUP_SECONDS,
    airflow_local,
    free_port,
    processes_in,
    wait_for,
)
from tests.helpers import NEWEST, OLDEST, VENVS, bake, make, user_environment

pytestmark = pytest.mark.starts_airflow


def started(project: Path, version: str, log: Path) -> str:
    """Start airflow-local and stop it once it answers: what it said."""
    with airflow_local(project, version, free_port(), log):
        pass
    assert not processes_in(project)
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

    dev_copies = {
        f"DEV_{file.stem}" for file in (project / "bucket_contents" / "dags").glob("*.py")
    }
    with airflow_local(project, OLDEST, free_port(), log) as api:
        wait_for(lambda: api.dag_ids() == dev_copies, PICKUP_SECONDS, "DAGs not listed", log)
    assert not processes_in(project)
    assert "(the first start sets up its database, up to a minute;" in log.read_text()
    with airflow_local(project, OLDEST, free_port(), log) as api:
        assert api.dag_ids() == dev_copies  # at once: what the last start parsed is kept
    assert not processes_in(project)
    again = log.read_text()
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
