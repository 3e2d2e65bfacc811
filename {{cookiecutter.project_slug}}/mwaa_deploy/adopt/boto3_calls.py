"""boto3 called directly, made a call through the environment's AWS connection:
`boto3.client("s3")` becomes
`AwsBaseHook(aws_conn_id=aws_conn_id(dev_prod_flag), client_type="s3").get_conn()`,
`boto3.resource(...)` the same with `resource_type=`, `boto3.Session()` `.get_session()`.
Called directly, boto3 runs as the MWAA execution role, which is neither environment's.

Only calls inside a function are rewritten: a task, a callable, a callback, a helper they
call, all run when a task runs, where the environment's connection is read. A call at the
module's top level (or in a class body) runs each time the file is parsed: it is named,
to be moved into a task first.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import RemoveImportsVisitor
from libcst.metadata import GlobalScope, ScopeProvider

from mwaa_deploy.adopt.edits import FLAG, Adoption, Edit, dotted
from mwaa_deploy.adopt.module import TopLevel, dotted_module

HOOK_MODULE = "airflow.providers.amazon.aws.hooks.base_aws"
HOOK = "AwsBaseHook"
# boto3's entry point -> the hook's argument naming the service ("" for none), its method.
CALLS = {
    "boto3.client": ("client_type", "get_conn"),
    "boto3.resource": ("resource_type", "get_conn"),
    "boto3.Session": ("", "get_session"),
    "boto3.session.Session": ("", "get_session"),
}
# What AwsBaseHook's constructor takes of boto3's arguments, as the Amazon provider of
# every Airflow this project bakes spells it.
CARRIED = ("region_name", "config", "verify")
# boto3.client's and boto3.resource's positional parameters the hook takes.
POSITIONAL = ("service_name", "region_name")
# Names the rewritten call reads in the scope it runs in.
READS = (HOOK, "aws_conn_id", FLAG)


# An import, as RemoveImportsVisitor names it: (module, name or None, as-name or None).
Import = tuple[str, str | None, str | None]


def transform(adoption: Adoption, top: TopLevel) -> set[Import]:
    """Rewrite the calls; the imports of boto3 they used, for `drop_unused`."""
    names = _Names()
    adoption.module.visit(names)
    calls = _Calls(adoption, top, names.bound)
    adoption.module.visit(calls)
    return {names.imports[name] for name in calls.rewritten if name in names.imports}


def drop_unused(module: cst.Module, imports: set[Import]) -> cst.Module:
    """`module` without those of `imports` that nothing in it uses any more."""
    if not imports:
        return module
    context = CodemodContext()
    for imported in sorted(imports, key=str):
        RemoveImportsVisitor.remove_unused_import(context, *imported)
    return _RemoveImports(context).transform_module(module)


class _RemoveImports(RemoveImportsVisitor):
    """Also keeps the blank lines and comments above an import it removes, on the
    statement that follows."""

    carried: Sequence[cst.EmptyLine] = ()

    def on_leave(
        self, original_node: cst.CSTNode, updated_node: cst.CSTNode
    ) -> cst.CSTNode | cst.RemovalSentinel:
        updated = super().on_leave(original_node, updated_node)
        if isinstance(updated, cst.SimpleStatementLine) and not updated.body:
            self.carried = [*self.carried, *updated.leading_lines]
            return cst.RemoveFromParent()
        if isinstance(updated, cst.BaseStatement) and self.carried:
            lines, self.carried = self.carried, ()
            return updated.with_changes(leading_lines=[*lines, *updated.leading_lines])
        return updated


class _Calls(cst.CSTVisitor):
    def __init__(self, adoption: Adoption, top: TopLevel, bound: dict[str, str]) -> None:
        super().__init__()
        self.adoption = adoption
        self.top = top
        self.bound = bound
        self.depth = 0  # functions (and lambdas) the visitor is inside
        self.scopes: object = None
        self.imported = _imports_hook(adoption.module)
        self.rewritten: set[str] = set()  # the names of boto3 the rewritten calls read

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.depth += isinstance(node, cst.FunctionDef | cst.Lambda)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.depth -= isinstance(original_node, cst.FunctionDef | cst.Lambda)
        super().on_leave(original_node)

    def visit_Call(self, node: cst.Call) -> None:
        name = dotted(node.func)
        head, _, rest = name.partition(".")
        name = ".".join(filter(None, (self.bound.get(head, head), rest)))
        if name not in CALLS:
            return
        argument, method = CALLS[name]
        use = f"AwsBaseHook(aws_conn_id=aws_conn_id({FLAG}){_service(node, argument)}).{method}()"
        left = _not_carried(node, argument)
        if self.depth == 0:
            self._note(
                node,
                f"{name}() runs as the MWAA execution role, whenever the file is"
                f" parsed: move it into a task, then use {use}",
            )
        elif left:
            self._note(
                node,
                f"{name}() runs as the MWAA execution role, and AwsBaseHook cannot"
                f" take its {left}: set that in the environment's AWS connection, then"
                f" use {use}",
            )
        elif shadowed := self._shadowed(node):
            self._note(
                node,
                f"{name}() runs as the MWAA execution role, and {shadowed!r} is"
                f" a local name here: rename it, then use {use}",
            )
        elif not self.imported and HOOK in self.top.bound:
            self._note(
                node,
                f"{name}() runs as the MWAA execution role, and the name {HOOK!r}"
                f" is bound here already: rename it, then use {use}",
            )
        else:
            self.adoption.edit(node, _hook_call(argument, method), "aws_conn_id", "environment")
            self.rewritten.add(head)
            if not self.imported:
                self.adoption.import_lines.add(f"from {HOOK_MODULE} import {HOOK}")

    def _note(self, node: cst.Call, text: str) -> None:
        self.adoption.note(node, text)

    def _shadowed(self, node: cst.Call) -> str:
        """A name the new call reads that a function around it binds for itself."""
        if self.scopes is None:
            self.scopes = self.adoption.wrapper.resolve(ScopeProvider)
        scope = self.scopes[node]  # type: ignore[index]
        for name in READS:
            if scope is not None and any(not isinstance(a.scope, GlobalScope) for a in scope[name]):
                return name
        return ""


def _service(call: cst.Call, argument: str) -> str:
    """`, client_type="s3"` for the report line, as the call names its service."""
    if not argument or not call.args:
        return ""
    first = call.args[0]
    given = first if first.keyword is None and not first.star else None
    given = given or next((a for a in call.args if _named(a, "service_name")), None)
    return f", {argument}={cst.Module([]).code_for_node(given.value)}" if given else ""


def _named(arg: cst.Arg, name: str) -> bool:
    return arg.keyword is not None and arg.keyword.value == name


def _not_carried(call: cst.Call, argument: str) -> str:
    """What of the call the hook cannot take, as the report names it; "" for nothing."""
    left = []
    for index, arg in enumerate(call.args):
        if arg.star:
            left.append(f"{arg.star}{cst.Module([]).code_for_node(arg.value)}")
        elif arg.keyword is None and not (argument and index < len(POSITIONAL)):
            left.append(f"argument {index + 1}")
        elif arg.keyword is not None and arg.keyword.value not in (*CARRIED, "service_name"):
            left.append(arg.keyword.value)
        elif arg.keyword is not None and arg.keyword.value == "service_name" and not argument:
            left.append("service_name")
    return ", ".join(left)


def _hook_call(argument: str, method: str) -> Edit:
    """boto3's call, its arguments and their layout kept, made the hook's."""

    def change(node: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(node, cst.Call)
        equal = cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        )
        # One argument a line stays so: the connection goes on a line of its own.
        space = node.whitespace_before_args
        if not isinstance(space, cst.ParenthesizedWhitespace):
            space = cst.SimpleWhitespace(" ")
        comma = cst.Comma(whitespace_after=space) if node.args else cst.MaybeSentinel.DEFAULT
        connection = cst.parse_expression(f"aws_conn_id({FLAG})")
        args = [cst.Arg(connection, keyword=cst.Name("aws_conn_id"), equal=equal, comma=comma)]
        for index, arg in enumerate(node.args):
            keyword = arg.keyword.value if arg.keyword else POSITIONAL[index]
            if keyword == "service_name":
                keyword = argument
            args.append(arg.with_changes(keyword=cst.Name(keyword), equal=equal))
        hook = node.with_changes(func=cst.Name(HOOK), args=args, lpar=(), rpar=())
        method_call = cst.Call(func=cst.Attribute(value=hook, attr=cst.Name(method)))
        return method_call.with_changes(lpar=node.lpar, rpar=node.rpar)

    return change


def _imports_hook(module: cst.Module) -> bool:
    """The file imports the hook, under its own name, at its top level already."""
    for statement in module.body:
        for small in (
            getattr(statement, "body", ()) if isinstance(statement, cst.SimpleStatementLine) else ()
        ):
            if (
                isinstance(small, cst.ImportFrom)
                and dotted_module(small) == HOOK_MODULE
                and not isinstance(small.names, cst.ImportStar)
                and any(dotted(a.name) == HOOK and a.asname is None for a in small.names)
            ):
                return True
    return False


class _Names(cst.CSTVisitor):
    """Each name the file's imports bind to boto3 or one of its parts: `b3` for
    `import boto3 as b3`, `client` for `from boto3 import client`."""

    def __init__(self) -> None:
        super().__init__()
        self.bound: dict[str, str] = {}
        self.imports: dict[str, Import] = {}  # each bound name's import

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = dotted(alias.name)
            if name.split(".")[0] == "boto3":
                if alias.asname:
                    self.bound[dotted(alias.asname.name)] = name
                    self.imports[dotted(alias.asname.name)] = (name, None, self.bound_as(alias))
                else:
                    self.bound["boto3"] = "boto3"
                    self.imports["boto3"] = (name, None, None)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = dotted_module(node)
        if module.split(".")[0] == "boto3" and not isinstance(node.names, cst.ImportStar):
            for alias in node.names:
                bound = dotted(alias.asname.name if alias.asname else alias.name)
                self.bound[bound] = f"{module}.{dotted(alias.name)}"
                self.imports[bound] = (module, dotted(alias.name), self.bound_as(alias))

    @staticmethod
    def bound_as(alias: cst.ImportAlias) -> str | None:
        return dotted(alias.asname.name) if alias.asname else None
