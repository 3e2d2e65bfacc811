"""The arguments each operator call's DAG gives its tasks through `default_args`, which a
call need not repeat: per DAG, so that one DAG's `default_args` never stands for another's.

A call's DAG is the `with DAG(...)` block or the `@dag` function it is written in, or the
DAG its `dag=` argument names; a `TaskGroup`'s `default_args` add to its DAG's. Where the
DAG, or what its `default_args` hold, cannot be read off the file (a factory's argument,
`**kwargs`), every `default_args` the file writes counts, as adding a connection there
could override the one a DAG gives. A hook is no task: `default_args` never reach it.
"""

from __future__ import annotations

import libcst as cst

from mwaa_deploy.adopt.edits import callee, dotted, has_star_kwargs, keyword

DAGS = ("DAG",)
GROUPS = ("TaskGroup",)
DAG_DECORATORS = ("dag",)
GROUP_DECORATORS = ("task_group",)
# Keys unknown: the caller falls back to every default_args of the file.
Keys = frozenset[str] | None


def given(module: cst.Module) -> dict[int, Keys]:
    """id() of each call -> the keys its DAG's default_args give (None: not known)."""
    finder = _Finder(module)
    module.visit(finder)
    return finder.given


class _Finder(cst.CSTVisitor):
    def __init__(self, module: cst.Module) -> None:
        super().__init__()
        self.names = _top_level_values(module)
        self.stack: list[Keys] = []
        self.pushed: dict[int, int] = {}
        self.given: dict[int, Keys] = {}

    def visit_With(self, node: cst.With) -> None:
        self._push(node, [item.item for item in node.items])

    def leave_With(self, original_node: cst.With) -> None:
        self._pop(original_node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._push(node, [d.decorator for d in node.decorators], decorators=True)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._pop(original_node)

    def visit_Call(self, node: cst.Call) -> None:
        if callee(node).endswith("Hook"):
            self.given[id(node)] = frozenset()
        elif (named := keyword(node, "dag")) is not None:
            self.given[id(node)] = self._dag_keys(named.value)
        else:
            self.given[id(node)] = self.stack[-1] if self.stack else None

    def _push(self, node: cst.CSTNode, items: list[cst.BaseExpression], decorators=False) -> None:
        dags, groups = (DAG_DECORATORS, GROUP_DECORATORS) if decorators else (DAGS, GROUPS)
        count = 0
        for item in items:
            call = item if isinstance(item, cst.Call) else None
            last = dotted(call.func if call else item).rpartition(".")[2]
            if last in dags:
                self.stack.append(_keys(call, self.names) if call else frozenset())
            elif not decorators and isinstance(item, cst.Name) and _is_dag(self.names.get(last)):
                self.stack.append(self._dag_keys(item))  # `with dag:`
            elif last in groups:
                outer = self.stack[-1] if self.stack else None
                inner = _keys(call, self.names) if call else frozenset()
                self.stack.append(None if outer is None or inner is None else outer | inner)
            else:
                continue
            count += 1
        self.pushed[id(node)] = count

    def _pop(self, node: cst.CSTNode) -> None:
        del self.stack[len(self.stack) - self.pushed.pop(id(node), 0) :]

    def _dag_keys(self, node: cst.BaseExpression) -> Keys:
        """What the DAG `node` is, or names at the top level, gives in default_args."""
        if isinstance(node, cst.Name):
            value = self.names.get(node.value)
            return _keys(value, self.names) if value is not None and _is_dag(value) else None
        return _keys(node, self.names) if isinstance(node, cst.Call) else None


def _is_dag(node: cst.BaseExpression | None) -> bool:
    return isinstance(node, cst.Call) and callee(node) in DAGS


def _keys(call: cst.Call, names: dict[str, cst.BaseExpression]) -> Keys:
    if has_star_kwargs(call):
        return None
    arg = keyword(call, "default_args")
    if arg is None:
        return frozenset()
    value = arg.value
    if isinstance(value, cst.Name):
        value = names.get(value.value, value)
    if isinstance(value, cst.Dict):
        if any(isinstance(e, cst.StarredDictElement) for e in value.elements):
            return None
        found = [getattr(getattr(e, "key", None), "evaluated_value", None) for e in value.elements]
        return frozenset(k for k in found if isinstance(k, str))
    if isinstance(value, cst.Call) and dotted(value.func) == "dict" and not has_star_kwargs(value):
        return frozenset(a.keyword.value for a in value.args if a.keyword)
    return None


def _top_level_values(module: cst.Module) -> dict[str, cst.BaseExpression]:
    """NAME -> value of names the module's top level binds once, by a plain assignment."""
    values: dict[str, cst.BaseExpression] = {}
    seen: set[str] = set()
    for statement in module.body:
        for small in statement.body if isinstance(statement, cst.SimpleStatementLine) else ():
            if isinstance(small, cst.Assign) and len(small.targets) == 1:
                target = small.targets[0].target
                if isinstance(target, cst.Name):
                    if target.value in seen:
                        values.pop(target.value, None)
                    else:
                        values[target.value] = small.value
                    seen.add(target.value)
    return values
