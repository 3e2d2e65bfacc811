"""A string-valued argument made its environment's, where it is written: in the call, or
in the top-level constant it names (`dag_id=DAG_ID`, `DAG_ID = "orders"`)."""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from mwaa_deploy.adopt import strings
from mwaa_deploy.adopt.edits import Adoption, carries_environment
from mwaa_deploy.adopt.module import TopLevel

MAKERS: dict[str, Callable[[cst.BaseExpression], strings.Rewrite | str | None]] = {
    "id": strings.prefixed,
    "path": strings.data_path,
    "connection": lambda node: strings.connection_id(node, aws=False),
    "aws connection": lambda node: strings.connection_id(node, aws=True),
}


def written(top: TopLevel, node: cst.BaseExpression) -> tuple[cst.BaseExpression, int | None]:
    """Where the string is written: the constant a name stands for, or the node itself;
    with the constant's statement index."""
    if isinstance(node, cst.Name) and node.value in top.constants:
        index, value = top.constants[node.value]
        return value, index
    return node, None


def make(adoption: Adoption, top: TopLevel, site: cst.BaseExpression, kind: str, what: str) -> bool:
    """Make the string at `site` carry its environment as `kind` asks; a line for what it
    cannot do. False where it is not a string written here (the caller may do more)."""
    target, index = written(top, site)
    if carries_environment(target):
        return True
    if not isinstance(target, cst.SimpleString | cst.FormattedString):
        return False
    if adoption.made.get(id(target), kind) != kind:
        adoption.note(site, f"{what}: its constant is also a {adoption.made[id(target)]}: split it")
        return True
    if index is not None and index < top.insert_at:
        adoption.note(target, f"{what}: move this constant below the imports, then adopt again")
        return True
    result = MAKERS[kind](target)
    if isinstance(result, str):
        adoption.note(site, f"{what}: {result}")
    elif result is not None and id(target) not in adoption.made:
        adoption.made[id(target)] = kind
        adoption.edit(target, result.edit, *result.needs)
    return True
