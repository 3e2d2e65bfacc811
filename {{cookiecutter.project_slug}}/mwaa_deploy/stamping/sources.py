"""The sources of dags/, parsed once, and what they must say as written.

A DAG file holds exactly one top-level `DEV = True`, and nothing else in it binds `DEV`; a
helper module binds no `DEV` and defines no DAG. Each problem is one line,
`path:line: what is wrong; what to write`. What a source could do once it runs is
checked in run_time_rules.py.
"""

from __future__ import annotations

import ast
import io
from collections.abc import Iterator
from dataclasses import dataclass

from mwaa_deploy.exceptions import StampError

FLAG = "DEV"


@dataclass(frozen=True)
class Flag:
    """Where the one `DEV = True` sits: the span of its value `True`."""

    line: int  # 1-based
    start: int  # character column of the value
    end: int


@dataclass(frozen=True)
class SourceFile:
    """One Python source, parsed once; `lines` split where the parser counts lines."""

    text: str
    path: str
    tree: ast.Module
    lines: list[str]
    # A byte order mark, which Python skips when it runs the file; the stamp keeps it.
    bom: str = ""

    @classmethod
    def parse(cls, text: str, path: str) -> SourceFile:
        bom = "\ufeff" if text.startswith("\ufeff") else ""
        text = text.removeprefix(bom)
        try:
            tree = ast.parse(text, filename=path)
            # What the parser lets through and Python refuses when it runs the file: a
            # `from __future__` import below other code (a flag put above it, say).
            compile(tree, path, "exec", dont_inherit=True)
        except SyntaxError as error:
            advice = (
                "move it to the top, after the docstring; `DEV = True` goes below it"
                if "__future__" in (error.msg or "")
                else "fix it before deploying"
            )
            raise StampError(
                [f"{path}:{error.lineno or 1}: syntax error: {error.msg}; {advice}"]
            ) from None
        return cls(text, path, tree, io.StringIO(text, newline="").readlines(), bom)

    def nodes(self) -> Iterator[ast.AST]:
        """Every statement, at any depth; every node only where a `:=` could hide the flag.

        Assignments and imports are statements, so walking the statements alone finds
        them at a fraction of the cost of a full walk; `DEV := True` is an expression.
        """
        if ":=" in self.text:
            yield from ast.walk(self.tree)
            return
        stack: list[ast.AST] = [self.tree]
        while stack:
            node = stack.pop()
            yield node
            for value in node.__dict__.values():
                if isinstance(value, list):
                    stack.extend(v for v in value if isinstance(v, _STATEMENT_HOLDERS))


_STATEMENT_HOLDERS = (ast.stmt, ast.excepthandler, ast.match_case)


def find_flag(file: SourceFile) -> Flag:
    """Return the one module-level `DEV = True`, or raise StampError saying what to write."""
    path = file.path
    top_level = set(map(id, file.tree.body))
    found: list[ast.Assign] = []
    problems: list[str] = []
    for node, kind in _dev_bindings(file):
        problem = _binding_problem(file, node, kind, top_level)
        if problem:
            problems.append(f"{path}:{_line(node)}: {problem}")
        else:
            found.append(node)
    found.sort(key=lambda node: node.lineno)
    problems += [
        f"{path}:{node.lineno}: `DEV = True` again (first at line {found[0].lineno});"
        " keep exactly one"
        for node in found[1:]
    ]
    if not found and not problems:
        problems.append(
            f"{path}:1: no `DEV = True` flag; every DAG file needs this top-level line."
            " Helper code belongs in a package folder such as dags/common/"
        )
    if problems:
        raise StampError(in_line_order(path, problems))
    value = found[0].value
    line_text = file.lines[value.lineno - 1]
    return Flag(
        line=value.lineno,
        start=char_column(line_text, value.col_offset),
        end=char_column(line_text, value.end_col_offset or 0),
    )


def in_line_order(path: str, problems: list[str]) -> list[str]:
    """Problems `path:line: ...` of one file, top to bottom, as a reader fixes them."""
    return sorted(problems, key=lambda problem: int(problem[len(path) + 1 :].split(":")[0]))


