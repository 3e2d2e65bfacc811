"""Both stamped builds load in the real Airflow, each DAG wholly in its own environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

try:  # Airflow 3.1 and later
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag

from mwaa_deploy.stamp import ENVIRONMENTS
from tests.conftest import SETTINGS


@pytest.fixture(scope="module")
def dagbag(deployed_dags: Path) -> DagBag:
    return DagBag(dag_folder=str(deployed_dags))


def test_both_builds_load_without_import_errors(dagbag: DagBag) -> None:
    assert not dagbag.import_errors, "\n\n".join(
        f"{file}:\n{error}" for file, error in dagbag.import_errors.items()
    )


def test_every_source_dag_is_deployed_once_per_environment(dagbag: DagBag) -> None:
    sources = {p.name for p in (SETTINGS.sources / "dags").glob("*.py")}
    loaded = {Path(dag.fileloc).name for dag in dagbag.dags.values()}
    assert loaded == {f"{env}_{name}" for env in ENVIRONMENTS for name in sources}


def test_dag_and_task_ids_and_tags_carry_their_environment(dagbag: DagBag) -> None:
    for dag in dagbag.dags.values():
        env = Path(dag.fileloc).name.split("_", 1)[0]
        assert dag.dag_id.startswith(f"{env}_"), f"{dag.dag_id}: DAG id must start with {env}_"
        assert env in dag.tags, f"{dag.dag_id}: tags {sorted(dag.tags)} must include {env!r}"
        for task in dag.tasks:
            assert task.task_id.startswith(f"{env}_"), (
                f"{dag.dag_id}.{task.task_id}: task id must start with {env}_"
            )


def test_prod_files_hold_dev_false(deployed_dags: Path) -> None:
    for file in deployed_dags.glob("*_*.py"):
        env = file.name.split("_", 1)[0]
        flags = [
            node.value.value
            for node in ast.parse(file.read_text()).body
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "DEV"
        ]
        assert flags == [env == "DEV"], f"{file.name}: DEV flag is {flags}"


def test_helper_modules_are_not_parsed_as_dags(dagbag: DagBag, deployed_dags: Path) -> None:
    parsed = {(deployed_dags / stat.file.lstrip("/")).parent for stat in dagbag.dagbag_stats}
    helpers = {p for p in deployed_dags.iterdir() if p.is_dir()}
    assert helpers and not parsed & helpers
