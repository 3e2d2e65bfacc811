"""The baked integrity tests catch every way a DAG reaches into the other environment, on
the real Airflow at both ends of the supported range, and say which DAG, task and rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import NEWEST, OLDEST, VENVS, bake, commit_all, make, user_environment

# What every hand-made DAG below starts with; it imports the same on Airflow 2 and 3.
HEADER = """\
import time

import boto3
import pendulum
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.s3 import S3ListOperator
from airflow.providers.dbt.cloud.sensors.dbt import DbtCloudJobRunSensor
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor

try:
    from airflow.sdk import DAG, Asset, TaskGroup, task
except ImportError:
    from airflow import DAG
    from airflow.datasets import Dataset as Asset
    from airflow.decorators import task
    from airflow.utils.task_group import TaskGroup

DEV = True
flag = "DEV" if DEV else "PROD"
START = pendulum.datetime(2025, 1, 1, tz="UTC")
"""

# DAG file -> (its body after HEADER, lines the integrity tests must print for it).
BROKEN_DAGS = {
    "missing_package.py": (
        "import not_installed_anywhere\n",
        ["DEV_missing_package.py: import error:", "PROD_missing_package.py: import error:"],
    ),
    "hardcoded_id.py": (
        'with DAG("DEV_hardcoded_id", schedule=None, start_date=START, tags=[flag]):\n'
        '    EmptyOperator(task_id=f"{flag}_noop")\n',
        [
            "DAG DEV_hardcoded_id: duplicate DAG id: defined in both DEV_hardcoded_id.py and"
            " PROD_hardcoded_id.py; build the DAG id from dev_prod_flag so the DEV and PROD"
            " copies differ",
        ],
    ),
    "unprefixed.py": (
        'with DAG(f"{flag}_unprefixed", schedule=None, start_date=START, tags=["dbt", "DEV"]):\n'
        '    with TaskGroup("extract"):\n'
        '        EmptyOperator(task_id=f"{flag}_orders")\n'
        '    EmptyOperator(task_id="load")\n',
        [
            "DAG DEV_unprefixed (DEV_unprefixed.py): task group id: 'extract' must start with DEV_",
            "DAG PROD_unprefixed, task extract.PROD_orders (PROD_unprefixed.py): task id:"
            " 'extract.PROD_orders' must start with PROD_",
            "DAG DEV_unprefixed, task load (DEV_unprefixed.py): task id: 'load' must start with"
            " DEV_",
            "DAG PROD_unprefixed (PROD_unprefixed.py): tags: ['DEV', 'PROD', 'dbt'] must include"
            " 'PROD' and no other environment",
        ],
    ),
    "references.py": (
        'with DAG(f"{flag}_references", schedule=None, start_date=START, tags=[flag]):\n'
        '    TriggerDagRunOperator(task_id=f"{flag}_trigger", trigger_dag_id="PROD_dbt_models")\n'
        '    ExternalTaskSensor(task_id=f"{flag}_wait", external_dag_id="dbt_sources")\n'
        '    TriggerDagRunOperator.partial(task_id=f"{flag}_fan_out").expand(\n'
        '        trigger_dag_id=[f"{flag}_dbt_models", "dbt_sources"]\n'
        "    )\n",
        [
            "DAG DEV_references, task DEV_trigger (DEV_references.py): cross-DAG reference:"
            " trigger_dag_id='PROD_dbt_models' must name a DEV_ DAG or task;"
            " build it from dev_prod_flag",
            "DAG PROD_references, task PROD_wait (PROD_references.py): cross-DAG reference:"
            " external_dag_id='dbt_sources' must name a PROD_ DAG or task;"
            " build it from dev_prod_flag",
            "DAG DEV_references, task DEV_fan_out (DEV_references.py): cross-DAG reference:"
            " trigger_dag_id='dbt_sources' must name a DEV_ DAG or task;"
            " build it from dev_prod_flag",
            "DAG PROD_references, task PROD_wait (PROD_references.py): cross-DAG reference:"
            " external_dag_id='dbt_sources' names no DAG here",
        ],
    ),
    "resources.py": (
        'orders = Asset("s3://lake/PROD/orders")\n'
        'with DAG(f"{flag}_resources", schedule=[orders], start_date=START, tags=[flag]):\n'
        '    EmptyOperator(task_id=f"{flag}_publish", outlets=[Asset("s3://lake/x")], pool="etl")\n'
        '    DbtCloudJobRunSensor(task_id=f"{flag}_wait", run_id=1, dbt_cloud_conn_id="dbt")\n'
        "    DbtCloudJobRunSensor.partial(\n"
        '        task_id=f"{flag}_wait_each", dbt_cloud_conn_id="dbt_cloud_default"\n'
        "    ).expand(run_id=[1, 2])\n",
        [
            "DAG PROD_resources, task PROD_publish (PROD_resources.py): pool: 'etl' is not"
            " PROD's: a PROD task runs in default_pool, or in a PROD_ pool of its own",
            "DAG DEV_resources (DEV_resources.py): asset: schedule 's3://lake/PROD/orders' names"
            " PROD: a DEV DAG uses DEV's assets only; build it from dev_prod_flag, as in"
            " s3://lake/dev/orders",
            "DAG PROD_resources, task PROD_publish (PROD_resources.py): asset: outlets"
            " 's3://lake/x' names no environment: give it a part that is prod or starts with"
            " prod_ (any case), as in s3://lake/prod/orders or s3://lake/prod_orders",
            "DAG PROD_resources, task PROD_wait (PROD_resources.py): connection id:"
            " dbt_cloud_conn_id='dbt' must start with PROD_; each environment has its own"
            " connections",
            "DAG DEV_resources, task DEV_wait_each (DEV_resources.py): connection id:"
            " dbt_cloud_conn_id='dbt_cloud_default' must start with DEV_; each environment"
            " has its own connections",
        ],
    ),
    # Data lake paths are lowercase: the other environment's, in any case, is still refused,
    # and a word that merely begins like an environment (product, device) names none.
    "assets.py": (
        'other = "prod" if DEV else "Dev"\n'
        'with DAG(f"{flag}_assets", schedule=None, start_date=START, tags=[flag]):\n'
        '    EmptyOperator(task_id=f"{flag}_read", inlets=[Asset(f"s3://lake/{other}/orders")])\n'
        '    EmptyOperator(task_id=f"{flag}_write", outlets=[Asset("s3://lake/product/device")])\n',
        [
            "DAG DEV_assets, task DEV_read (DEV_assets.py): asset: inlets"
            " 's3://lake/prod/orders' names PROD: a DEV DAG uses DEV's assets only",
            "DAG PROD_assets, task PROD_read (PROD_assets.py): asset: inlets"
            " 's3://lake/Dev/orders' names DEV: a PROD DAG uses PROD's assets only",
            "DAG DEV_assets, task DEV_write (DEV_assets.py): asset: outlets"
            " 's3://lake/product/device' names no environment",
            "DAG PROD_assets, task PROD_write (PROD_assets.py): asset: outlets"
            " 's3://lake/product/device' names no environment",
        ],
    ),
    # A connection or none, on operators and in task code: each environment's own only.
    "aws_calls.py": (
        'with DAG(f"{flag}_aws_calls", schedule=None, start_date=START, tags=[flag]):\n'
        '    S3ListOperator(task_id=f"{flag}_default", bucket="lake")\n'
        '    S3ListOperator(task_id=f"{flag}_dev", bucket="lake", aws_conn_id="DEV_aws")\n'
        '    S3ListOperator(task_id=f"{flag}_none", bucket="lake", aws_conn_id=None)\n'
        "\n"
        '    @task(task_id=f"{flag}_in_code")\n'
        "    def in_code():\n"
        '        S3Hook().load_string("x", "a", "lake")\n'
        '        S3Hook(aws_conn_id="PROD_aws").load_string("x", "a", "lake")\n'
        '        S3Hook(aws_conn_id=f"{flag}_aws").load_string("x", "a", "lake")\n'
        '        boto3.client("s3")\n'
        "\n"
        "    in_code()\n",
        [
            "DAG DEV_aws_calls, task DEV_default (DEV_aws_calls.py): AWS connection:"
            " aws_conn_id='aws_default' runs as the MWAA execution role, which reaches neither"
            " environment's data; use DEV_aws, as aws_conn_id(dev_prod_flag) gives",
            "DAG PROD_aws_calls, task PROD_dev (PROD_aws_calls.py): AWS connection:"
            " aws_conn_id='DEV_aws' is not PROD's: each environment reaches AWS as its own role;"
            " use PROD_aws",
            "DAG DEV_aws_calls, task DEV_none (DEV_aws_calls.py): AWS connection:"
            " aws_conn_id=None runs as the MWAA execution role",
            "DEV_aws_calls.py:30: AWS connection: S3Hook: no aws_conn_id, so 'aws_default',"
            " runs as the MWAA execution role",
            "DEV_aws_calls.py:31: AWS connection: S3Hook: aws_conn_id='PROD_aws' is not DEV's",
            "PROD_aws_calls.py:33: AWS connection: boto3.client() runs as the MWAA execution"
            " role; use a hook of the Amazon provider with aws_conn_id=aws_conn_id(dev_prod_flag)",
        ],
    ),
    # Someone else's pool: the policy puts DEV's tasks in DEV's pool, and leaves a PROD
    # task's own choice as written, for this rule to refuse.
    "slots.py": (
        'with DAG(f"{flag}_slots", schedule=None, start_date=START, tags=[flag]):\n'
        '    EmptyOperator(task_id=f"{flag}_jumps", pool="DEV_pool", priority_weight=5000)\n',
        [
            "DAG PROD_slots, task PROD_jumps (PROD_slots.py): pool: 'DEV_pool' is not PROD's: a"
            " PROD task runs in default_pool, or in a PROD_ pool of its own",
        ],
    ),
    "slow.py": (
        "time.sleep(2)  # a query or an API call at the top level\n"
        'with DAG(f"{flag}_slow", schedule=None, start_date=START, tags=[flag]):\n'
        '    EmptyOperator(task_id=f"{flag}_noop")\n',
        ["DEV_slow.py: parsing took 2.", "s, over the budget of 1.5 s"],
    ),
    # A namespace handed to a function that writes DEV: no syntax tree shows it, the PROD
    # module as Airflow imported it does.
    "run_time_flag.py": (
        "def _set(namespace):\n"
        "    namespace.update(DEV=True)\n"
        "\n"
        "\n"
        "_set(globals())\n"
        'with DAG(f"{flag}_run_time_flag", schedule=None, start_date=START, tags=[flag]):\n'
        '    EmptyOperator(task_id=f"{flag}_noop")\n',
        [
            "PROD_run_time_flag.py: DEV is True once Airflow has imported it: it sets DEV back to"
            " True at run time"
        ],
    ),
}

# DAG file -> its body after HEADER; it breaks no rule, in either copy.
SOUND_DAGS = {
    "lake_paths.py": (
        "env = flag.lower()\n"
        'orders = Asset(f"s3://warehouse/{env}/orders")\n'
        'with DAG(f"{flag}_lake_paths", schedule=[orders], start_date=START, tags=[flag]):\n'
        "    EmptyOperator(\n"
        '        task_id=f"{flag}_publish",\n'
        "        outlets=[\n"
        '            Asset(f"s3://lake/{env}_orders"),\n'
        '            Asset(f"s3://lake/{flag}-orders/2025"),\n'
        '            Asset(f"s3://lake/{env}/product/device"),\n'
        "        ],\n"
        "    )\n"
    ),
}

FAILED_TESTS = [
    "test_both_builds_load_without_import_errors",
    "test_no_dag_id_is_defined_twice",
    "test_every_source_dag_is_deployed_once_per_environment",
    "test_dag_task_and_group_ids_and_tags_carry_their_environment",
    "test_cross_dag_references_stay_in_their_environment",
    "test_cross_dag_references_name_a_dag_of_the_same_build",
    "test_assets_and_connections_belong_to_their_environment",
    "test_aws_is_reached_as_the_environments_own_role",
    "test_dev_tasks_share_devs_pool_and_prod_tasks_go_first",
    "test_every_dag_file_parses_within_the_budget",
    "test_no_prod_module_sets_dev_back_at_run_time",
]


def integrity_tests(project: Path, version: str) -> subprocess.CompletedProcess[str]:
    """The baked project's DAG integrity tests, run as `make test` runs them."""
    return subprocess.run(
        [VENVS / f"airflow-{version}" / "bin" / "python", "-m", "pytest", "-p", "no:logging"]
        + ["-q", "tests/test_dag_integrity.py"],
        cwd=project,
        env=user_environment(),
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("version", [NEWEST, OLDEST])
def test_integrity_tests_name_the_dag_task_and_rule_each_broken_dag_breaks(
    output: Path, version: str
) -> None:
    project = bake(output, airflow_version=version)
    assert make(project, "install", airflow_version=version).returncode == 0
    dags = project / "bucket_contents" / "dags"
    for name, (body, _) in BROKEN_DAGS.items():
        (dags / name).write_text(HEADER + body)
    for name, body in SOUND_DAGS.items():
        (dags / name).write_text(HEADER + body)
    guide = (project / "README.md").read_text().split("### Writing a new DAG")[1]
    (dags / "orders.py").write_text(guide.split("```python\n")[1].split("```")[0])
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "dag_parse_budget_seconds = 5.0", "dag_parse_budget_seconds = 1.5"
        )
    )

    result = integrity_tests(project, version)

    out = result.stdout
    failed = [line.split("::")[1].split()[0] for line in out.splitlines() if "FAILED" in line]
    assert failed == FAILED_TESTS, out[-3000:]
    for _, expected in BROKEN_DAGS.values():
        for line in expected:
            assert line in out, f"{line!r} not in\n{out[-6000:]}"
    assert "(DEV_slots.py)" not in out  # the policy put DEV's task in DEV's place
    assert "_aws_calls.py:32:" not in out  # a connection the code computes: known at run time
    assert "DEV_run_time_flag.py: DEV is" not in out  # DEV's copy says True as written
    # The example DAGs, the one the README shows and the sound ones break nothing, ruff's
    # rules included.
    examples = ("dbt_models", "dbt_sources", "lake_heartbeat", "orders")
    for example in (*examples, *(n[:-3] for n in SOUND_DAGS)):
        assert f"_{example}.py)" not in out and f"_{example}.py:" not in out, out[-6000:]
    ruff = [
        VENVS / f"airflow-{version}" / "bin" / "ruff",
        "check",
        "bucket_contents/dags/orders.py",
    ]
    linted = subprocess.run(ruff, cwd=project, capture_output=True, text=True, check=False)
    assert linted.returncode == 0, linted.stdout + linted.stderr


