"""Strings made to carry their environment: ids, URIs and paths, connection ids.

Each function takes a string as written (a literal or an f-string) and returns the edit
that makes it the environment's, with the conventions' names that edit needs, or a
sentence saying why it cannot (the caller makes that a `file:line` line).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import libcst as cst

from mwaa_deploy.adopt.edits import FLAG, ID_START, Edit, replace_with
from mwaa_deploy.owners import SANDBOX

# What a string must carry for each kind: the data path's folder, the environment's
# connections (a sandbox uses DEV's).
DATA_PREFIX = f"data_prefix({FLAG})"
SETTINGS = f"settings_of({FLAG})"
AWS = f"aws_conn_id({FLAG})"
# A part of a URI or name that names an environment, in any case: `prod`, `dev_x`, `SBX_ann`.
NAMES_ENVIRONMENT = re.compile(rf"(?:dev|prod|{SANDBOX}_[a-z0-9]+)(?:[_-].*)?", re.IGNORECASE)
PART = re.compile(r"[A-Za-z0-9_-]+")


class Rewrite(NamedTuple):
    edit: Edit
    needs: tuple[str, ...]


def names_an_environment(text: str) -> bool:
    return any(NAMES_ENVIRONMENT.fullmatch(part) for part in PART.findall(text))


def prefixed(node: cst.BaseExpression) -> Rewrite | str:
    """`"orders"` -> `f"{dev_prod_flag}_orders"`: an id, a name."""
    if isinstance(node, cst.FormattedString):
        head = [_expression(FLAG), cst.FormattedStringText("_")]
        return Rewrite(lambda n: n.with_changes(parts=[*head, *n.parts]), ("environment",))
    value = _literal(node)
    if not isinstance(value, str):
        return value or "not a plain string"
    if "{" + "{" in value:
        return f"{value!r} is a Jinja template: make it render an id that starts {ID_START}"
    if names_an_environment(value):
        return f"{value!r} names an environment: build it from {FLAG}, the same in every copy"
    return _fstring(node, [("expr", FLAG), ("text", f"_{value}")], ("environment",))


def data_path(node: cst.BaseExpression) -> Rewrite | str:
    """`"s3://bucket/orders"` -> `f"s3://bucket/{data_prefix(dev_prod_flag)}orders"`: the
    environment's folder first in the path (dev/, prod/, dev/sbx_<name>/), and its own
    connection in place of one the URI names (`s3://aws_default@bucket/`). A string with no
    scheme is a name, prefixed as an id is."""
    if isinstance(node, cst.FormattedString):
        return _formatted_data_path(node)
    value = _literal(node)
    if not isinstance(value, str):
        return value or "not a plain string"
    if names_an_environment(value):
        return f"{value!r} names an environment: build it from {FLAG}, the same in every copy"
    scheme, found, rest = value.partition("://")
    if not found:
        return prefixed(node)
    authority, slash, path = rest.partition("/")
    user, at, host = authority.rpartition("@")
    pieces: list[tuple[str, str]] = [("text", f"{scheme}://")]
    needs = ["data_prefix", "environment"]
    if at and _is_aws(user):
        pieces += [("expr", AWS), ("text", f"@{host}")]
        needs.append("aws_conn_id")
    elif at:
        pieces += [("expr", SETTINGS), ("text", f"_{user}@{host}")]
        needs.append("settings_of")
    else:
        pieces.append(("text", host))
    pieces += [("text", "/"), ("expr", DATA_PREFIX), ("text", path if slash else "")]
    return _fstring(node, pieces, tuple(needs))


def connection_id(node: cst.BaseExpression, aws: bool) -> Rewrite | str | None:
    """`"postgres_default"` -> `f"{settings_of(dev_prod_flag)}_postgres_default"`, and an
    AWS connection -> `aws_conn_id(dev_prod_flag)`, the one that assumes the environment's
    role. None: nothing to do (an empty id, which names no connection)."""
    if isinstance(node, cst.FormattedString) and not aws:
        head = [_expression(SETTINGS), cst.FormattedStringText("_")]
        return Rewrite(
            lambda n: n.with_changes(parts=[*head, *n.parts]), ("settings_of", "environment")
        )
    value = _literal(node)
    if value == "":
        return None
    if not isinstance(value, str):
        return value or "not a plain string: make it start with settings_of(dev_prod_flag)"
    if aws or _is_aws(value):
        return Rewrite(replace_with(AWS), ("aws_conn_id", "environment"))
    if value.upper().startswith(("DEV_", "PROD_")):
        return f"{value!r} names an environment: build it from {SETTINGS}"
    return _fstring(
        node, [("expr", SETTINGS), ("text", f"_{value}")], ("settings_of", "environment")
    )


def _is_aws(conn_id: str) -> bool:
    return conn_id == "aws_default" or conn_id.startswith("aws")


def _literal(node: cst.BaseExpression) -> str | None:
    """The text of a plain string literal; None for anything else, "" for an empty one."""
    if isinstance(node, cst.SimpleString) and "b" not in node.prefix.lower():
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _fstring(
    node: cst.BaseExpression, pieces: list[tuple[str, str]], needs: tuple[str, ...]
) -> Rewrite | str:
    """An f-string of `pieces` (text, or an expression's code) in the quotes of `node`."""
    assert isinstance(node, cst.SimpleString)
    quote = node.quote
    body = ""
    for kind, piece in pieces:
        if kind == "expr":
            body += "{" + piece + "}"
            continue
        text = piece.replace("\\", "\\\\").replace("{", "{" * 2).replace("}", "}" * 2)
        if len(quote) == 1:
            text = text.replace(quote, f"\\{quote}").replace("\n", "\\n")
        body += text
    prefix = node.prefix.lower().replace("u", "")
    return Rewrite(replace_with(f"{prefix}f{quote}{body}{quote}"), needs)


def _formatted_data_path(node: cst.FormattedString) -> Rewrite | str:
    """The data prefix after the first `/` that follows `://`, inside an f-string's text."""
    parts = list(node.parts)
    first = parts[0] if parts else None
    if not isinstance(first, cst.FormattedStringText):
        return "starts with an expression: put data_prefix(dev_prod_flag) first in its path"
    if "://" not in first.value:
        return prefixed(node)
    start = first.value.index("://") + 3
    for index, part in enumerate(parts):
        if not isinstance(part, cst.FormattedStringText):
            continue
        slash = part.value.find("/", start if index == 0 else 0)
        if slash >= 0:
            head, tail = part.value[: slash + 1], part.value[slash + 1 :]
            new = [cst.FormattedStringText(head), _expression(DATA_PREFIX)]
            new += [cst.FormattedStringText(tail)] if tail else []
            return Rewrite(
                lambda n, i=index, new=new: n.with_changes(
                    parts=[*n.parts[:i], *new, *n.parts[i + 1 :]]
                ),
                ("data_prefix", "environment"),
            )
    return "has no path after its bucket: put data_prefix(dev_prod_flag) first in its path"


def _expression(code: str) -> cst.FormattedStringExpression:
    return cst.FormattedStringExpression(expression=cst.parse_expression(code))
