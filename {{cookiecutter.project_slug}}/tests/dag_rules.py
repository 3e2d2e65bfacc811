"""The rules that keep every DAG wholly inside its own environment (DEV, PROD, or a story
branch's sandbox), checked on the DAGs as the real Airflow loaded them from the stamped
builds.

Each check yields one line per problem: the DAG, the task where there is one, the rule,
and what to write instead. They read attributes, not operator classes, so they hold on
Airflow 2 and 3 alike and for any operator that takes the same arguments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mwaa_deploy.owners import ENVIRONMENTS, SANDBOX, environment_of, is_owner, owner_of_key

# Where the parse-time test leaves each file's seconds for the report after the tests.
PARSE_SECONDS = pytest.StashKey[dict[str, float]]()

# Every task may use it: it is the instance's own limit on running tasks, not a resource
# of either environment.
DEFAULT_POOL = "default_pool"
# How Airflow 2 and 3 report a DAG id that a second file defines again.
DUPLICATE = re.compile(r"Ignoring DAG (\S+) from (\S+) - also found in (\S+)")
# The parts of an asset URI or name: what lies between '/', '.', ':', '@' and the like.
PART = re.compile(r"[A-Za-z0-9_-]+")
CROSS_DAG_ARGUMENTS = (
    "trigger_dag_id",
    "external_dag_id",
    "external_task_id",
    "external_task_ids",
    "external_task_group_id",
)


def owner_of(dag: Any) -> str:
    """Whose copy a DAG is, read off its file name: DEV_x.py is DEV's, SBX_ann_x.py the
    sandbox SBX_ann's."""
    return owner_of_key(f"dags/{Path(dag.fileloc).name}") or "?"


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
    """The DAG id, every task id and task group id, and the tags carry the owner's prefix."""
    env = owner_of(dag)
    if not dag.dag_id.startswith(f"{env}_"):
        yield _problem(dag, None, "DAG id", f"{dag.dag_id!r} must start with {env}_")
    for group_id in sorted(_task_group_ids(dag.task_group)):
        if not _all_parts_start_with(group_id, env):
            yield _problem(dag, None, "task group id", f"{group_id!r} must start with {env}_")
    for task in dag.tasks:
        if not _all_parts_start_with(task.task_id, env):
            yield _problem(dag, task, "task id", f"{task.task_id!r} must start with {env}_")
    tags = set(dag.tags or ())
    if env not in tags or any(is_owner(tag) and tag != env for tag in tags):
        yield _problem(
            dag, None, "tags", f"{sorted(tags)} must include {env!r} and no other environment"
        )


def reference_problems(dag: Any) -> Iterator[str]:
    """Cross-DAG references (TriggerDagRunOperator, ExternalTaskSensor) stay at home."""
    env = owner_of(dag)
    for task in dag.tasks:
        arguments = _arguments(task)
        for argument in CROSS_DAG_ARGUMENTS:
            for value in _strings(arguments.get(argument)):
                if not _all_parts_start_with(value, env):
                    yield _problem(
                        dag,
                        task,
                        "cross-DAG reference",
                        f"{argument}={value!r} must name a {env}_ DAG or task;"
                        " build it from dev_prod_flag",
                    )


def missing_reference_problems(dag: Any, dag_ids: set[str]) -> Iterator[str]:
    """Cross-DAG references to a DAG id that the build does not define."""
    for task in dag.tasks:
        arguments = _arguments(task)
        for argument in ("trigger_dag_id", "external_dag_id"):
            for value in _strings(arguments.get(argument)):
                if "{" not in value and value not in dag_ids:  # "{": a template, known at run time
                    yield _problem(
                        dag, task, "cross-DAG reference", f"{argument}={value!r} names no DAG here"
                    )


def resource_problems(dag: Any) -> Iterator[str]:
    """Assets (datasets) belong to the DAG's owner; pools and connections to its environment
    (a sandbox uses DEV's)."""
    env = owner_of(dag)
    settings = environment_of(env) if is_owner(env) else env
    for asset in _assets(_schedule_condition(dag)):
        yield from _asset_problems(dag, None, "schedule", asset, env)
    for task in dag.tasks:
        for direction in ("inlets", "outlets"):
            for asset in _assets(getattr(task, direction, None) or ()):
                yield from _asset_problems(dag, task, direction, asset, env)
        if task.pool != DEFAULT_POOL and not task.pool.startswith((f"{env}_", f"{settings}_")):
            yield _problem(dag, task, "pool", f"{task.pool!r} must start with {settings}_")
        for argument, value in sorted(_arguments(task).items()):
            if not argument.endswith("conn_id"):
                continue
            for conn_id in _strings(value):
                if conn_id and not conn_id.startswith(f"{settings}_"):
                    yield _problem(
                        dag,
                        task,
                        "connection id",
                        f"{argument}={conn_id!r} must start with {settings}_;"
                        " each environment has its own connections",
                    )