# The prefix from the conventions helper, as the README teaches: DEV_, PROD_ or SBX_<name>_.
CONVENTIONS_HEADER = HEADER.replace(
    'flag = "DEV" if DEV else "PROD"', "flag = environment(DEV)"
).replace("DEV = True", "from common.conventions import environment\n\nDEV = True")

# DAG file a story branch adds -> (its text, lines the integrity tests must print for it).
SANDBOXED_DAGS = {
    "orders.py": (
        CONVENTIONS_HEADER
        + 'with DAG(f"{flag}_orders", schedule=None, start_date=START, tags=[flag]):\n'
        "    TriggerDagRunOperator(\n"
        # An id built otherwise than the convention writes one: the sandbox cannot see it.
        '        task_id=f"{flag}_models", trigger_dag_id=flag + "_dbt_models"\n'
        "    )\n",
        [
            "UserWarning: DAG SBX_ann_orders, task SBX_ann_models (SBX_ann_orders.py):"
            " cross-DAG reference: trigger_dag_id='SBX_ann_dbt_models' names no DAG here;"
            " the sandbox holds what the branch changes: FULL=1 make deploy-dev",
        ],
    ),
    "hardcoded_flag.py": (
        HEADER
        + 'with DAG(f"{flag}_hardcoded_flag", schedule=None, start_date=START, tags=[flag]):\n'
        '    EmptyOperator(task_id=f"{flag}_noop")\n',
        [
            "DAG DEV_hardcoded_flag: duplicate DAG id: defined in both DEV_hardcoded_flag.py"
            " and SBX_ann_hardcoded_flag.py",
        ],
    ),
    "lake.py": (
        CONVENTIONS_HEADER
        + 'with DAG(f"{flag}_lake", schedule=None, start_date=START, tags=[flag]):\n'
        '    EmptyOperator(task_id=f"{flag}_write", outlets=[Asset("s3://lake/dev/orders")])\n',
        [
            "DAG SBX_ann_lake, task SBX_ann_write (SBX_ann_lake.py): asset: outlets"
            " 's3://lake/dev/orders' names DEV: a SBX_ann DAG uses SBX_ann's assets only;"
            " build it from dev_prod_flag, as in s3://lake/dev/sbx_ann/orders",
        ],
    ),
    # A sandbox's own AWS connection: it has none, it runs as DEV (and in DEV's pool,
    # whatever it asks: the policy puts it there).
    "own_slots.py": (
        CONVENTIONS_HEADER
        + 'with DAG(f"{flag}_own_slots", schedule=None, start_date=START, tags=[flag]):\n'
        "    S3ListOperator(\n"
        '        task_id=f"{flag}_list", bucket="lake", aws_conn_id=f"{flag}_aws",\n'
        '        pool=f"{flag}_pool",\n'
        "    )\n",
        [
            "DAG SBX_ann_own_slots, task SBX_ann_list (SBX_ann_own_slots.py): AWS connection:"
            " aws_conn_id='SBX_ann_aws' is not DEV's: each environment reaches AWS as its own"
            " role; use DEV_aws",
        ],
    ),
}

