"""What a DAG reads and writes made its environment's: asset (dataset) URIs and names,
object storage paths, and connection ids, in calls and in dicts (default_args, configs).

Every asset a file names is rewritten the same way, so a producer and its consumers, in
one file or in several, still name the same asset after adoption.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from mwaa_deploy.adopt import default_args, signatures, strings, values
from mwaa_deploy.adopt.edits import (
    FLAG,
    Adoption,
    add_keyword,
    callee,
    dotted,
    has_star_kwargs,
    keyword,
)
from mwaa_deploy.adopt.module import TopLevel, dotted_module

ASSETS = ("Asset", "Dataset")
ALIASES = ("AssetAlias", "DatasetAlias")
PATHS = ("ObjectStoragePath",)
# The Amazon provider's classes that take an AWS connection, and where they come from.
AWS_PROVIDER = "airflow.providers.amazon"
AWS_CLASSES = ("Operator", "Sensor", "Hook")
AWS_CONN_ID = "aws_conn_id"


def transform(adoption: Adoption, top: TopLevel, packages: Sequence[str]) -> None:
    imports = _Imports()
    adoption.module.visit(imports)
    adoption.module.visit(_Resources(adoption, top, imports, packages))


class _Resources(cst.CSTVisitor):
    def __init__(
        self, adoption: Adoption, top: TopLevel, imports: _Imports, packages: Sequence[str]
    ) -> None:
        super().__init__()
        self.adoption = adoption
        self.top = top
        self.imports = imports
        self.packages = packages
        self.default_args = default_args.given(adoption.module)

    def visit_Call(self, node: cst.Call) -> None:
        name = callee(node)
        first = _first(node)
        if name in ASSETS or name in PATHS:
            self._make(first, "path", f"{name} URI")
            self._make(keyword(node, "uri"), "path", f"{name} URI")
            self._make(keyword(node, "name"), "id", f"{name} name")
        elif name in ALIASES:
            self._make(first or keyword(node, "name"), "id", f"{name} name")
        elif name == "ref" and dotted(node.func).split(".")[0] in ASSETS:
            self._make(keyword(node, "name"), "id", "asset name")
            self._make(keyword(node, "uri"), "path", "asset URI")
        elif name == "asset" or dotted(node.func) == "asset.multi":
            self._make(keyword(node, "uri"), "path", "asset URI")
        for arg in node.args:
            if arg.keyword and arg.keyword.value.endswith("conn_id"):
                self._connection(arg.keyword.value, arg.value)
        if name.endswith(AWS_CLASSES) and name in self.imports.sources:
            self._defaults(node, name)

    def _defaults(self, node: cst.Call, name: str) -> None:
        """The connections the class uses when the call names none, made the environment's:
        as its source declares them, or `aws_conn_id` for an Amazon class not found."""
        if has_star_kwargs(node) or any(not arg.keyword for arg in node.args):
            return  # a positional argument may be the connection
        module, original = self.imports.sources[name]
        found = signatures.connection_parameters(module, original, self.packages)
        if found is None:
            found = {AWS_CONN_ID: None} if module.startswith(AWS_PROVIDER) else {}
        for parameter, default in found.items():
            given = self.default_args.get(id(node))
            if keyword(node, parameter) is not None or parameter in (given or ()):
                continue  # given here, or by its DAG's default_args
            if given is None and parameter in self.imports.dict_keys:
                # Some DAG's default_args give it; which DAG this call is in, none can tell.
                self.adoption.note(
                    node,
                    f"{name} names no {parameter}, and its DAG is made where make adopt cannot"
                    f" tell (a factory?): give the environment's in that DAG's default_args",
                )
                continue
            if parameter.endswith(AWS_CONN_ID):
                value, needs = f"aws_conn_id({FLAG})", ("aws_conn_id", "environment")
            elif isinstance(default, str) and default:
                value = 'f"{' + strings.SETTINGS + "}_" + default.replace('"', "") + '"'
                needs = ("settings_of", "environment")
            else:
                continue  # no connection unless one is given, or one no literal names
            self.adoption.edit(node, add_keyword(parameter, value), *needs)

    def visit_Dict(self, node: cst.Dict) -> None:
        for element in node.elements:
            key = getattr(element, "key", None)
            text = getattr(key, "evaluated_value", None)
            if isinstance(text, str) and text.endswith("conn_id"):
                self._connection(text, element.value)

    def _make(self, arg: cst.Arg | None, kind: str, what: str) -> None:
        if arg is not None and not values.make(self.adoption, self.top, arg.value, kind, what):
            self.adoption.note(
                arg.value, f"{what} is computed: build it from {FLAG} (data_prefix({FLAG}))"
            )

    def _connection(self, argument: str, value: cst.BaseExpression) -> None:
        aws = argument.endswith(AWS_CONN_ID)
        if isinstance(value, cst.Name) and value.value == "None":
            if aws:
                self.adoption.note(
                    value,
                    f"{argument}=None runs as the MWAA execution role: use aws_conn_id({FLAG})",
                )
            return
        kind = "aws connection" if aws else "connection"
        written, _ = values.written(self.top, value)
        text = getattr(written, "evaluated_value", None)
        if isinstance(text, str) and text and aws and text != "aws_default":
            self.adoption.note(
                value,
                f"{argument}={text!r} becomes the environment's aws_conn_id({FLAG}): give"
                f" DEV_aws and PROD_aws the access {text!r} had",
            )
        if values.make(self.adoption, self.top, value, kind, argument):
            return
        if isinstance(value, cst.Name):
            self.adoption.note(
                value,
                f"{argument} is the name {value.value!r}, which make adopt cannot follow:"
                f" make what it holds start with settings_of({FLAG})",
            )
        elif not isinstance(value, cst.Attribute):
            self.adoption.note(
                value, f"{argument} is computed: make it start with settings_of({FLAG})"
            )


def _first(call: cst.Call) -> cst.Arg | None:
    """The first positional argument."""
    return next((a for a in call.args if not a.keyword and not a.star), None)


class _Imports(cst.CSTVisitor):
    """Where each name the file imports comes from (at its top or inside tasks), and the
    connection parameters its dicts give (default_args): what a call whose DAG cannot be
    told need not repeat."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: dict[str, tuple[str, str]] = {}
        self.dict_keys: set[str] = set()

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = dotted_module(node)
        if module and not isinstance(node.names, cst.ImportStar):
            for alias in node.names:
                bound = dotted(alias.asname.name if alias.asname else alias.name)
                self.sources[bound] = (module, dotted(alias.name))

    def visit_Dict(self, node: cst.Dict) -> None:
        for element in node.elements:
            text = getattr(getattr(element, "key", None), "evaluated_value", None)
            if isinstance(text, str) and text.endswith("conn_id"):
                self.dict_keys.add(text)