def retry_problems(dag: Any) -> Iterator[str]:
    """PROD tasks retry before they fail: a blip at dbt Cloud or S3 should not page anyone.
    DEV tasks may fail at once, which is what a developer watching them wants."""
    if owner_of(dag) != "PROD":
        return
    for task in dag.tasks:
        if not task.retries:
            yield _problem(
                dag,
                task,
                "retries",
                "a PROD task needs retries >= 1; default_args(dev_prod_flag) from"
                " common.conventions sets them",
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


def parse_seconds(dagbag: Any) -> dict[str, float]:
    """Seconds Airflow spent parsing each DAG file, from the DagBag's own statistics."""
    return {
        Path(stat.file).name: stat.duration.total_seconds()
        for stat in sorted(dagbag.dagbag_stats, key=lambda stat: stat.file)
    }


def environments_named(text: str) -> set[str]:
    """The owners an asset URI or name names: those that one of its parts is, or starts
    with followed by '_' or '-', in any case. Data lake paths are lowercase, so
    s3://lake/prod/orders and prod_orders name PROD as PROD_orders does, and
    s3://lake/sbx_ann/orders the sandbox SBX_ann; a word that merely begins like one
    (product, device) names none."""
    named = set()
    for part in PART.findall(text):
        named |= {
            env for env in ENVIRONMENTS if re.fullmatch(rf"{env}(?:[_-].*)?", part, re.IGNORECASE)
        }
        if found := re.fullmatch(rf"{SANDBOX}_([a-z0-9]+)(?:[_-].*)?", part, re.IGNORECASE):
            named.add(f"{SANDBOX}_{found[1].lower()}")
    return named


def _arguments(task: Any) -> dict[str, Any]:
    """What a task was given: its attributes and, for a mapped task (`.partial().expand()`),
    the partial arguments and the lists it expands over."""
    arguments = dict(vars(task))
    arguments |= getattr(task, "partial_kwargs", None) or {}
    expanded = getattr(getattr(task, "expand_input", None), "value", None)
    return arguments | (expanded if isinstance(expanded, dict) else {})


def _problem(dag: Any, task: Any, rule: str, detail: str) -> str:
    where = f"DAG {dag.dag_id}" + (f", task {task.task_id}" if task is not None else "")
    return f"{where} ({Path(dag.fileloc).name}): {rule}: {detail}"


def _all_parts_start_with(identifier: str, env: str) -> bool:
    """`DEV_load.DEV_orders`: a task in a group carries the group's id before its own."""
    return all(part.startswith(f"{env}_") for part in identifier.split("."))


def _task_group_ids(group: Any) -> Iterator[str]:
    for child in getattr(group, "children", {}).values():
        if hasattr(child, "children"):
            yield child.group_id
            yield from _task_group_ids(child)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [item for item in value if isinstance(item, str)]
    return []


def _schedule_condition(dag: Any) -> Any:
    """What an asset-scheduled DAG waits for (Airflow 3: assets; Airflow 2: datasets)."""
    timetable = dag.timetable
    return getattr(timetable, "asset_condition", None) or getattr(
        timetable, "dataset_condition", None
    )


def _assets(thing: Any) -> Iterator[Any]:
    """The assets in an inlet or outlet list or in a schedule condition (any/all nested)."""
    if thing is None:
        return
    if hasattr(thing, "uri"):
        yield thing
    elif isinstance(thing, (list, tuple)):
        for item in thing:
            yield from _assets(item)
    else:
        yield from _assets(getattr(thing, "objects", None))


def _asset_problems(dag: Any, task: Any, where: str, asset: Any, env: str) -> Iterator[str]:
    """An asset's URI (and name, on Airflow 3) names its environment and no other."""
    home = env.lower()
    for text in dict.fromkeys(filter(None, (getattr(asset, "name", None), asset.uri))):
        named = environments_named(text)
        if others := sorted(named - {env}):
            detail = (
                f"names {' and '.join(others)}: a {env} DAG uses {env}'s assets only;"
                f" build it from dev_prod_flag, as in s3://lake/{home}/orders"
            )
        elif not named:
            detail = (
                f"names no environment: give it a part that is {home} or starts with {home}_"
                f" (any case), as in s3://lake/{home}/orders or s3://lake/{home}_orders"
            )
        else:
            continue
        yield _problem(dag, task, "asset", f"{where} {text!r} {detail}")
