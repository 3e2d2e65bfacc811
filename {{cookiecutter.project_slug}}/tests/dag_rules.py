"""The rules that keep every DAG wholly inside its own environment (DEV, PROD, or a story
branch's sandbox), checked on the DAGs as the real Airflow loaded them from the stamped
builds.

Each check yields one line per problem: the DAG, the task where there is one, the rule,
and what to write instead. They read attributes, not operator classes, so they hold on
Airflow 2 and 3 alike and for any operator that takes the same arguments.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mwaa_deploy.instance.pools import DEV_POOL, PROD_PRIORITY_WEIGHT
from mwaa_deploy.owners import ENVIRONMENTS, SANDBOX, environment_of, is_owner, owner_of_key

# Where the parse-time test leaves each file's seconds for the report after the tests.
PARSE_SECONDS = pytest.StashKey[dict[str, float]]()

# PROD's tasks run in it: the instance's own limit on running tasks, not a resource of
# either environment.
DEFAULT_POOL = "default_pool"
# What AWS is reached through: an operator's or sensor's argument ending so, and the
# providers' hooks. boto3 called directly runs as the MWAA execution role.
AWS_CONN_ID = "aws_conn_id"
AWS_HOOKS = "airflow.providers.amazon."
BOTO3_CLIENTS = {"boto3.client", "boto3.resource", "boto3.Session", "boto3.session.Session"}
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
    """Assets (datasets) belong to the DAG's owner (a sandbox's live inside DEV's), and
    connections to its environment (a sandbox uses DEV's)."""
    env = owner_of(dag)
    settings = _settings(env)
    for asset in _assets(_schedule_condition(dag)):
        yield from _asset_problems(dag, None, "schedule", asset, env)
    for task in dag.tasks:
        for direction in ("inlets", "outlets"):
            for asset in _assets(getattr(task, direction, None) or ()):
                yield from _asset_problems(dag, task, direction, asset, env)
        for argument, value in sorted(_arguments(task).items()):
            if not argument.endswith("conn_id") or argument.endswith(AWS_CONN_ID):
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


def aws_problems(dag: Any) -> Iterator[str]:
    """An operator or sensor that reaches AWS does so through its environment's connection,
    which assumes the environment's role: not aws_default, nor None (both run as the MWAA
    execution role), nor the other environment's."""
    settings = _settings(owner_of(dag))
    for task in dag.tasks:
        for argument, value in sorted(_arguments(task).items()):
            if argument.endswith(AWS_CONN_ID) and value != f"{settings}_aws":
                advice = _aws_advice(f"{argument}={value!r}", value, settings)
                yield _problem(dag, task, "AWS connection", advice)


def aws_code_problems(dags_folder: Path) -> Iterator[str]:
    """The same for the AWS hooks that task code builds, read off the deployed files' syntax
    trees (a hook exists only while its task runs): a hook given no connection, None or
    another environment's, and boto3 called directly. A connection id the code computes,
    such as aws_conn_id(dev_prod_flag), is left to it."""
    for path in sorted(dags_folder.rglob("*.py")):
        file = path.relative_to(dags_folder).as_posix()
        owner = owner_of_key(f"dags/{file}")
        if owner is None:
            continue
        tree = ast.parse(path.read_text(), filename=file)
        names = _imported_names(tree)
        for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
            callee = _dotted(call.func, names)
            where = f"{file}:{call.lineno}"
            if callee in BOTO3_CLIENTS:
                yield (
                    f"{where}: AWS connection: {callee}() runs as the MWAA execution role; use a"
                    " hook of the Amazon provider with aws_conn_id=aws_conn_id(dev_prod_flag),"
                    " such as S3Hook(...).get_conn()"
                )
            elif callee.startswith(AWS_HOOKS) and callee.endswith("Hook"):
                if problem := _hook_problem(call, _settings(owner)):
                    yield f"{where}: AWS connection: {callee.rpartition('.')[2]}: {problem}"


def slot_problems(dag: Any) -> Iterator[str]:
    """DEV's tasks, and every sandbox's, run in DEV's pool, whose few slots keep the rest of
    the workers PROD's; PROD's tasks run in the instance's default pool (or a PROD_ pool of
    their own) with a priority weight that queues them before DEV's."""
    prod = _settings(owner_of(dag)) == "PROD"
    set_by = "default_args(dev_prod_flag) from common.conventions sets it"
    for task in dag.tasks:
        if prod and task.pool != DEFAULT_POOL and not task.pool.startswith("PROD_"):
            yield _problem(
                dag,
                task,
                "pool",
                f"{task.pool!r} is not PROD's: a PROD task runs in {DEFAULT_POOL}, or in a PROD_"
                " pool of its own",
            )
        if not prod and task.pool != DEV_POOL:
            yield _problem(
                dag,
                task,
                "pool",
                f"{task.pool!r} must be {DEV_POOL}: DEV's tasks, and the sandboxes', share its"
                f" slots; {set_by}",
            )
        if prod and task.priority_weight < PROD_PRIORITY_WEIGHT:
            yield _problem(
                dag,
                task,
                "priority",
                f"a PROD task needs priority_weight >= {PROD_PRIORITY_WEIGHT}, to be queued"
                f" before DEV's; {set_by}",
            )
        if not prod and task.priority_weight >= PROD_PRIORITY_WEIGHT:
            yield _problem(
                dag,
                task,
                "priority",
                f"priority_weight={task.priority_weight} would queue a DEV task before PROD's;"
                f" keep it below {PROD_PRIORITY_WEIGHT}",
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


def _settings(env: str) -> str:
    """Whose settings an owner runs with: a sandbox DEV's."""
    return environment_of(env) if is_owner(env) else env


def _aws_advice(given: str, value: Any, settings: str) -> str:
    """`given` (such as "aws_conn_id='x'") is wrong for `settings`: why, and what to use."""
    if value is None or value == "aws_default":
        why = "runs as the MWAA execution role, which reaches neither environment's data"
    else:
        why = f"is not {settings}'s: each environment reaches AWS as its own role"
    return f"{given} {why}; use {settings}_aws, as aws_conn_id(dev_prod_flag) gives"


def _hook_problem(call: ast.Call, settings: str) -> str | None:
    """What is wrong with the connection a hook call gives, where it gives none or a
    constant; None where it is right, or known at run time only."""
    given = [k.value for k in call.keywords if k.arg == AWS_CONN_ID] or call.args[:1]
    if not given:
        if any(k.arg is None for k in call.keywords):  # **kwargs
            return None
        return _aws_advice(f"no {AWS_CONN_ID}, so 'aws_default',", "aws_default", settings)
    if not isinstance(given[0], ast.Constant) or given[0].value == f"{settings}_aws":
        return None
    value = given[0].value
    return _aws_advice(f"{AWS_CONN_ID}={value!r}", value, settings)


def _imported_names(tree: ast.AST) -> dict[str, str]:
    """Each name the imports of a module bind, anywhere in it, to what it stands for."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr, names: dict[str, str]) -> str:
    """`s3.S3Hook` as the imports spell it out, `airflow.providers.amazon...S3Hook`; "" for
    anything but a name or its attributes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in names:
        return ""
    return ".".join([names[node.id], *reversed(parts)])


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
    """An asset's URI (and name, on Airflow 3) names its environment and no other; a
    sandbox's data lives inside DEV's, so its assets may name DEV besides itself."""
    home = env.lower()
    inside = f"{_settings(env).lower()}/{home}" if _settings(env) != env else home
    for text in dict.fromkeys(filter(None, (getattr(asset, "name", None), asset.uri))):
        named = environments_named(text)
        if others := sorted(named - {env, _settings(env)} if env in named else named - {env}):
            detail = (
                f"names {' and '.join(others)}: a {env} DAG uses {env}'s assets only;"
                f" build it from dev_prod_flag, as in s3://lake/{inside}/orders"
            )
        elif not named:
            detail = (
                f"names no environment: give it a part that is {home} or starts with {home}_"
                f" (any case), as in s3://lake/{inside}/orders or s3://lake/{home}_orders"
            )
        else:
            continue
        yield _problem(dag, task, "asset", f"{where} {text!r} {detail}")