def _binding_problem(file: SourceFile, node: ast.AST, kind: str, top_level: set[int]) -> str:
    """What is wrong with this binding of `DEV`, or "" when it is a flag `DEV = True`."""
    if kind == "a star import":
        return (
            "a star import could bind `DEV` behind the flag's back; import the names you use"
            " (`DEV = True` must be the only binding of DEV)"
        )
    if kind != "assignment":
        return (
            f"{kind} binds `DEV`; `DEV = True` must be the only binding of DEV, or PROD could"
            " run with DEV's settings: rename it"
        )
    if not (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
    ):
        return (
            "the flag must be the plain statement `DEV = True`"
            " (no annotation, augmented or chained assignment)"
        )
    if id(node) not in top_level:
        return (
            "`DEV` is assigned inside a block; the flag must be one top-level line"
            " `DEV = True`, outside any function, class, `if` or `try`"
        )
    if not (isinstance(node.value, ast.Constant) and node.value.value is True):
        value = ast.get_source_segment(file.text, node.value) or "?"
        return (
            f"the flag is `DEV = {value}`; sources must say `DEV = True`"
            " (the PROD deploy writes `DEV = False` itself)"
        )
    return ""


def _dev_bindings(file: SourceFile) -> Iterator[tuple[ast.AST, str]]:
    """Every statement that binds the name `DEV` in the module, with what kind it is."""
    for node in file.nodes():
        kind = _binding_kind(node)
        if kind:
            yield node, kind


def _line(node: ast.AST) -> int:
    """A statement's line; a case clause has none of its own, its pattern has."""
    return getattr(node, "lineno", None) or getattr(getattr(node, "pattern", None), "lineno", 1)


def _binding_kind(node: ast.AST) -> str:
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return "assignment" if _names_flag(targets) else ""
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return "a for loop" if _names_flag([node.target]) else ""
    if isinstance(node, (ast.With, ast.AsyncWith)):
        bound = [item.optional_vars for item in node.items if item.optional_vars]
        return "a with statement" if _names_flag(bound) else ""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        if any(alias.name == "*" for alias in node.names):
            return "a star import"
        names = [alias.asname or alias.name.partition(".")[0] for alias in node.names]
        return "an import" if FLAG in names else ""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return "a definition" if node.name == FLAG else ""
    if isinstance(node, ast.ExceptHandler):
        return "an except clause" if node.name == FLAG else ""
    if isinstance(node, ast.match_case):
        captured = [
            n.rest if isinstance(n, ast.MatchMapping) else n.name
            for n in ast.walk(node.pattern)
            if isinstance(n, (ast.MatchAs, ast.MatchStar, ast.MatchMapping))
        ]
        return "a case pattern" if FLAG in captured else ""
    if isinstance(node, ast.Delete):
        return "a del statement" if _names_flag(node.targets) else ""
    return ""


def _names_flag(targets: list[ast.expr]) -> bool:
    return any(
        isinstance(t, ast.Name) and t.id == FLAG for target in targets for t in ast.walk(target)
    )


def helper_problems(file: SourceFile) -> list[str]:
    """What stops a helper module shipping, one `path:line: ...` each: it must not set
    `DEV`, which would reach PROD as written, nor define a DAG, which Airflow would never
    see inside a helper package."""
    problems = []
    binding = next((node for node, kind in _dev_bindings(file) if kind != "a star import"), None)
    if binding is not None:
        problems.append(
            f"{file.path}:{_line(binding)}: a helper module sets `DEV`, which would"
            " reach PROD as written: a DAG file goes directly in dags/, and helper code"
            " takes the environment from the DAG file that calls it"
        )
    line = _dag_definition(file.tree)
    if line:
        problems.append(
            f"{file.path}:{line}: defines a DAG, but sub-folders of dags/ hold helper code"
            " that Airflow never parses: move the DAG file directly into dags/"
        )
    return problems


def _dag_definition(tree: ast.Module) -> int:
    """The line where the module's top level makes a DAG, or 0 if it makes none.

    Makers of DAGs: `DAG` and the `dag` decorator under any name they are imported as,
    and the module's own functions that use one; a top level that calls any of them makes
    a DAG. A maker brought in from elsewhere goes unseen: the integrity tests, which load
    what Airflow parses, are the net behind this.
    """
    makers = {"DAG", "dag"} | {
        alias.asname
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname and alias.name in ("DAG", "dag")
    }
    functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for function in functions:  # in order, so that a maker may use one defined above it
        uses = [called_name(d) for d in function.decorator_list] + [
            called_name(n.func) for n in ast.walk(function) if isinstance(n, ast.Call)
        ]
        if makers & set(uses):
            makers.add(function.name)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and called_name(sub.func) in makers:
                return sub.lineno
    return 0


def called_name(node: ast.expr) -> str:
    """The name a call or decorator uses: `DAG` for `DAG(...)` and `models.DAG(...)`."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def char_column(line: str, byte_offset: int) -> int:
    """ast columns count UTF-8 bytes; string slicing counts characters."""
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))
