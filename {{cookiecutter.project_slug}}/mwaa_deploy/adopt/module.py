"""A DAG file's top level: where the flag goes, the names it binds, its string constants;
and the edits that give it the flag, the environment and the conventions' imports.

The flag and `dev_prod_flag = environment(DEV)` go after the docstring, any
`from __future__` line and the imports that open the file: before them Python refuses to
compile the file (`from __future__` must come first), and a statement between imports is
what linters flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from mwaa_deploy.adopt.edits import CONVENTIONS, FLAG, Adoption, Edit, dotted
from mwaa_deploy.stamping.sources import FLAG as DEV


@dataclass
class TopLevel:
    """What the transforms need to know of the module's top level."""

    # Where the flag goes: the index of the first statement after the opening imports.
    insert_at: int
    # NAME -> (its top-level statement's index, its value) for names bound once, to a
    # string, in the module's scope: a DAG id or a connection id written as a constant is
    # edited there.
    constants: dict[str, tuple[int, cst.BaseExpression]] = field(default_factory=dict)
    # NAME -> the first statement of the module's scope that binds it.
    bound: dict[str, cst.BaseStatement] = field(default_factory=dict)
    conventions_import: cst.ImportFrom | None = None
    flag_at: int | None = None
    has_flag_name: bool = False


def scan(module: cst.Module) -> TopLevel:
    top = TopLevel(insert_at=_after_opening_imports(module.body))
    counts: dict[str, int] = {}
    for index, outer in enumerate(module.body):
        for statement in _module_scope(outer):
            for name in _bound_by(statement):
                counts[name] = counts.get(name, 0) + 1
                top.bound.setdefault(name, statement)
            small = _only_small(statement)
            if isinstance(small, cst.ImportFrom) and dotted_module(small) == CONVENTIONS:
                top.conventions_import = small
            if isinstance(small, cst.Assign) and len(small.targets) == 1:
                target = small.targets[0].target
                if isinstance(target, cst.Name):
                    if target.value == DEV and _is_true(small.value) and statement is outer:
                        top.flag_at = index
                    if target.value == FLAG:
                        top.has_flag_name = True
                    if isinstance(small.value, cst.SimpleString | cst.FormattedString):
                        top.constants[target.value] = (index, small.value)
    top.constants = {k: v for k, v in top.constants.items() if counts.get(k) == 1}
    return top


def give_flag(adoption: Adoption, top: TopLevel) -> None:
    """The flag, the environment and the conventions' imports the edits need."""
    needs = sorted(adoption.imports | {"environment"})
    imported = _imported_names(top.conventions_import)
    clashes = sorted(n for n in needs if n in top.bound and n not in imported)
    if DEV in top.bound and top.flag_at is None:
        clashes.append(DEV)
    for name in clashes:
        adoption.notes.append(
            (
                adoption.line(top.bound[name]),
                f"the name {name!r} is bound here already, and make adopt needs it: rename it",
            )
        )
    if clashes:
        return
    missing = [n for n in needs if n not in imported]
    added = [cst.parse_statement(line + "\n") for line in sorted(adoption.import_lines)]
    if missing and top.conventions_import is not None:
        adoption.edit(top.conventions_import, _add_names(missing))
    elif missing:
        added.append(cst.parse_statement(f"from {CONVENTIONS} import {', '.join(missing)}\n"))
    lines = ([] if top.flag_at is not None else [f"{DEV} = True"]) + (
        [] if top.has_flag_name else [f"{FLAG} = environment({DEV})"]
    )
    if not added and not lines:
        return
    after = [cst.parse_statement(line + "\n") for line in lines]
    if after:
        after[0] = after[0].with_changes(leading_lines=[cst.EmptyLine()])
    # After the flag where there is one, and never before the imports that `environment`
    # comes with.
    at = top.insert_at if top.flag_at is None else max(top.insert_at, top.flag_at + 1)
    inserts: dict[int, list[cst.BaseStatement]] = {top.insert_at: added}
    inserts[at] = inserts.get(at, []) + after
    adoption.edit(adoption.module, _insert(inserts))


def dotted_module(node: cst.ImportFrom) -> str:
    return "" if node.relative or node.module is None else dotted(node.module)


