"""What the platform applies, the DAG author does not write (DESIGN: "Run time", "Rules:
isolation or convention"): the cluster policy in the baked plugins places every task of
every style, and the baked integrity tests check the result, on real Airflow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import NEWEST, OLDEST, VENVS, bake, make, user_environment

START = """\
import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task

DEV = True
flag = "DEV" if DEV else "PROD"
START = pendulum.datetime(2025, 1, 1, tz="UTC")
"""

# Plain Airflow with the flag, the DAG id built from it and nothing of the platform's: no
# pool, priority, retries, default_args or tags, and PROD's cron schedule kept as written.
EVERY_STYLE = {
    "factories/__init__.py": "",
    "factories/reports.py": (
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "\n"
        "\n"
        "def report(flag):\n"
        '    return EmptyOperator(task_id=f"{flag}_report")\n'
    ),
    "every_style.py": START
    + "from factories.reports import report\n"
    + 'with DAG(f"{flag}_every_style", schedule="*/5 * * * *", start_date=START):\n'
    '    start = EmptyOperator(task_id=f"{flag}_start")\n'
    "\n"
    '    @task(task_id=f"{flag}_numbers")\n'
    "    def numbers():\n"
    "        return [1, 2, 3]\n"
    "\n"
    '    @task(task_id=f"{flag}_double")\n'
    "    def double(n):\n"
    "        return 2 * n\n"
    "\n"
    "    doubled = double.expand(n=numbers())\n"
    '    echo = BashOperator.partial(task_id=f"{flag}_echo").expand(bash_command=["echo 1"])\n'
    "    start >> [doubled, echo] >> report(flag)\n",
}
# Airflow 3's @asset: a DAG of one task, which takes no default_args.
ASSET = {
    "orders_asset.py": (
        "from airflow.sdk import asset\n"
        "\n"
        "DEV = True\n"
        'flag = "DEV" if DEV else "PROD"\n'
        "\n"
        "\n"
        "@asset(\n"
        '    name=f"{flag}_orders",\n'
        '    uri=f"s3://lake/{flag.lower()}/orders",\n'
        '    schedule="@daily",\n'
        ")\n"
        "def orders():\n"
        "    pass\n"
    )
}


def write_dags(project: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = project / "bucket_contents" / "dags" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def integrity_tests(project: Path, version: str) -> str:
    """The baked project's DAG integrity tests, as `make test` runs them: their output."""
    result = subprocess.run(
        [VENVS / f"airflow-{version}" / "bin" / "python", "-m", "pytest", "-p", "no:logging"]
        + ["-q", "-rw", "tests/test_dag_integrity.py"],
        cwd=project,
        env=user_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    return " ".join((result.stdout + result.stderr).split())


@pytest.mark.parametrize("version", [NEWEST, OLDEST])
def test_a_plain_airflow_dag_of_every_style_passes_with_nothing_of_the_platforms_written(
    output: Path, version: str
) -> None:
    project = bake(output, airflow_version=version)
    write_dags(project, EVERY_STYLE | (ASSET if version[0] != "2" else {}))

    out = integrity_tests(project, version)

    assert " passed" in out and "failed" not in out and "error" not in out.lower(), out[-4000:]


def test_without_the_policy_the_integrity_tests_name_every_task_it_would_have_placed(
    output: Path,
) -> None:
    """As on an MWAA that ignores the plugins: nothing is applied, and nothing passes
    silently."""
    project = bake(output, airflow_version=NEWEST)
    write_dags(project, EVERY_STYLE | ASSET)
    (project / "bucket_contents" / "plugins" / "airflow_local_settings.py").unlink()

    out = integrity_tests(project, NEWEST)

    for line in (
        "DAG DEV_every_style, task DEV_echo (DEV_every_style.py): pool: 'default_pool' must be"
        " DEV_pool",
        "DAG DEV_orders, task orders (DEV_orders_asset.py): pool: 'default_pool' must be DEV_pool",
        "DAG PROD_every_style, task PROD_report (PROD_every_style.py): priority: a PROD task"
        " needs priority_weight >= 1000",
        "DAG PROD_every_style, task PROD_double (PROD_every_style.py): retries: a PROD task needs"
        " retries >= 1",
        "DAG DEV_every_style (DEV_every_style.py): schedule: '*/5 * * * *' runs a DEV copy on"
        " PROD's clock",
        "DAG DEV_dbt_sources (DEV_dbt_sources.py): schedule: '0 4 * * *' runs a DEV copy on",
        "DAG DEV_every_style (DEV_every_style.py): tags: [] must include 'DEV'",
    ):
        assert line in out, f"{line!r} not in\n{out[-6000:]}"


# DAG file -> its body after START: what the rules reach (connection ids in a URL and in a
# config object, a DAG Airflow cannot serialize, a template file not there), and what
# they leave alone (an argument Airflow says was not given, a task that fails on purpose).
# A reference known at run time only is named, and the rest of the file still checked.
REACH = {
    "storage.py": (
        "try:\n"
        "    from airflow.sdk import ObjectStoragePath\n"
        "except ImportError:\n"
        "    from airflow.io.path import ObjectStoragePath\n"
        'base = ObjectStoragePath("s3://aws_default@lake/data/")\n'
        'own = ObjectStoragePath(f"s3://{flag}_aws@lake/{flag.lower()}/")\n'
        'with DAG(f"{flag}_storage", schedule=None, start_date=START, tags=[flag]):\n'
        '    EmptyOperator(task_id=f"{flag}_noop")\n'
    ),
    "config_object.py": (
        "from dataclasses import dataclass\n"
        "from airflow.providers.standard.operators.python import PythonOperator\n"
        "\n"
        "\n"
        "@dataclass\n"
        "class Source:\n"
        "    conn_id: str\n"
        "    table: str\n"
        "\n"
        "\n"
        'with DAG(f"{flag}_config_object", schedule=None, start_date=START, tags=[flag]):\n'
        "    PythonOperator(\n"
        '        task_id=f"{flag}_load",\n'
        "        python_callable=print,\n"
        '        op_kwargs={"source": Source(conn_id="warehouse", table="orders")},\n'
        "    )\n"
    ),
    "not_given.py": (
        "from airflow.providers.amazon.aws.transfers.dynamodb_to_s3 import DynamoDBToS3Operator\n"
        'with DAG(f"{flag}_not_given", schedule=None, start_date=START, tags=[flag]):\n'
        "    DynamoDBToS3Operator(\n"
        '        task_id=f"{flag}_export",\n'
        '        dynamodb_table_name="orders",\n'
        '        s3_bucket_name="lake",\n'
        '        source_aws_conn_id=f"{flag}_aws",\n'
        "    )\n"
    ),
    "on_purpose.py": (
        'with DAG(f"{flag}_on_purpose", schedule=None, start_date=START, tags=[flag]):\n'
        "    EmptyOperator(\n"
        '        task_id=f"{flag}_alert_test", retries=0, params={"fails_on_purpose": True}\n'
        "    )\n"
    ),
    "dynamic.py": (
        'with DAG(f"{flag}_dynamic", schedule=None, start_date=START, tags=[flag]):\n'
        "\n"
        '    @task(task_id=f"{flag}_pick")\n'
        "    def pick():\n"
        '        return f"{flag}_dbt_models"\n'
        "\n"
        '    TriggerDagRunOperator(task_id=f"{flag}_run_picked", trigger_dag_id=pick())\n'
        '    TriggerDagRunOperator(task_id=f"{flag}_run_other", trigger_dag_id="dbt_sources")\n'
    ),
    "custom_weight.py": (
        "from airflow.task.priority_strategy import PriorityWeightStrategy\n"
        "\n"
        "\n"
        "class Decreasing(PriorityWeightStrategy):\n"
        "    def get_weight(self, ti):\n"
        "        return 1\n"
        "\n"
        "\n"
        'with DAG(f"{flag}_custom_weight", schedule=None, start_date=START, tags=[flag]):\n'
        '    EmptyOperator(task_id=f"{flag}_weighed", weight_rule=Decreasing())\n'
    ),
    "missing_template.py": (
        "from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator\n"
        'with DAG(f"{flag}_missing_template", schedule=None, start_date=START, tags=[flag]):\n'
        "    SQLExecuteQueryOperator(\n"
        '        task_id=f"{flag}_query", sql="sql/missing.sql", conn_id=f"{flag}_db"\n'
        "    )\n"
    ),
}


# Plain Airflow, as a team has it before make adopt: no flag, ids as written, a cross-DAG
# reference an XComArg that make adopt leaves (and names) and another it prefixes.
ADOPTED_DYNAMIC = """\
import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, task

with DAG("adopted_dynamic", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):

    @task
    def pick():
        return "dbt_models"

    TriggerDagRunOperator(task_id="run_picked", trigger_dag_id=pick())
    TriggerDagRunOperator(task_id="run_named", trigger_dag_id="dbt_sources")
"""


@pytest.fixture(scope="module")
def reached(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The integrity tests' output on a project holding the REACH DAGs, and ADOPTED_DYNAMIC
    after make adopt."""
    project = bake(tmp_path_factory.mktemp("reach"), airflow_version=NEWEST)
    write_dags(project, {name: START + body for name, body in REACH.items()})
    write_dags(project, {"sql/orders.sql": "select 1\n", "adopted_dynamic.py": ADOPTED_DYNAMIC})
    adopted = make(
        project, "adopt", airflow_version=NEWEST, FILES="bucket_contents/dags/adopted_dynamic.py"
    )
    assert "adopted_dynamic.py:11: trigger_dag_id is computed" in adopted.stdout, adopted.stdout
    return integrity_tests(project, NEWEST)


def test_a_connection_id_in_a_storage_url_or_a_config_object_is_checked(reached: str) -> None:
    for line in (
        "DAG DEV_storage (DEV_storage.py): connection id: ObjectStoragePath base='aws_default'"
        " runs as the MWAA execution role",
        "DAG PROD_config_object, task PROD_load (PROD_config_object.py): connection id:"
        " op_kwargs.source.conn_id='warehouse' must start with PROD_",
    ):
        assert line in reached, f"{line!r} not in\n{reached[-6000:]}"
    assert "ObjectStoragePath own" not in reached


def test_an_argument_airflow_marks_not_given_and_a_task_failing_on_purpose_pass(
    reached: str,
) -> None:
    assert "_not_given.py)" not in reached, reached[-6000:]
    assert "_on_purpose.py)" not in reached, reached[-6000:]


def test_a_reference_known_at_run_time_is_named_and_the_rest_still_checked(reached: str) -> None:
    for line in (
        "DAG DEV_dynamic, task DEV_run_picked (DEV_dynamic.py): cross-DAG reference:"
        " trigger_dag_id is PlainXComArg, known at run time: cannot check, dynamic; make sure"
        " it names a DEV_ DAG",
        "DAG PROD_dynamic, task PROD_run_other (PROD_dynamic.py): cross-DAG reference:"
        " trigger_dag_id='dbt_sources' must name a PROD_ DAG or task",
    ):
        assert line in reached, f"{line!r} not in\n{reached[-6000:]}"
    assert "is not iterable" not in reached  # no rule crashed on it


def test_an_adopted_files_xcomarg_reference_is_named_and_its_other_reference_checked(
    reached: str,
) -> None:
    line = (
        "DAG DEV_adopted_dynamic, task run_picked (DEV_adopted_dynamic.py): cross-DAG"
        " reference: trigger_dag_id is PlainXComArg, known at run time: cannot check, dynamic"
    )
    assert line in reached, reached[-6000:]
    assert "task run_named" not in reached, reached[-6000:]  # checked, and its own env's


def test_every_dag_is_serialized_as_the_dag_processor_does(reached: str) -> None:
    line = (
        "DAG DEV_custom_weight (DEV_custom_weight.py): serialization: Airflow cannot serialize it"
    )
    assert line in reached, reached[-6000:]


# Each deployed copy's template, rendered as a worker renders it, and each copy's schedule.
RENDER = """
import json, os, sys
from pathlib import Path
from mwaa_deploy import config
from mwaa_deploy.instance import instance_files

dags, home = sys.argv[1], Path(os.environ["AIRFLOW_HOME"])
plugins = instance_files.write_plugins(config.load(), home / "plugins")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(plugins)
sys.path.insert(0, dags)  # as MWAA puts its DAGs folder on the path
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=dags)
assert not bag.import_errors, bag.import_errors
found = {}
for owner in ("DEV", "SBX_ann", "PROD"):
    timetable = bag.dags[f"{owner}_dbt_sources"].timetable
    if not timetable.can_be_scheduled:
        timetable = None
    query = bag.dags[f"{owner}_report"].get_task(f"{owner}_query")
    found[owner] = {
        "sql": query.render_template(query.sql, {"ds": "2025-01-01"}),
        "from": Path(query.get_template_env().get_template(query.sql).filename).parent.name,
        "schedule": timetable and (getattr(timetable, "summary", None) or timetable.expression),
    }
print(json.dumps(found))
"""

REPORT = (
    START.replace('flag = "DEV" if DEV else "PROD"', "flag = environment(DEV)").replace(
        "DEV = True", "from common.conventions import environment\n\nDEV = True"
    )
    + "from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator\n"
    'with DAG(f"{flag}_report", schedule=None, start_date=START, tags=[flag]):\n'
    "    SQLExecuteQueryOperator(\n"
    '        task_id=f"{flag}_query", sql="sql/report.sql", conn_id=f"{flag}_db"\n'
    "    )\n"
)


def deployed_copies(project: Path, version: str, home: Path) -> dict[str, dict[str, str]]:
    """Deploy DEV, PROD and the sandbox ann to the local bucket; what each copy renders
    and runs on."""
    for deployed in (
        make(project, "deploy-dev", "deploy-prod", airflow_version=version),
        make(project, "deploy-dev", airflow_version=version, SANDBOX="ann"),
    ):
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    read = subprocess.run(
        [VENVS / f"airflow-{version}" / "bin" / "python", "-c", RENDER]
        + [str(project / "local_bucket" / "dags")],
        cwd=project,
        env=user_environment()
        | {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert read.returncode == 0, read.stderr[-4000:]
    return json.loads(read.stdout.splitlines()[-1])


@pytest.mark.parametrize("version", [NEWEST, OLDEST])
def test_each_copy_renders_its_own_template_file_and_only_prods_runs_on_the_clock(
    output: Path, tmp_path: Path, version: str
) -> None:
    project = bake(output, airflow_version=version)
    write_dags(project, {"report.py": REPORT, "sql/report.sql": "select '{{ ds }}' -- mine\n"})
    home = tmp_path / "airflow-home"

    copies = deployed_copies(project, version, home)

    assert {owner: copy["sql"] for owner, copy in copies.items()} == dict.fromkeys(
        ("DEV", "SBX_ann", "PROD"), "select '2025-01-01' -- mine"
    )
    assert {owner: copy["from"] for owner, copy in copies.items()} == {
        "DEV": "DEV_sql",
        "SBX_ann": "SBX_ann_sql",
        "PROD": "PROD_sql",
    }
    assert {owner: copy["schedule"] for owner, copy in copies.items()} == {
        "DEV": None,
        "SBX_ann": None,
        "PROD": "0 4 * * *",
    }


def test_dev_copies_keep_the_clock_when_dev_runs_on_schedule_says_so(
    output: Path, tmp_path: Path
) -> None:
    project = bake(output, airflow_version=NEWEST)
    write_dags(project, {"report.py": REPORT, "sql/report.sql": "select 1\n"})
    pyproject = project / "pyproject.toml"
    off = "dev_runs_on_schedule = false\n"
    assert pyproject.read_text().count(off) == 1
    pyproject.write_text(pyproject.read_text().replace(off, "dev_runs_on_schedule = true\n"))

    copies = deployed_copies(project, NEWEST, tmp_path / "airflow-home")

    assert {owner: copy["schedule"] for owner, copy in copies.items()} == dict.fromkeys(
        ("DEV", "SBX_ann", "PROD"), "0 4 * * *"
    )


def test_conventions_turn_off_in_pyproject_and_isolation_rules_do_not(output: Path) -> None:
    project = bake(output, airflow_version=NEWEST)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    for setting in ("task_id_prefix", "environment_tag"):
        text = text.replace(f"{setting} = true\n", f"{setting} = false\n")
    pyproject.write_text(text)
    write_dags(
        project,
        {
            "plain_ids.py": START
            + "from airflow.providers.standard.sensors.external_task import ExternalTaskSensor\n"
            + 'with DAG(f"{flag}_plain_ids", schedule=None, start_date=START):\n'
            '    EmptyOperator(task_id="load")\n'
            '    TriggerDagRunOperator(task_id="next", trigger_dag_id="PROD_dbt_models")\n'
            '    ExternalTaskSensor(task_id="wait", external_dag_id=f"{flag}_dbt_models",\n'
            '                       external_task_id="run_job", mode="reschedule")\n'
        },
    )

    out = integrity_tests(project, NEWEST)

    # A task id names a task of a DAG whose id carries the environment: a convention.
    assert "task id:" not in out and "tags:" not in out and "external_task_id" not in out, out[
        -6000:
    ]
    line = (
        "DAG DEV_plain_ids, task next (DEV_plain_ids.py): cross-DAG reference:"
        " trigger_dag_id='PROD_dbt_models' must name a DEV_ DAG or task"
    )
    assert line in out, out[-6000:]


def test_a_dag_airflow_2_parses_against_its_database_passes_on_airflow_2(output: Path) -> None:
    """Airflow 2 reads its metadata database while it parses a DAG that uses a dataset
    alias, as MWAA's scheduler can: the integrity tests give it one, so no import error."""
    project = bake(output, airflow_version=OLDEST)
    write_dags(
        project,
        {
            "aliased.py": "import pendulum\n"
            "from airflow import DAG\n"
            "from airflow.datasets import DatasetAlias\n"
            "from airflow.operators.empty import EmptyOperator\n"
            "DEV = True\n"
            'flag = "DEV" if DEV else "PROD"\n'
            'with DAG(f"{flag}_aliased", schedule=[DatasetAlias(f"{flag.lower()}_orders")],\n'
            '         start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), tags=[flag]):\n'
            '    EmptyOperator(task_id=f"{flag}_load")\n'
        },
    )
    out = integrity_tests(project, OLDEST)
    assert "aliased.py: import error" not in out and " passed" in out, out[-6000:]
    assert " failed" not in out, out[-6000:]