# A story branch's DAG that takes everything from the conventions helper: in its sandbox,
# DEV's pool, DEV's AWS connection and data inside DEV's, and no rule broken.
INHERITING_DAG = CONVENTIONS_HEADER.replace(
    "import environment", "import aws_conn_id, data_prefix, environment"
) + (
    'with DAG(f"{flag}_inherits", schedule=None, start_date=START, tags=[flag]):\n'
    "    S3ListOperator(\n"
    '        task_id=f"{flag}_list",\n'
    '        bucket="lake",\n'
    "        prefix=data_prefix(flag),\n"
    "        aws_conn_id=aws_conn_id(flag),\n"
    '        outlets=[Asset(f"s3://lake/{data_prefix(flag)}orders")],\n'
    "    )\n"
)


def test_on_a_story_branch_the_integrity_tests_load_its_sandbox_too(output: Path) -> None:
    """What the branch's deploy-dev would put in its sandbox loads beside DEV and PROD, under
    the same rules with the sandbox's prefix; a DAG it triggers but leaves out (named other
    than as the convention writes an id, which the sandbox would hold) is a warning."""
    project = bake(output, airflow_version=NEWEST)
    assert make(project, "install", airflow_version=NEWEST).returncode == 0
    commit_all(project)
    subprocess.run(["git", "checkout", "-q", "-b", "story/ann"], cwd=project, check=True)
    for name, (text, _) in SANDBOXED_DAGS.items():
        (project / "bucket_contents" / "dags" / name).write_text(text)
    (project / "bucket_contents" / "dags" / "inherits.py").write_text(INHERITING_DAG)

    result = integrity_tests(project, NEWEST)

    out = " ".join(result.stdout.split())
    for _, expected in SANDBOXED_DAGS.values():
        for line in expected:
            assert line in out, f"{line!r} not in\n{result.stdout[-6000:]}"
    assert "SBX_ann_orders.py" in out and "SBX_ann_dbt_models.py" not in out
    assert "_inherits.py)" not in out and "_inherits.py:" not in out, result.stdout[-6000:]


