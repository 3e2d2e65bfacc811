"""What a DAG reads and writes made its environment's: asset (dataset) URIs and names,
object storage paths, and connection ids, in calls and in dicts (default_args, configs).

Every asset a file names is rewritten the same way, so a producer and its consumers, in
one file or in several, still name the same asset after adoption.
"""

from __future__ import annotations

import libcst as cst

from mwaa_deploy.adopt import values
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


def transform(adoption: Adoption, top: TopLevel) -> None:
    adoption.module.visit(_Resources(adoption, top, _amazon_names(adoption.module)))


class _Resources(cst.CSTVisitor):
    def __init__(self, adoption: Adoption, top: TopLevel, amazon: set[str]) -> None:
        super().__init__()
        self.adoption = adoption
        self.top = top
        self.amazon = amazon

    def visit_Call(self, node: cst.Call) -> None:
        name = callee(node)
        first = next((a for a in node.args if not a.keyword and not a.star), None)
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
        if (
            name in self.amazon
            and name.endswith(AWS_CLASSES)
            and keyword(node, AWS_CONN_ID) is None
            and not has_star_kwargs(node)
        ):
            self.adoption.edit(
                node, add_keyword(AWS_CONN_ID, f"aws_conn_id({FLAG})"), "aws_conn_id"
            )

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
        if not values.make(self.adoption, self.top, value, kind, argument) and not isinstance(
            value, cst.Name | cst.Attribute
        ):
            self.adoption.note(
                value, f"{argument} is computed: make it start with settings_of({FLAG})"
            )


def _amazon_names(module: cst.Module) -> set[str]:
    """The names the file imports from the Amazon provider, at its top or inside tasks."""
    finder = _AmazonImports()
    module.visit(finder)
    return finder.names


class _AmazonImports(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if dotted_module(node).startswith(AWS_PROVIDER) and not isinstance(
            node.names, cst.ImportStar
        ):
            self.names |= {dotted(a.asname.name if a.asname else a.name) for a in node.names}
