"""The files make adopt works on: those FILES= names (split as the shell splits words) or
every DAG file; each read as the stamp reads it, or named with why not; and, once adopted,
formatted as make format does where the file was laid out so before: a file of another
layout keeps it, as make adopt keeps every line it does not need to touch."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from mwaa_deploy import config
from mwaa_deploy.exceptions import ConfigError

# What make format runs, on the adopted files only: the imports sorted, then ruff's layout.
FORMAT = (("check", "--fix", "--select", "I", "--quiet"), ("format", "--quiet"))


def chosen(dags: Path, files: str | None) -> list[Path]:
    """The DAG files named in `files`, each directly in `dags`; all of them when none are.
    A name with a space is quoted, as in the shell: FILES="'dags/my dag.py'"."""
    if not files:
        return sorted(p for p in dags.glob("*.py") if not p.name.startswith("."))
    try:
        names = shlex.split(files)
    except ValueError as error:
        raise ConfigError(
            f"FILES: {error}: quote a name with spaces as the shell does,"
            " FILES=\"'bucket_contents/dags/my dag.py'\""
        ) from None
    named = [(name, Path(os.path.abspath(name))) for name in names]  # a link, not its target
    for name, path in named:
        if not path.is_symlink() and not path.exists():
            wildcard = " (FILES= takes names, not wildcards)" if set(name) & set("*?[") else ""
            raise ConfigError(
                f"FILES: {name} does not exist{wildcard}: name DAG files of {_dags(dags)}/"
            )
        if path.parent.resolve() != dags.resolve() or path.suffix != ".py" or path.is_dir():
            raise ConfigError(
                f"FILES: {name} is not a DAG file of {_dags(dags)}/: name .py files"
                " directly in it (helper packages get no flag)"
            )
    return list(dict.fromkeys(path for _, path in named))  # a file named twice, once


class Source(NamedTuple):
    text: str
    # `file:line: what to do` where the file is not adopted; "" where it is.
    problem: str


def read(path: Path) -> Source:
    """`path`'s text, as written; or why make adopt leaves it, as its report line."""
    shown = config.shown(path).as_posix()
    if path.is_symlink():
        return Source(
            "",
            f"{shown}:1: a symlink, which make adopt leaves (it edits no file through a"
            " link, as the stamp ships none out of the project): adopt the file it points"
            " to, or put that file here in its place",
        )
    try:
        return Source(path.read_bytes().decode("utf-8"), "")
    except UnicodeDecodeError as error:
        return Source(
            "",
            f"{shown}:1: not UTF-8 text ({error.reason}), which the stamp reads only:"
            " save it as UTF-8 (its coding line too), then make adopt again",
        )


def laid_out_by_ruff(root: Path, paths: list[Path]) -> set[Path]:
    """Those of `paths` that make format would leave as they are: their imports sorted and
    their layout ruff's. None where ruff is not installed here, or says what it would change
    other than as the locked ruff does."""
    if importlib.util.find_spec("ruff") is None or not paths:
        return set()
    names = [str(path) for path in paths]
    flagged: set[Path] = set()
    for command in (("format", "--check"), ("check", "--select", "I")):
        ruff = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--output-format", "json", *names],
            cwd=root,
            capture_output=True,
            text=True,
        )
        try:
            flagged |= {Path(found["filename"]) for found in json.loads(ruff.stdout or "[]")}
        except (ValueError, TypeError, KeyError):
            return set()
    return {path for path in paths if path not in flagged}


def format_as_the_project(root: Path, paths: list[Path]) -> None:
    """Sort the imports of `paths` and lay them out with ruff and the project's settings,
    as make format does."""
    for command in FORMAT if paths else ():
        names = [str(path) for path in paths]
        subprocess.run([sys.executable, "-m", "ruff", *command, *names], cwd=root, check=False)


def _dags(dags: Path) -> str:
    return config.shown(dags).as_posix()
