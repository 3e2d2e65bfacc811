"""Both stamped builds, and this branch's sandbox, load in the real Airflow with the
platform's cluster policy, as on MWAA, each DAG wholly in its own environment.

The rules are in tests/dag_rules.py, resource_rules.py and platform_rules.py; a failure
names the DAG, the task and the rule.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

try:  # Airflow 3.1 and later
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag

from mwaa_deploy.owners import ENVIRONMENTS, SANDBOX, is_sandbox
from tests import dag_rules, platform_rules, resource_rules
from tests.helpers import SETTINGS, THIS_SANDBOX


@pytest.fixture(scope="module")
def dagbag(deployed_dags: Path) -> DagBag:
    return DagBag(dag_folder=str(deployed_dags))


def each_dag(dagbag: DagBag, rule: Callable[[Any], Iterable[str]]) -> list[str]:
    return [problem for dag in dagbag.dags.values() for problem in rule(dag)]


def report(problems: list[str]) -> None:
    """Fail with one line per problem, and nothing else: the lines say it all."""
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_both_builds_load_without_import_errors(dagbag: DagBag) -> None:
    report(dag_rules.import_problems(dagbag))


def test_no_dag_id_is_defined_twice(dagbag: DagBag) -> None:
    report(dag_rules.duplicate_problems(dagbag))


def test_every_source_dag_is_deployed_once_per_environment(dagbag: DagBag) -> None:
    sources = {p.name for p in (SETTINGS.sources / "dags").glob("*.py")}
    loaded = {Path(dag.fileloc).name for dag in dagbag.dags.values()}
    deployed = {f"{env}_{name}" for env in ENVIRONMENTS for name in sources}
    if THIS_SANDBOX:
        shipped = sources if THIS_SANDBOX.only is None else sources & THIS_SANDBOX.only
        deployed |= {f"{THIS_SANDBOX.owner}_{name}" for name in shipped}
    report(
        [
            f"{name}: deployed, but Airflow loaded no DAG from it (see the failures above)"
            for name in sorted(deployed - loaded)
        ]
    )


def test_dag_task_and_group_ids_and_tags_carry_their_environment(dagbag: DagBag) -> None:
    report(each_dag(dagbag, dag_rules.naming_problems))


def test_cross_dag_references_stay_in_their_environment(dagbag: DagBag) -> None:
    """A reference known at run time only is named as a warning; the others are checked."""
    for dynamic in each_dag(dagbag, dag_rules.dynamic_references):
        warnings.warn(dynamic, stacklevel=1)
    report(each_dag(dagbag, dag_rules.reference_problems))


def test_cross_dag_references_name_a_dag_of_the_same_build(dagbag: DagBag) -> None:
    """A trigger of a DAG that is not there fails at run time: say so now. A sandbox holds
    only what its branch changes, so there it is a warning, with the way to get the rest."""
    dag_ids = set(dagbag.dag_ids)
    problems = []
    for dag in dagbag.dags.values():
        for problem in dag_rules.missing_reference_problems(dag, dag_ids):
            if is_sandbox(dag_rules.owner_of(dag)):
                hint = "; the sandbox holds what the branch changes: FULL=1 make deploy-dev"
                warnings.warn(problem + hint, stacklevel=1)
            else:
                problems.append(problem)
    report(problems)


def test_assets_and_connections_belong_to_their_environment(dagbag: DagBag) -> None:
    """Connection ids in arguments, in the config objects they hold and in storage URLs."""
    report(
        each_dag(dagbag, resource_rules.resource_problems)
        + [*resource_rules.storage_path_problems(dagbag)]
    )


def test_aws_is_reached_as_the_environments_own_role(dagbag: DagBag, deployed_dags: Path) -> None:
    """Operators and sensors through their environment's AWS connection, and so are the
    hooks that task code builds: never aws_default, which runs as the execution role."""
    report(
        each_dag(dagbag, resource_rules.aws_problems)
        + [*resource_rules.aws_code_problems(deployed_dags)]
    )


def test_dev_tasks_share_devs_pool_and_prod_tasks_go_first(dagbag: DagBag) -> None:
    report(each_dag(dagbag, platform_rules.slot_problems))


def test_prod_tasks_retry_before_they_fail(dagbag: DagBag) -> None:
    report(each_dag(dagbag, platform_rules.retry_problems))


def test_dev_copies_do_not_run_on_the_clock(dagbag: DagBag) -> None:
    report(each_dag(dagbag, platform_rules.schedule_problems))


def test_every_dag_serializes_as_the_dag_processor_does(dagbag: DagBag) -> None:
    report(each_dag(dagbag, platform_rules.serialization_problems))


def test_template_files_are_read_from_the_owners_own_copy(dagbag: DagBag) -> None:
    report(each_dag(dagbag, platform_rules.template_problems))


def test_every_dag_file_parses_within_the_budget(
    dagbag: DagBag, request: pytest.FixtureRequest
) -> None:
    seconds = dag_rules.parse_seconds(dagbag)
    request.config.stash[dag_rules.PARSE_SECONDS] = seconds
    budget = SETTINGS.dag_parse_budget_seconds
    slow = [
        f"{file}: parsing took {took:.2f} s, over the budget of {budget} s"
        " (dag_parse_budget_seconds in pyproject.toml); move slow work from the top level"
        " into tasks"
        for file, took in seconds.items()
        if took > budget
    ]
    report(slow)


def test_prod_files_hold_dev_false(deployed_dags: Path) -> None:
    for file in deployed_dags.glob("*_*.py"):
        env = file.name.split("_", 1)[0]  # a sandbox (SBX_) is a DEV copy
        flags = [
            node.value.value
            for node in ast.parse(file.read_text()).body
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "DEV"
        ]
        assert flags == [env != "PROD"], f"{file.name}: DEV flag is {flags}"


def test_no_prod_module_sets_dev_back_at_run_time(dagbag: DagBag, deployed_dags: Path) -> None:
    """What the stamp cannot read on the syntax tree, Airflow's import shows."""
    report(list(dag_rules.run_time_flag_problems(dagbag, deployed_dags)))


def test_helper_modules_are_not_parsed_as_dags(dagbag: DagBag, deployed_dags: Path) -> None:
    """Airflow parses exactly the DAG files directly in dags/, nothing in a helper package."""
    packages = [
        p
        for p in deployed_dags.iterdir()
        if p.is_dir() and p.name.startswith((*ENVIRONMENTS, SANDBOX))
    ]
    assert packages, "no helper package deployed, so nothing to check"
    dag_files = {p.name for p in deployed_dags.glob("*.py")}
    parsed = dag_rules.parsed_files(dagbag)
    report(
        [
            f"{file}: a helper module, parsed as a DAG file; the .airflowignore the stamp"
            " writes into its package should keep Airflow out of it"
            for file in sorted(parsed - dag_files)
        ]
        + [
            f"{file}: a DAG file, but Airflow did not parse it"
            for file in sorted(dag_files - parsed)
        ]
    )
