"""One file's adoption as it is worked out: the edits to its syntax tree, the names it
needs from the conventions module, and the lines for what is left to do by hand.

The transforms look at the tree as it was parsed and register edits against its nodes;
`apply` then rewrites the tree once, so two edits inside one call (its DAG id and its
tags) both land, and no transform sees another's output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

# The conventions module the edits import from (bucket_contents/dags/common/conventions.py).
CONVENTIONS = "common.conventions"
# The name the flag's environment goes by in an adopted file, as in the seed DAGs.
FLAG = "dev_prod_flag"
# What a node built from the flag calls: one of these, or the flag itself, means adopted.
HELPERS = ("environment", "settings_of", "aws_conn_id", "data_prefix")
# `{dev_prod_flag}_`, how an id starts in an f-string. Braces are never doubled in this
# package's code: the template engine that bakes the project would read them as its own.
ID_START = "{" + FLAG + "}_"

Edit = Callable[[cst.CSTNode], cst.CSTNode]


@dataclass
class Adoption:
    """What one file's transforms decided."""

    path: str
    wrapper: MetadataWrapper
    edits: dict[int, list[Edit]] = field(default_factory=dict)
    # Keeps each edited node alive, so that its id() stays its own until `apply`.
    nodes: list[cst.CSTNode] = field(default_factory=list)
    imports: set[str] = field(default_factory=set)
    # Whole import statements the edits need besides the conventions' (the Amazon hook's).
    import_lines: set[str] = field(default_factory=set)
    notes: list[tuple[int, str]] = field(default_factory=list)
    # The file has task ids the task-id prefix convention would ask to rename.
    keeps_task_ids: bool = False
    # id() of each string edited -> what it was made: one constant is never made two things.
    made: dict[int, str] = field(default_factory=dict)

    @property
    def module(self) -> cst.Module:
        return self.wrapper.module

    def line(self, node: cst.CSTNode) -> int:
        return self.wrapper.resolve(PositionProvider)[node].start.line

    def edit(self, node: cst.CSTNode, change: Edit, *needs: str) -> None:
        """Rewrite `node` with `change` (given the node as the other edits left it)."""
        self.nodes.append(node)
        self.edits.setdefault(id(node), []).append(change)
        self.imports.update(needs)

    def note(self, node: cst.CSTNode, what_to_do: str) -> None:
        self.notes.append((self.line(node), what_to_do))

    def report(self) -> list[str]:
        """`file:line: what to do`, one line each, in the file's order."""
        return [f"{self.path}:{line}: {text}" for line, text in sorted(set(self.notes))]

    def apply(self) -> cst.Module:
        return self.module.visit(_Applier(self.edits))


class _Applier(cst.CSTTransformer):
    def __init__(self, edits: dict[int, list[Edit]]) -> None:
        super().__init__()
        self._edits = edits

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:
        for change in self._edits.get(id(original_node), ()):
            updated_node = change(updated_node)
        return updated_node


def carries_environment(node: cst.CSTNode) -> bool:
    """The node is built from the flag already: it names dev_prod_flag or calls a helper of
    the conventions module. What an earlier run (or a person) adopted is left alone."""
    finder = _Finder()
    node.visit(finder)
    return finder.found


class _Finder(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def visit_Name(self, node: cst.Name) -> None:
        self.found |= node.value in (FLAG, *HELPERS)


def callee(call: cst.Call) -> str:
    """The last name of what is called: `DAG` for `DAG(...)` and `models.DAG(...)`."""
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else ""


def dotted(node: cst.BaseExpression) -> str:
    """`asset.multi` for that expression; "" for anything but names and attributes."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted(node.value)
        return f"{head}.{node.attr.value}" if head else ""
    return ""


def keyword(call: cst.Call, name: str) -> cst.Arg | None:
    return next((arg for arg in call.args if arg.keyword and arg.keyword.value == name), None)


def has_star_kwargs(call: cst.Call) -> bool:
    return any(arg.star == "**" for arg in call.args)


def add_keyword(name: str, value: str) -> Edit:
    """An edit that adds `name=value` to a call, after its last argument."""

    def change(call: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(call, cst.Call)
        new = cst.Arg(
            value=cst.parse_expression(value),
            keyword=cst.Name(name),
            equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""),
                whitespace_after=cst.SimpleWhitespace(""),
            ),
        )
        args = list(call.args)
        last = args[-1].comma if args else cst.MaybeSentinel.DEFAULT
        if isinstance(last, cst.Comma) and isinstance(
            last.whitespace_after, cst.ParenthesizedWhitespace
        ):
            # A call laid out one argument a line: the new one goes on a line of its own,
            # indented as the others, and the closing parenthesis stays where it was.
            between = args[-2].comma if len(args) > 1 else cst.MaybeSentinel.DEFAULT
            if not isinstance(between, cst.Comma):
                between = cst.Comma(whitespace_after=call.whitespace_before_args)
            args[-1] = args[-1].with_changes(comma=between)
            return call.with_changes(args=[*args, new.with_changes(comma=last)])
        if args:
            space = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            args[-1] = args[-1].with_changes(comma=space)
        return call.with_changes(args=[*args, new])

    return change


def replace_with(text: str) -> Edit:
    """An edit that puts the expression `text` in place of a node, keeping its parentheses."""
    expression = cst.parse_expression(text)

    def change(node: cst.CSTNode) -> cst.CSTNode:
        lpar = getattr(node, "lpar", ())
        rpar = getattr(node, "rpar", ())
        return expression.with_changes(lpar=lpar, rpar=rpar) if lpar else expression

    return change
