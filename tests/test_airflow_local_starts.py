"""Starting and stopping `make airflow-local`: the database it keeps from one start to the
next, what it refuses to start on, and Ctrl-C stopping all of it, also with its output piped
to `tee`. (What a running airflow-local shows and does, and the new database it sets up for
another Airflow, are in test_airflow_local.py.)

Each start costs half a minute: one project's two starts (started_twice, conftest.py) serve
the tests of keeping the database and of a stop with tee, and its home then moves into
test_airflow_local.py's project on the newest Airflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.airflow_local import StartedTwice, free_port
from tests.helpers import NEWEST, bake, make

pytestmark = pytest.mark.starts_airflow


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
