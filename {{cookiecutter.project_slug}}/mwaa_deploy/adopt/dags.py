"""DAG ids and cross-DAG references made their environment's, for every way a DAG is
declared: `DAG(...)` (with or as a context manager), `@dag`, `@asset` and `@asset.multi`
(Airflow 3, whose DAG id is the asset's name or the function's).

Task ids are never renamed: strings anywhere may name them (a branch callable's return
value, `xcom_pull(task_ids=...)` in code or in a Jinja template, a positional
`xcom_pull("...")`), and no tool sees them all. They are scoped by their DAG, which
already carries the environment; a file that keeps task ids is marked for the settings.
"""

from __future__ import annotations

import libcst as cst

from mwaa_deploy.adopt import values
from mwaa_deploy.adopt.edits import (
    ID_START,
    Adoption,
    add_keyword,
    callee,
    carries_environment,
    dotted,
    has_star_kwargs,
    keyword,
)
from mwaa_deploy.adopt.module import TopLevel
from mwaa_deploy.owners import is_owner

CROSS_DAG = ("trigger_dag_id", "external_dag_id")
# Decorators that make a task or a task group, whose id is the function's name.
TASK_DECORATORS = ("task", "task_group", "setup", "teardown")
TASK_IDS = ("task_id", "group_id")


def transform(adoption: Adoption, top: TopLevel) -> None:
    adoption.module.visit(_Dags(adoption, top))


class _Dags(cst.CSTVisitor):
    def __init__(self, adoption: Adoption, top: TopLevel) -> None:
        super().__init__()
        self.adoption = adoption
        self.top = top

    def visit_Call(self, node: cst.Call) -> None:
        if callee(node) == "DAG":
            given = keyword(node, "dag_id") or next(
                (arg for arg in node.args if not arg.keyword and not arg.star), None
            )
            if given is None:
                self._note_missing(node, "DAG() has no dag_id")
            else:
                self._dag_id(given.value)
            self._tags(node)
        for name in CROSS_DAG:
            if (arg := keyword(node, name)) is not None:
                self._reference(arg.value, name)
        for name in TASK_IDS:
            if (arg := keyword(node, name)) is not None and not carries_environment(arg.value):
                self.adoption.keeps_task_ids = True
        if callee(node) == "TaskGroup":
            self.adoption.keeps_task_ids = True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        for decorator in node.decorators:
            name = dotted(
                decorator.decorator.func
                if isinstance(decorator.decorator, cst.Call)
                else decorator.decorator
            )
            if name.split(".")[0] in TASK_DECORATORS:
                self.adoption.keeps_task_ids = True
            if name in ("dag", "asset.multi"):
                self._decorated(decorator, node.name.value, "dag_id")
            elif name == "asset":
                self._decorated(decorator, node.name.value, "name")

    def _decorated(self, decorator: cst.Decorator, function: str, id_argument: str) -> None:
        """`@dag`, `@asset`: the DAG id given, or the function's name made into one."""
        new_id = f'f"{ID_START}{function}"'
        call = decorator.decorator
        if not isinstance(call, cst.Call):
            self.adoption.edit(
                decorator,
                lambda d: d.with_changes(
                    decorator=cst.parse_expression(f"{dotted(call)}({id_argument}={new_id})")
                ),
                "environment",
            )
            return
        given = keyword(call, id_argument) or keyword(call, "dag_id")
        if given is not None:
            self._dag_id(given.value)
        elif has_star_kwargs(call):
            self._note_missing(call, f"@{dotted(call.func)} has **kwargs and no {id_argument}")
        else:
            self.adoption.edit(call, add_keyword(id_argument, new_id), "environment")
        self._tags(call)

    def _dag_id(self, value: cst.BaseExpression) -> None:
        if _names_file(value):
            return  # the deployed file's name, which carries its owner's prefix already
        if values.make(self.adoption, self.top, value, "id", "DAG id"):
            return
        # Computed (a factory's argument, a call): a string all the same, prefixed as it is.
        self.adoption.edit(
            value,
            lambda v: cst.BinaryOperation(
                left=cst.parse_expression(f'f"{ID_START}"'),
                operator=cst.Add(),
                right=v
                if isinstance(v, cst.Name | cst.Attribute | cst.Call)
                else _parenthesized(v),
            ),
            "environment",
        )

    def _reference(self, value: cst.BaseExpression, argument: str) -> None:
        if isinstance(value, cst.Attribute) and value.attr.value == "dag_id":
            return  # another DAG object's id, which carries the environment itself
        if not values.make(self.adoption, self.top, value, "id", argument):
            self.adoption.note(
                value,
                f"{argument} is computed: make it name a DAG of the same environment,"
                f' f"{ID_START}..."',
            )

    def _tags(self, call: cst.Call) -> None:
        """The owner's tag is the platform's to add (its cluster policy); one written here
        that names an environment would be wrong in the other copy."""
        arg = keyword(call, "tags")
        for element in getattr(arg.value if arg else None, "elements", ()):
            value = getattr(element.value, "evaluated_value", None)
            if isinstance(value, str) and is_owner(value):
                self.adoption.note(element, f"tag {value!r} names an environment: remove it")

    def _note_missing(self, node: cst.CSTNode, why: str) -> None:
        self.adoption.note(node, f'{why}: give it f"{ID_START}..."')


def _names_file(node: cst.BaseExpression) -> bool:
    finder = _FileFinder()
    node.visit(finder)
    return finder.found


class _FileFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def visit_Name(self, node: cst.Name) -> None:
        self.found |= node.value == "__file__"


def _parenthesized(node: cst.BaseExpression) -> cst.BaseExpression:
    if getattr(node, "lpar", None):
        return node
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
