"""Assets, connections and AWS: each DAG reaches only its own environment's (isolation).
The shared helpers are in dag_rules.py."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mwaa_deploy.owners import ENVIRONMENTS, SANDBOX, owner_of_key
from tests.dag_rules import arguments, owner_of, problem, settings_of, strings

# What AWS is reached through: an operator's or sensor's argument ending so, and the
# providers' hooks. boto3 called directly runs as the MWAA execution role.
AWS_CONN_ID = "aws_conn_id"
AWS_HOOKS = "airflow.providers.amazon."
BOTO3_CLIENTS = {"boto3.client", "boto3.resource", "boto3.Session", "boto3.session.Session"}
# The parts of an asset URI or name: what lies between '/', '.', ':', '@' and the like.
PART = re.compile(r"[A-Za-z0-9_-]+")
# A connection id in a URL, as ObjectStoragePath reads it: s3://aws_default@bucket/key.
URL_CONN_ID = re.compile(r"[a-z][a-z0-9+.-]*://([^@/:]+)@")
# How deep a task argument's values are searched for connection ids: config objects and
# dicts holding a conn_id, inside the argument (DataSourceConfig(conn_id=...)).
DEPTH = 3


def resource_problems(dag: Any) -> Iterator[str]:
    """Assets (datasets) belong to the DAG's owner (a sandbox's live inside DEV's), and
    connections to its environment (a sandbox uses DEV's)."""
    env = owner_of(dag)
    settings = settings_of(env)
    for asset in _assets(_schedule_condition(dag)):
        yield from _asset_problems(dag, None, "schedule", asset, env)
    for task in dag.tasks:
        for direction in ("inlets", "outlets"):
            for asset in _assets(getattr(task, direction, None) or ()):
                yield from _asset_problems(dag, task, direction, asset, env)
        for argument, conn_id in connection_ids(arguments(task)):
            if conn_id and not conn_id.startswith(f"{settings}_"):
                yield problem(dag, task, "connection id", _conn_advice(argument, conn_id, settings))


def aws_problems(dag: Any) -> Iterator[str]:
    """An operator or sensor that reaches AWS does so through its environment's connection,
    which assumes the environment's role: not aws_default, nor None (both run as the MWAA
    execution role), nor the other environment's."""
    settings = settings_of(owner_of(dag))
    for task in dag.tasks:
        for argument, value in sorted(arguments(task).items()):
            if argument.endswith(AWS_CONN_ID) and value != f"{settings}_aws":
                # An operator may keep what it was given privately, behind a property.
                advice = _aws_advice(f"{argument.lstrip('_')}={value!r}", value, settings)
                yield problem(dag, task, "AWS connection", advice)


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
                if found := _hook_problem(call, settings_of(owner)):
                    yield f"{where}: AWS connection: {callee.rpartition('.')[2]}: {found}"


def storage_path_problems(dagbag: Any) -> Iterator[str]:
    """An ObjectStoragePath a DAG file makes at its top level, for its tasks' code, reaches
    storage through its environment's connection: the one its URL names
    (s3://DEV_aws@bucket/key), never none or aws_default."""
    files = {Path(dag.fileloc): dag for dag in dagbag.dags.values()}
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        dag = files.get(Path(file)) if file else None
        if dag is None:
            continue
        settings = settings_of(owner_of(dag))
        for name, value in sorted(vars(module).items()):
            if _is_storage_path(value):
                for conn_id in _storage_conn_ids(value):
                    if not (conn_id or "").startswith(f"{settings}_"):
                        advice = _conn_advice(f"ObjectStoragePath {name}", conn_id, settings)
                        yield problem(dag, None, "connection id", advice)


def connection_ids(given: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """Each connection id a task's arguments name, with where it is: an argument ending in
    conn_id (bar aws_conn_id, which aws_problems checks), one held inside a dict or config
    object the task is given (DataSourceConfig(conn_id=...)), and the one an
    ObjectStoragePath's URL names (s3://aws_default@bucket/key), None where it names none."""
    for argument, value in sorted(given.items()):
        if argument.endswith("conn_id"):
            if not argument.endswith(AWS_CONN_ID):
                yield from ((argument, text) for text in strings(value))
        elif not argument.startswith("_"):
            yield from _nested_conn_ids(argument, value, DEPTH)


def _nested_conn_ids(where: str, value: Any, depth: int) -> Iterator[tuple[str, str | None]]:
    if depth == 0 or isinstance(value, (str, bytes)):
        return
    if _is_storage_path(value):
        yield from ((where, conn_id) for conn_id in _storage_conn_ids(value))
        return
    if isinstance(value, dict):
        items = [(key, item) for key, item in value.items() if isinstance(key, str)]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = [(str(index), item) for index, item in enumerate(value)]
    elif _is_config_object(value):
        items = [(key, item) for key, item in vars(value).items() if not key.startswith("_")]
    else:
        return
    for key, item in items:
        inner = f"{where}.{key}"
        if key.endswith("conn_id"):
            yield from ((inner, text) for text in strings(item))
        else:
            yield from _nested_conn_ids(inner, item, depth - 1)


def _is_config_object(value: Any) -> bool:
    """A dataclass or attrs object given as settings, never Airflow's own objects (a DAG,
    a task, a group) that a task points to."""
    if isinstance(value, type) or any(
        hasattr(value, name) for name in ("dag_id", "task_id", "group_id")
    ):
        return False
    return hasattr(value, "__dataclass_fields__") or hasattr(value, "__attrs_attrs__")


def _is_storage_path(value: Any) -> bool:
    return type(value).__name__ == "ObjectStoragePath" and hasattr(value, "conn_id")


def _storage_conn_ids(path: Any) -> list[str | None]:
    """The connection a storage path reaches its store through; none for local files."""
    if getattr(path, "protocol", "file") in ("file", "local", ""):
        return []
    return [path.conn_id]


def _conn_advice(given: str, conn_id: str | None, settings: str) -> str:
    if conn_id is None:
        return _aws_advice(f"{given}, with no connection in its URL,", None, settings)
    if conn_id == "aws_default":
        return _aws_advice(f"{given}={conn_id!r}", conn_id, settings)
    return (
        f"{given}={conn_id!r} must start with {settings}_; each environment has its own connections"
    )


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
    inside = f"{settings_of(env).lower()}/{home}" if settings_of(env) != env else home
    for text in dict.fromkeys(filter(None, (getattr(asset, "name", None), asset.uri))):
        named = environments_named(text)
        if others := sorted(named - {env, settings_of(env)} if env in named else named - {env}):
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
        yield problem(dag, task, "asset", f"{where} {text!r} {detail}")
