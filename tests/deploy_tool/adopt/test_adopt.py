"""make adopt (DESIGN: Adopting existing DAGs): a codemod on the concrete syntax tree that
gives existing DAG files the convention in place, comments and layout kept; never renames
what a string names; idempotent; every file compiles; what is left named `file:line`. And
make retire-unprefixed: only the bucket's committed old copies of adopted files go."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from mwaa_deploy.__main__ import main
from mwaa_deploy.adopt import retire
from mwaa_deploy.adopt.codemod import adopt_source
from mwaa_deploy.adopt.settings import turn_off
from mwaa_deploy.bucket.local_bucket import LocalBucket
from tests.deploy_tool.helpers import commit
from tests.helpers import NEWEST, VENVS

HEADER = '''"""Orders, loaded every morning."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, dag, task  # the Task SDK
'''
CLASSIC = (
    HEADER
    + """from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor

DAG_ID = "orders"
orders = Asset("s3://lake/orders")

# Comments stay where they are.
with DAG(
    dag_id=DAG_ID,
    schedule=[orders],
    tags=["sales"],
    default_args={"conn_id": "postgres_default"},
):
    TriggerDagRunOperator(task_id="refresh", trigger_dag_id="dbt_models")
    ExternalTaskSensor(task_id="wait", external_dag_id="loads", aws_conn_id="aws_default")


@dag(schedule=None)
def cleanup():
    pass


cleanup()
"""
)
BRANCHES = (
    HEADER
    + """
with DAG("branches", schedule=None):

    @task.branch
    def choose() -> str:
        return "left"

    @task
    def left(ti=None) -> str:
        return ti.xcom_pull("choose")

    @task(task_id="right", templates_dict={"x": "{{ ti.xcom_pull(task_ids='left') }}"})
    def right() -> None:
        pass

    choose() >> [left(), right()]
"""
)


def adopted(text: str) -> str:
    result = adopt_source("x.py", text)
    assert result.report == [], result.report
    return result.text


def test_flag_and_import_go_after_the_docstring_and_the_future_import() -> None:
    tree = ast.parse(adopted(CLASSIC))
    statements = [ast.unparse(node) for node in tree.body]
    assert statements[1] == "from __future__ import annotations"
    flag = statements.index("DEV = True")
    assert statements[flag + 1] == "dev_prod_flag = environment(DEV)"
    imports = [i for i, node in enumerate(tree.body) if isinstance(node, ast.ImportFrom)]
    assert max(imports) < flag  # after every import, so no linter flags one below it
    assert "from common.conventions import" in statements[flag - 1]


def test_the_adopted_file_compiles_and_keeps_its_comments_and_layout() -> None:
    text = adopted(CLASSIC)
    compile(text, "x.py", "exec")
    assert "# Comments stay where they are.\nwith DAG(\n    dag_id=DAG_ID,\n" in text
    assert "import DAG, Asset, dag, task  # the Task SDK\n" in text


def test_dag_ids_and_cross_dag_references_carry_the_environment_and_tags_are_left() -> None:
    """The owner's tag is the platform's to add (its cluster policy), not the file's."""
    text = adopted(CLASSIC)
    assert 'DAG_ID = f"{dev_prod_flag}_orders"' in text
    assert 'tags=["sales"]' in text
    assert 'trigger_dag_id=f"{dev_prod_flag}_dbt_models"' in text
    assert 'external_dag_id=f"{dev_prod_flag}_loads"' in text
    assert '@dag(schedule=None, dag_id=f"{dev_prod_flag}_cleanup")' in text
    branches = adopted(BRANCHES)
    assert 'DAG(f"{dev_prod_flag}_branches", schedule=None)' in branches


def test_assets_paths_and_connection_ids_become_the_environments() -> None:
    text = adopted(CLASSIC)
    assert 'Asset(f"s3://lake/{data_prefix(dev_prod_flag)}orders")' in text
    assert '{"conn_id": f"{settings_of(dev_prod_flag)}_postgres_default"}' in text
    assert "aws_conn_id=aws_conn_id(dev_prod_flag)" in text
    storage = adopted(
        HEADER
        + 'from airflow.sdk import ObjectStoragePath\n\nbase = ObjectStoragePath("s3://aws_default@data/raw")\n'
    )
    assert (
        'ObjectStoragePath(f"s3://{aws_conn_id(dev_prod_flag)}@data/{data_prefix(dev_prod_flag)}raw")'
        in storage
    )


def site_packages() -> list[str]:
    """Where the newest baked venv has Airflow and its providers, as make adopt reads them."""
    return [str(next((VENVS / f"airflow-{NEWEST}").glob("lib/python*/site-packages")))]


def test_connections_an_operator_uses_when_none_is_given_become_the_environments() -> None:
    """Read off the installed provider: the defaults a DAG never writes (fs_default, both
    of S3FileTransformOperator's), and no aws_conn_id where a class takes none."""
    text = HEADER + (
        "from airflow.providers.amazon.aws.operators.s3 import S3FileTransformOperator\n"
        "from airflow.providers.amazon.aws.transfers.dynamodb_to_s3 import DynamoDBToS3Operator\n"
        "from airflow.providers.standard.sensors.filesystem import FileSensor\n"
        "\n"
        'with DAG("x", schedule=None, default_args={"filepath": "/tmp"}):\n'
        '    FileSensor(task_id="wait", filepath="/tmp/x")\n'
        '    S3FileTransformOperator(task_id="t", source_s3_key="a", dest_s3_key="b")\n'
        '    DynamoDBToS3Operator(task_id="d", dynamodb_table_name="t", s3_bucket_name="b")\n'
    )
    result = adopt_source("x.py", text, site_packages())
    assert result.report == []
    wait, transform, dump = (line for line in result.text.splitlines() if "task_id=" in line)
    assert 'fs_conn_id=f"{settings_of(dev_prod_flag)}_fs_default"' in wait
    assert "source_aws_conn_id=aws_conn_id(dev_prod_flag)" in transform
    assert "dest_aws_conn_id=aws_conn_id(dev_prod_flag)" in transform
    assert "source_aws_conn_id=aws_conn_id(dev_prod_flag)" in dump
    assert " aws_conn_id=" not in dump  # DynamoDBToS3Operator would refuse it
    given = text.replace('"filepath": "/tmp"', '"fs_conn_id": "files"')
    assert "fs_conn_id=" not in adopt_source("x.py", given, site_packages()).text


def test_ids_and_connections_kept_in_names_inside_a_with_or_if_block_are_edited_there() -> None:
    """Where the name is bound, so every use of it (a subDAG's parent id, the connection a
    task creates and the one it reads) stays the same string."""
    text = HEADER + (
        "import warnings\n"
        "\n"
        "with warnings.catch_warnings():\n"
        '    DAG_NAME = "parent"\n'
        '    with DAG(dag_id=DAG_NAME, schedule=None, tags=["x"]):\n'
        '        conn_id_name = f"{DAG_NAME}-conn-id"\n'
        "        make_child(DAG_NAME)\n"
        '        X(task_id="t", http_conn_id=conn_id_name)\n'
    )
    result = adopt_source("x.py", text)
    assert result.report == []
    assert '    DAG_NAME = f"{dev_prod_flag}_parent"\n' in result.text
    assert "dag_id=DAG_NAME," in result.text
    assert 'conn_id_name = f"{settings_of(dev_prod_flag)}_{DAG_NAME}-conn-id"' in result.text


def test_a_connection_id_the_codemod_cannot_follow_is_named_with_what_to_do() -> None:
    text = HEADER + (
        'with DAG("x", schedule=None, tags=["x"]):\n'
        "    for name in names():\n"
        "        X(task_id=name, http_conn_id=name)\n"
    )
    assert adopt_source("dags/x.py", text).report == [
        "dags/x.py:9: http_conn_id is the name 'name', which make adopt cannot follow:"
        " make what it holds start with settings_of(dev_prod_flag)"
    ]


def test_task_ids_that_strings_name_are_never_renamed() -> None:
    result = adopt_source("x.py", BRANCHES)
    strings = {
        node.value
        for node in ast.walk(ast.parse(result.text))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    assert {"left", "right", "choose", "{{ ti.xcom_pull(task_ids='left') }}"} <= strings
    for name in ("def choose", "def left", "def right"):
        assert name in result.text
    assert result.keeps_task_ids  # so the task-id prefix convention is turned off


def test_a_second_run_changes_nothing() -> None:
    for text in (CLASSIC, BRANCHES):
        once = adopted(text)
        assert adopted(once) == once


def test_what_is_left_by_hand_is_one_file_line_each() -> None:
    text = HEADER + (
        "from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator\n"
        "\n"
        'with DAG(dag_id="x", schedule=None, tags=["prod"]):\n'
        "    TriggerDagRunOperator(\n"
        '        task_id="t",\n'
        "        trigger_dag_id=pick(),\n"
        "    )\n"
        '    TriggerDagRunOperator(task_id="u", trigger_dag_id="{{ params.target }}")\n'
    )
    report = adopt_source("dags/x.py", text).report
    assert report == [
        "dags/x.py:12: trigger_dag_id is computed: make it name a DAG of the same environment,"
        ' f"{dev_prod_flag}_..."',
        "dags/x.py:14: trigger_dag_id: '{{ params.target }}' is a Jinja template: make it render"
        " an id that starts {dev_prod_flag}_",
    ]


def test_a_file_whose_names_the_codemod_needs_are_taken_is_left_as_it_was() -> None:
    text = HEADER + 'environment = "staging"\nwith DAG("x", schedule=None):\n    pass\n'
    result = adopt_source("x.py", text)
    assert result.text == text
    assert result.report == [
        "x.py:7: the name 'environment' is bound here already, and make adopt needs it: rename it"
    ]


def example_dags() -> list[Path]:
    """Airflow's own example DAGs, as the newest baked venv ships them."""
    airflow = next((VENVS / f"airflow-{NEWEST}").glob("lib/python*/site-packages/airflow"))
    folders = [
        "example_dags",
        "providers/standard/example_dags",
        "providers/common/sql/example_dags",
    ]
    return sorted(
        path
        for folder in folders
        for path in (airflow / folder).glob("*.py")
        if path.name != "__init__.py"
    )


def test_every_example_dag_of_airflow_adopts_into_a_file_that_compiles_and_stays() -> None:
    files = example_dags()
    assert len(files) > 50
    for path in files:
        once = adopt_source(path.name, path.read_text())
        compile(once.text, path.name, "exec")
        assert once.text != path.read_text(), path.name
        assert adopt_source(path.name, once.text).text == once.text, path.name


def test_make_adopt_rewrites_dag_files_in_place_and_names_what_is_left(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project()
    dags = root / "bucket_contents" / "dags"
    (dags / "classic.py").write_text(CLASSIC)
    (dags / "computed.py").write_text(
        HEADER + 'with DAG("c", schedule=None):\n    X(task_id="t", trigger_dag_id=pick())\n'
    )
    seeds = {p.name: p.read_text() for p in dags.glob("*.py")} | {"classic.py": CLASSIC}
    assert main(["adopt"]) == 1
    out = capsys.readouterr().out
    assert "Adopted 5 DAG files" in out and "2 changed, 3 already in the convention" in out
    assert re.search(r"^bucket_contents/dags/computed\.py:8: trigger_dag_id is computed", out, re.M)
    classic = (dags / "classic.py").read_text()  # adopted, then formatted as make format does
    assert "DEV = True" in classic and adopt_source("classic.py", classic).text == classic
    untouched = seeds.keys() - {"classic.py", "computed.py"}
    assert all((dags / name).read_text() == seeds[name] for name in untouched)


def test_make_adopt_turns_the_task_id_prefix_off_where_it_keeps_task_ids(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project()
    (root / "bucket_contents" / "dags" / "branches.py").write_text(BRANCHES)
    assert main(["adopt", "--files", "bucket_contents/dags/branches.py"]) == 0
    assert "pyproject.toml: task_id_prefix = false: task ids kept" in capsys.readouterr().out
    assert retire.config.load(root).task_id_prefix is False
    assert main(["adopt"]) == 0  # nothing left: every file adopted, the setting off


def test_make_adopt_refuses_a_file_that_is_not_a_dag_file(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project()
    assert main(["adopt", "--files", "bucket_contents/dags/common/conventions.py"]) == 1
    assert "is not a DAG file of bucket_contents/dags/" in capsys.readouterr().err


def test_turning_a_convention_off_replaces_or_adds_its_line_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.mwaa_deploy]\n# kept\nx = 1\n\n[tool.ruff]\nline-length = 100\n")
    assert turn_off(pyproject, "task_id_prefix", "why")
    assert pyproject.read_text() == (
        "[tool.mwaa_deploy]\n# kept\nx = 1\n# make adopt: why\ntask_id_prefix = false\n"
        "\n[tool.ruff]\nline-length = 100\n"
    )
    pyproject.write_text("[tool.mwaa_deploy]\ntask_id_prefix = true\n")
    assert turn_off(pyproject, "task_id_prefix", "why")
    assert pyproject.read_text() == "[tool.mwaa_deploy]\ntask_id_prefix = false\n"
    assert not turn_off(pyproject, "task_id_prefix", "why")


def test_retire_unprefixed_deletes_only_committed_old_copies_of_adopted_dag_files(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project()
    dags = root / "bucket_contents" / "dags"
    (dags / "classic.py").write_text(CLASSIC)
    commit(root)  # the old file, as the team had it
    main(["adopt", "--files", "bucket_contents/dags/classic.py"])
    commit(root)
    bucket = LocalBucket(root / "local_bucket")
    old = {
        "dags/classic.py": CLASSIC.encode(),  # the committed old copy: retired
        "dags/lake_heartbeat.py": b"edited on the bucket by hand\n",  # kept, with a command
        "dags/DEV_classic.py": b"an owner's key\n",  # never touched
        "dags/other.py": b"not a DAG file of this project\n",  # never touched
    }
    for key, body in old.items():
        bucket.put(key, body)
    assert main(["retire-unprefixed"]) == 0
    out = capsys.readouterr().out
    assert "  dags/classic.py\nNothing deleted" in out
    assert "dags/lake_heartbeat.py: not a committed version" in out
    assert set(bucket.list("dags/")) >= set(old)
    assert main(["retire-unprefixed", "--delete"]) == 0
    assert set(old) - set(bucket.list("dags/")) == {"dags/classic.py"}
    assert retire.plan(retire.config.load(root), bucket) == ([], ["dags/lake_heartbeat.py"])
