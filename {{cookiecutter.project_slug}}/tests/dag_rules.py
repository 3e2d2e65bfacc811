"""The rules that keep every DAG wholly inside its own environment (DEV, PROD, or a story
branch's sandbox), checked on the DAGs as the real Airflow loaded them from the stamped
builds, after the platform's cluster policy (bucket_contents/plugins/) has run on them, as
on MWAA. This module: ids, tags and cross-DAG references, and what Airflow's import shows;
resource_rules.py: assets, connections, AWS; platform_rules.py: what the policy applies,
serialization and template files.

Each check yields one line per problem: the DAG, the task where there is one, the rule,
and what to write instead. A rule either protects isolation (a hard error, always on) or
is a convention, which its line names with the setting in pyproject.toml
[tool.mwaa_deploy] that turns it off. They read attributes, not operator classes, so they
hold on Airflow 2 and 3 alike and for any operator that takes the same arguments.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mwaa_deploy.owners import environment_of, is_owner, owner_of_key
from tests.helpers import SETTINGS

# Where the parse-time test leaves each file's seconds for the report after the tests.
PARSE_SECONDS = pytest.StashKey[dict[str, float]]()

# How Airflow 2 and 3 report a DAG id that a second file defines again.
DUPLICATE = re.compile(r"Ignoring DAG (\S+) from (\S+) - also found in (\S+)")
CROSS_DAG_ARGUMENTS = ("trigger_dag_id", "external_dag_id")
# Task ids in another DAG: they carry the environment only under the task_id_prefix
# convention (task ids are scoped by their DAG, whose id is checked above).
CROSS_TASK_ARGUMENTS = ("external_task_id", "external_task_ids", "external_task_group_id")


def owner_of(dag: Any) -> str:
    """Whose copy a DAG is, read off its file name: DEV_x.py is DEV's, SBX_ann_x.py the
    sandbox SBX_ann's."""
    return owner_of_key(f"dags/{Path(dag.fileloc).name}") or "?"


def settings_of(env: str) -> str:
    """Whose settings an owner runs with: a sandbox DEV's."""
    return environment_of(env) if is_owner(env) else env


def problem(dag: Any, task: Any, rule: str, detail: str) -> str:
    where = f"DAG {dag.dag_id}" + (f", task {task.task_id}" if task is not None else "")
    return f"{where} ({Path(dag.fileloc).name}): {rule}: {detail}"


def arguments(task: Any) -> dict[str, Any]:
    """What a task was given: its attributes and, for a mapped task (`.partial().expand()`),
    the partial arguments and the lists it expands over. An argument left at Airflow's
    NOTSET (an operator's own "not given") was not given."""
    given = dict(vars(task))
    given |= getattr(task, "partial_kwargs", None) or {}
    expanded = getattr(getattr(task, "expand_input", None), "value", None)
    given |= expanded if isinstance(expanded, dict) else {}
    return {name: value for name, value in given.items() if type(value).__name__ != "ArgNotSet"}