# An asset URI or name -> the environments it names.
NAMED = {
    "s3://warehouse/prod/orders": ["PROD"],
    "s3://lake/PROD/orders": ["PROD"],
    "s3://lake/prod_orders": ["PROD"],
    "s3://lake/Prod-orders/2025": ["PROD"],
    "prod_orders": ["PROD"],
    "s3://dev.lake/orders": ["DEV"],
    "postgres://db:5432/dev": ["DEV"],
    "s3://lake/dev/prod_orders": ["DEV", "PROD"],
    "s3://lake/product/device": [],
    "s3://lake/production/orders_prod": [],
    "s3://lake/devices/prodx": [],
    "s3://lake/x": [],
    "s3://lake/sbx_ann/orders": ["SBX_ann"],
    "s3://lake/SBX_ann_orders": ["SBX_ann"],
    "s3://lake/sbx_ann/dev_orders": ["DEV", "SBX_ann"],
    "s3://lake/sbxtra/orders": [],
}


def test_an_asset_names_an_environment_only_in_a_part_of_its_own(output: Path) -> None:
    project = bake(output)
    script = (
        "import json, sys\n"
        "from tests.resource_rules import environments_named\n"
        "for text in json.load(sys.stdin):\n"
        "    print(json.dumps(sorted(environments_named(text))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project,
        input=json.dumps(list(NAMED)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    named = dict(zip(NAMED, map(json.loads, result.stdout.splitlines()), strict=True))
    assert named == NAMED
