"""One DAG file adopted: parsed, transformed, checked to compile, its report lines."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NamedTuple

import libcst as cst
from libcst.metadata import MetadataWrapper

from mwaa_deploy.adopt import boto3_calls, dags, module, resources
from mwaa_deploy.adopt.edits import Adoption


class Adopted(NamedTuple):
    text: str
    # `file:line: what to do`, for what the codemod left to a person.
    report: list[str]
    keeps_task_ids: bool
    # The file could not be adopted (the report says why) and is as it was.
    left: bool = False


def adopt_source(path: str, text: str, packages: Sequence[str] | None = None) -> Adopted:
    """`text` in the convention, comments and layout kept; unchanged where it cannot be
    parsed, where a name the edits need is taken, or where the result would not compile.
    `packages`: where the providers' source is read (default: this Python's path)."""
    try:
        parsed = cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        problem = f"{path}:{error.raw_line}: does not parse: {error.message}"
        return Adopted(text, [problem], False, left=True)
    adoption = Adoption(path, MetadataWrapper(parsed))
    top = module.scan(adoption.module)
    dags.transform(adoption, top)
    resources.transform(adoption, top, sys.path if packages is None else packages)
    boto3_imports = boto3_calls.transform(adoption, top)
    notes = len(adoption.notes)
    module.give_flag(adoption, top)
    if len(adoption.notes) > notes:  # a name taken: nothing is written
        return Adopted(text, adoption.report(), False, left=True)
    new = boto3_calls.drop_unused(adoption.apply(), boto3_imports)
    # An edited file ends with a newline, as every linter asks, also where it had none.
    new = new.with_changes(has_trailing_newline=True).code if new.code != text else text
    try:
        compile(new, path, "exec")
    except SyntaxError as error:
        line = f"{path}:{error.lineno}: left as it was: the adopted file would not compile"
        problem = f"{line} ({error.msg}); adopt it by hand"
        return Adopted(text, [*adoption.report(), problem], False, left=True)
    return Adopted(new, adoption.report(), adoption.keeps_task_ids)