def strings(value: Any) -> list[str]:
    """The text of a value that is text or a list of it; [] for anything else (an XComArg,
    known at run time only, is iterable but cannot be iterated)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [item for item in value if isinstance(item, str)]
    return []


def convention(setting: str) -> str:
    return f" (a convention: {setting} = false in pyproject.toml turns it off)"


def import_problems(dagbag: Any) -> list[str]:
    return [
        f"{Path(file).name}: import error: {error.strip()}"
        for file, error in sorted(dagbag.import_errors.items())
        if not DUPLICATE.search(error)
    ]


def duplicate_problems(dagbag: Any) -> list[str]:
    """DAG ids defined twice, by two files (say a PROD file that names its DAG DEV_x)."""
    problems = []
    for error in dagbag.import_errors.values():
        if found := DUPLICATE.search(error):
            files = " and ".join(sorted(Path(found[i]).name for i in (2, 3)))
            problems.append(
                f"DAG {found[1]}: duplicate DAG id: defined in both {files};"
                " build the DAG id from dev_prod_flag so the DEV and PROD copies differ"
            )
    return sorted(problems)


def naming_problems(dag: Any) -> Iterator[str]:
    """The DAG id carries the owner's prefix (isolation: it is what the owner's key prefix,
    the policy and every reference go by); so do task and group ids (the convention
    task_id_prefix), and the tags name the owner (the convention environment_tag)."""
    env = owner_of(dag)
    if not dag.dag_id.startswith(f"{env}_"):
        yield problem(dag, None, "DAG id", f"{dag.dag_id!r} must start with {env}_")
    if SETTINGS.task_id_prefix:
        rule = convention("task_id_prefix")
        for group_id in sorted(_task_group_ids(dag.task_group)):
            if not _all_parts_start_with(group_id, env):
                yield problem(
                    dag, None, "task group id", f"{group_id!r} must start with {env}_{rule}"
                )
        for task in dag.tasks:
            # An @asset's one task takes its function's name, which no flag can change.
            if type(task).__name__ == "_AssetMainOperator":
                continue
            if not _all_parts_start_with(task.task_id, env):
                yield problem(
                    dag, task, "task id", f"{task.task_id!r} must start with {env}_{rule}"
                )
    tags = set(dag.tags or ())
    if SETTINGS.environment_tag and (
        env not in tags or any(is_owner(tag) and tag != env for tag in tags)
    ):
        detail = f"{sorted(tags)} must include {env!r} and no other environment"
        yield problem(dag, None, "tags", detail + convention("environment_tag"))


def reference_problems(dag: Any) -> Iterator[str]:
    """Cross-DAG references (TriggerDagRunOperator, ExternalTaskSensor) stay at home
    (isolation); the task ids they name carry the environment where the task_id_prefix
    convention is on."""
    env = owner_of(dag)
    checked = CROSS_DAG_ARGUMENTS + (CROSS_TASK_ARGUMENTS if SETTINGS.task_id_prefix else ())
    for task in dag.tasks:
        given = arguments(task)
        for argument in checked:
            for value in strings(given.get(argument)):
                if not _all_parts_start_with(value, env):
                    yield problem(
                        dag,
                        task,
                        "cross-DAG reference",
                        f"{argument}={value!r} must name a {env}_ DAG or task;"
                        " build it from dev_prod_flag",
                    )


def dynamic_references(dag: Any) -> Iterator[str]:
    """Cross-DAG references known at run time only (an XComArg, the output of a task): no
    rule can check them before they run, so each is named, and the rest still checked."""
    env = owner_of(dag)
    for task in dag.tasks:
        given = arguments(task)
        for argument in ("trigger_dag_id", "external_dag_id"):
            value = given.get(argument)
            if value is not None and not isinstance(value, str) and not strings(value):
                yield problem(
                    dag,
                    task,
                    "cross-DAG reference",
                    f"{argument} is {type(value).__name__}, known at run time: cannot check,"
                    f" dynamic; make sure it names a {env}_ DAG",
                )


def missing_reference_problems(dag: Any, dag_ids: set[str]) -> Iterator[str]:
    """Cross-DAG references to a DAG id that the build does not define."""
    for task in dag.tasks:
        given = arguments(task)
        for argument in ("trigger_dag_id", "external_dag_id"):
            for value in strings(given.get(argument)):
                if "{" not in value and value not in dag_ids:  # "{": a template, known at run time
                    yield problem(
                        dag, task, "cross-DAG reference", f"{argument}={value!r} names no DAG here"
                    )


def parsed_files(dagbag: Any) -> set[str]:
    """Every file the DagBag parsed, relative to its folder: `DEV_x.py`, `DEV_common/y.py`.

    Airflow 3 reports them so. Airflow 2 only cuts its DAGS_FOLDER setting off the front,
    which leaves a path in another folder absolute (and one inside DAGS_FOLDER starting
    with `/`, which relative_to() refuses: the test fails rather than passes unchecked).
    """
    folder = Path(dagbag.dag_folder)
    files = (Path(stat.file) for stat in dagbag.dagbag_stats)
    return {(file.relative_to(folder) if file.is_absolute() else file).as_posix() for file in files}


# What a module without a `DEV` of its own holds: a helper, as the stamp requires.
_MISSING = object()


def run_time_flag_problems(dagbag: Any, dags_folder: Path) -> Iterator[str]:
    """Every module of the PROD build as Airflow imported it, DAG file or helper, holds
    `DEV` False, or a helper none: the stamp checks what a file says, and this what its
    code did once it ran (a namespace handed to a function that writes `DEV`, say).

    The modules are those in sys.modules whose file lies in a PROD_ part of `dags_folder`,
    where the DagBag left them; a PROD DAG file loaded but not found there fails, so that
    the check can never pass by finding nothing.
    """
    folders = {dags_folder, dags_folder.resolve()}
    # A file that failed to import may stay behind half run; its import error says it all.
    failed = {Path(file).name for file in dagbag.import_errors}
    found = {}
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        folder = next((f for f in folders if file and Path(file).is_relative_to(f)), None)
        if folder is not None:
            relative = Path(file).relative_to(folder).as_posix()
            if owner_of_key(f"dags/{relative}") == "PROD" and relative not in failed:
                found[relative] = vars(module).get("DEV", _MISSING)
    for relative, value in sorted(found.items()):
        if value is not False and ("/" not in relative or value is not _MISSING):
            shown = "missing" if value is _MISSING else repr(value)
            yield (
                f"{relative}: DEV is {shown} once Airflow has imported it: it sets DEV back to"
                " True at run time, behind the stamp's `DEV = False`, and PROD would run with"
                " DEV's settings; remove the code that writes DEV"
            )
    loaded = {Path(dag.fileloc).name for dag in dagbag.dags.values()}
    for name in sorted(n for n in loaded - found.keys() if owner_of_key(f"dags/{n}") == "PROD"):
        yield f"{name}: Airflow loaded it, but its module was not found in sys.modules to check"


def parse_seconds(dagbag: Any) -> dict[str, float]:
    """Seconds Airflow spent parsing each DAG file, from the DagBag's own statistics."""
    return {
        Path(stat.file).name: stat.duration.total_seconds()
        for stat in sorted(dagbag.dagbag_stats, key=lambda stat: stat.file)
    }


def _all_parts_start_with(identifier: str, env: str) -> bool:
    """`DEV_load.DEV_orders`: a task in a group carries the group's id before its own."""
    return all(part.startswith(f"{env}_") for part in identifier.split("."))


def _task_group_ids(group: Any) -> Iterator[str]:
    for child in getattr(group, "children", {}).values():
        if hasattr(child, "children"):
            yield child.group_id
            yield from _task_group_ids(child)