def _insert(statements: dict[int, list[cst.BaseStatement]]) -> Edit:
    """Statements put before those at each index of the body as parsed."""

    def change(module: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(module, cst.Module)
        body: list[cst.BaseStatement] = []
        for index, statement in enumerate([*module.body, None]):
            body += statements.get(index, [])
            body += [statement] if statement is not None else []
        return module.with_changes(body=body)

    return change


def _add_names(names: list[str]) -> Edit:
    def change(node: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(node, cst.ImportFrom) and not isinstance(node.names, cst.ImportStar)
        old = list(node.names)
        old[-1] = old[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        return node.with_changes(names=[*old, *(cst.ImportAlias(cst.Name(n)) for n in names)])

    return change


def _imported_names(node: cst.ImportFrom | None) -> set[str]:
    if node is None or isinstance(node.names, cst.ImportStar):
        return set()
    return {(alias.asname.name if alias.asname else alias.name).value for alias in node.names}


def _after_opening_imports(body: tuple[cst.BaseStatement, ...] | list) -> int:
    index = 0
    if body and _is_docstring(body[0]):
        index = 1
    while index < len(body) and _is_import_block(body[index]):
        index += 1
    return index


def _is_docstring(statement: cst.BaseStatement) -> bool:
    small = _only_small(statement)
    return isinstance(small, cst.Expr) and isinstance(
        small.value, cst.SimpleString | cst.ConcatenatedString
    )


def _is_import_block(statement: cst.BaseStatement) -> bool:
    """An import, a try of imports (an Airflow 2 or 3 spelling), `if TYPE_CHECKING:`."""
    if isinstance(statement, cst.SimpleStatementLine):
        return all(isinstance(s, cst.Import | cst.ImportFrom) for s in statement.body)
    if isinstance(statement, cst.Try):
        blocks = [statement.body, *(h.body for h in statement.handlers)]
        return all(_is_import_block(s) for b in blocks for s in b.body if not _is_pass(s))
    if isinstance(statement, cst.If):
        return dotted(statement.test).endswith("TYPE_CHECKING")
    return False


def _is_pass(statement: cst.BaseStatement) -> bool:
    return isinstance(_only_small(statement), cst.Pass)


def _only_small(statement: cst.CSTNode) -> cst.BaseSmallStatement | None:
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        return statement.body[0]
    return None


def _is_true(value: cst.BaseExpression) -> bool:
    return isinstance(value, cst.Name) and value.value == "True"


def _module_scope(statement: cst.BaseStatement) -> list[cst.BaseStatement]:
    """The statement and those in its blocks that still run in the module's scope: inside
    `with`, `if` and `try` (a DAG declared under `with warnings.catch_warnings():`), not
    inside a function or a class."""
    if not isinstance(statement, cst.BaseCompoundStatement) or isinstance(
        statement, cst.FunctionDef | cst.ClassDef
    ):
        return [statement]
    inner: list[cst.BaseStatement] = []
    parts = [statement, getattr(statement, "orelse", None), *getattr(statement, "handlers", ())]
    for part in [*parts, getattr(statement, "finalbody", None)]:
        if isinstance(part, cst.If) and part is not statement:  # an elif
            inner += _module_scope(part)
            continue
        for child in getattr(getattr(part, "body", None), "body", ()):
            inner += _module_scope(child)
    return [statement, *inner]


def _bound_by(statement: cst.BaseStatement) -> list[str]:
    """The names a top-level statement binds (assignments, imports, defs, classes)."""
    if isinstance(statement, cst.FunctionDef | cst.ClassDef):
        return [statement.name.value]
    names = []
    for small in (
        getattr(statement, "body", ()) if isinstance(statement, cst.SimpleStatementLine) else ()
    ):
        if isinstance(small, cst.Assign):
            names += [t.target.value for t in small.targets if isinstance(t.target, cst.Name)]
        elif isinstance(small, cst.AnnAssign | cst.AugAssign) and isinstance(
            small.target, cst.Name
        ):
            names.append(small.target.value)
        elif isinstance(small, cst.Import | cst.ImportFrom) and not isinstance(
            small.names, cst.ImportStar
        ):
            for alias in small.names:
                bound = alias.asname.name if alias.asname else alias.name
                names.append(dotted(bound).split(".")[0])
    return names
