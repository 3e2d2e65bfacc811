"""The connections an operator, sensor or hook takes, and their defaults, read from the
installed provider's source: `FileSensor` uses `fs_default` and `S3FileTransformOperator`
`aws_default` twice when a DAG names none, and `DynamoDBToS3Operator` takes no
`aws_conn_id` at all. Read with `ast`, never imported: importing Airflow's providers would
cost seconds a file.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from functools import cache
from pathlib import Path

# A default the source does not spell as a literal (`NOTSET`, a class attribute): nothing
# the codemod may write in its place.
COMPUTED = object()
# Where a chain of base classes is given up: far deeper than any provider's.
MAX_DEPTH = 12


def connection_parameters(
    module: str, name: str, path: Sequence[str]
) -> dict[str, str | None | object] | None:
    """`*conn_id` parameter -> its default (a string, None, or COMPUTED) of the class
    `name` of `module`, its bases' included; None where its source is not found."""
    return _parameters(module, name, tuple(path), 0)


@cache
def _parameters(
    module: str, name: str, path: tuple[str, ...], depth: int
) -> dict[str, str | None | object] | None:
    tree = _tree(module, path)
    if tree is None or depth > MAX_DEPTH:
        return None
    imported = _imports(tree, module)
    if name in imported and not _defines(tree, name):
        return _parameters(*imported[name], path, depth + 1)
    found = _defines(tree, name)
    if found is None:
        return None
    init = next(
        (s for s in found.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"),
        None,
    )
    result: dict[str, str | None | object] = {}
    if init is not None:
        for parameter, default in _conn_parameters(init.args).items():
            result[parameter] = _resolved(default, imported, module, path)
        if init.args.kwarg is None:
            return result  # what it does not name, it does not take
    for base in found.bases:
        if isinstance(base, ast.Subscript):  # a generic: AwsBaseOperator[S3Hook]
            base = base.value
        if not isinstance(base, ast.Name):
            continue
        where = imported.get(base.id) or (module, base.id)
        inherited = _parameters(*where, path, depth + 1)
        for parameter, default in (inherited or {}).items():
            result.setdefault(parameter, default)
    return result


def _conn_parameters(args: ast.arguments) -> dict[str, ast.expr]:
    positional = [*args.posonlyargs, *args.args]
    pairs = list(
        zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
    )
    pairs += [
        (a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None
    ]
    return {arg.arg: default for arg, default in pairs if arg.arg.endswith("conn_id")}


def _resolved(
    default: ast.expr, imported: dict[str, tuple[str, str]], module: str, path: tuple[str, ...]
) -> str | None | object:
    """A literal default, or the class attribute it names (`DbtCloudHook.default_conn_name`)."""
    if isinstance(default, ast.Constant) and isinstance(default.value, str | None):
        return default.value
    if isinstance(default, ast.Attribute) and isinstance(default.value, ast.Name):
        where, name = imported.get(default.value.id) or (module, default.value.id)
        tree = _tree(where, path)
        found = _defines(tree, name) if tree is not None else None
        for statement in found.body if found is not None else ():
            if (
                isinstance(statement, ast.Assign | ast.AnnAssign)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
                and any(
                    isinstance(t, ast.Name) and t.id == default.attr
                    for t in (
                        statement.targets
                        if isinstance(statement, ast.Assign)
                        else [statement.target]
                    )
                )
            ):
                return statement.value.value
    return COMPUTED


@cache
def _tree(module: str, path: tuple[str, ...]) -> ast.Module | None:
    parts = module.split(".")
    for folder in path:
        base = Path(folder or ".", *parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                try:
                    return ast.parse(candidate.read_text(encoding="utf-8"))
                except (SyntaxError, UnicodeDecodeError, OSError):
                    return None
    return None


def _defines(tree: ast.Module, name: str) -> ast.ClassDef | None:
    return next((s for s in tree.body if isinstance(s, ast.ClassDef) and s.name == name), None)


def _imports(tree: ast.Module, module: str) -> dict[str, tuple[str, str]]:
    """Name -> (module, name) of what the module imports at its top, `try` blocks included."""
    found: dict[str, tuple[str, str]] = {}
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or node.level):
            source = node.module or ""
            if node.level:
                head = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{head}.{source}" if source else head
            for alias in node.names:
                found.setdefault(alias.asname or alias.name, (source, alias.name))
    return found
