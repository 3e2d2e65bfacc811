"""Stamping: turn the environment-agnostic sources into one owner's build.

`bucket_contents/dags/x.py` (holding `DEV = True`) becomes `build/DEV/dags/DEV_x.py`,
or `build/PROD/dags/PROD_x.py` with the flag rewritten to `DEV = False`, or, for a story
branch's sandbox, `dags/SBX_<name>_x.py` with the flag as it is (see owners.py). Helper
packages `dags/<pkg>/` become `dags/<owner>_<pkg>/`. The only other edit is to absolute
imports of a helper package, in DAG files and helpers alike, which are pointed at the
owner's copy, so that two owners never share a line of code in the bucket.

What ships is what lies inside `bucket_contents/`: a symlink that leads out of it, or
nowhere, stops the stamp, as does anything that could give PROD a `DEV = True`: what a
source says as written (sources.py) and what it could do once it runs (run_time_rules.py).
A project's whole build, and which of its files a deploy stamps at all, are build.py's.
"""

from __future__ import annotations

import ast
import io
import os
import shutil
import tempfile
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from mwaa_deploy.exceptions import StampError
from mwaa_deploy.stamping.run_time_rules import run_time_problems
from mwaa_deploy.stamping.sources import (
    SourceFile,
    char_column,
    find_flag,
    helper_problems,
    in_line_order,
)

# Placed in every stamped helper package so the scheduler never parses its modules as
# DAG files. The one pattern means "everything in this folder" under both ignore-file
# syntaxes: as a regexp (Airflow 2 default) it matches the empty string, so every path;
# as a glob (Airflow 3 default) it matches every name that does not start with a dot.
HELPER_AIRFLOWIGNORE = (
    b"# Written by the stamp: helper modules are imported by DAG files, never parsed as DAGs.\n"
    b"[!.]*\n"
)


def stamp_dag_file(source: str, path: str, owner: str, helper_packages: frozenset[str]) -> str:
    """The source of one DAG file as deployed to `owner` (DEV, PROD or a sandbox)."""
    file = SourceFile.parse(source, path)
    problems = run_time_problems(file)
    try:
        flag = find_flag(file)
    except StampError as error:
        raise StampError(in_line_order(path, problems + error.problems)) from None
    if problems:
        raise StampError(problems)
    edits = _import_edits(file, owner, helper_packages)
    if owner == "PROD":
        edits.append((flag.line, flag.start, flag.end, "False"))
    return _apply(file, edits)


def stamp_helper_module(source: str, path: str, owner: str, helper_packages: frozenset[str]) -> str:
    """The source of one helper module as deployed to `owner`: only its imports change."""
    file = SourceFile.parse(source, path)
    problems = run_time_problems(file) + helper_problems(file)
    if problems:
        raise StampError(in_line_order(path, problems))
    return _apply(file, _import_edits(file, owner, helper_packages))


def read_paths(sources: Path) -> list[Path]:
    """Every path a stamp of `sources` reads: its files, as symlinks lead, and the links."""
    tree = scan(sources)
    if tree.problems:
        raise StampError(tree.problems)
    return sorted({*tree.real.values(), *tree.links})


def write_build(files: dict[str, bytes], build: Path, owner: str) -> Path:
    """Write a build to `build/<owner>/`, to look at, and return that folder.

    The files go to a scratch folder first, moved into place when complete, so a build
    folder is never half old and half new.
    """
    final = build / owner
    build.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{owner}.", suffix=".partial", dir=build))
    for key, body in files.items():
        file = scratch / key
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(body)
    shutil.rmtree(final, ignore_errors=True)
    scratch.rename(final)
    return final


@dataclass
class Tree:
    """What `dags/` holds: file name -> path (`x.py`, `common/sub.py`) and -> the real path
    behind it (symlinks followed); the links (each where it lies, its folder resolved);
    the packages; the problems."""

    files: dict[str, Path] = field(default_factory=dict)
    real: dict[str, Path] = field(default_factory=dict)
    packages: set[str] = field(default_factory=set)
    links: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def scan(sources: Path) -> Tree:
    """Find what ships from `sources`/dags, following symlinks only where they stay inside."""
    dags = sources / "dags"
    tree = Tree()
    if not dags.is_dir():
        tree.problems.append(f"{dags}: no dags folder; DAG files live in {dags}/")
        return tree
    inside = sources.resolve()
    for folder in (sources, dags):
        if folder.is_symlink() and not (folder is dags and dags.resolve().is_relative_to(inside)):
            tree.problems.append(
                f"{folder}: a symlink to {folder.resolve()}; the DAGs of this project live in"
                " it, not elsewhere: make it a folder"
            )
            return tree

    def visit(folder: Path, real: Path, prefix: str, holders: frozenset[Path]) -> None:
        """`real`: the folder's own path with symlinks followed, resolved once: resolving
        each of hundreds of files would cost a PROD deploy more than its git checks."""
        unlinked = real == folder
        for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
            path = folder / entry.name
            problem = _refusal(entry, path, prefix, inside, holders)
            if problem:
                tree.problems.append(problem)
                continue
            if not is_source_name(entry.name):
                continue
            if entry.is_symlink():
                tree.links.append(real / entry.name)
                behind = path.resolve()
            else:  # one Path less a file where no symlink leads to its folder
                behind = path if unlinked else real / entry.name
            if entry.is_dir():
                if not prefix:
                    tree.packages.add(entry.name)
                visit(path, behind, f"{prefix}{entry.name}/", holders | {behind})
            else:
                tree.files[f"{prefix}{entry.name}"] = path
                tree.real[f"{prefix}{entry.name}"] = behind

    real_dags = dags.resolve()
    visit(dags, real_dags, "", frozenset({real_dags}))
    return tree


def _refusal(
    entry: os.DirEntry[str], path: Path, prefix: str, inside: Path, holders: frozenset[Path]
) -> str:
    """Why `entry` cannot ship, or "" when it can (or is skipped, as hidden files are)."""
    if not prefix and entry.name == ".airflowignore":
        return (
            f"{path}: would apply to every environment in the shared dags/ folder, so no"
            " deploy ships it; put files Airflow must not parse in a package folder (each"
            " deployed package gets its own .airflowignore)"
        )
    if not is_source_name(entry.name):
        return ""
    try:
        entry.name.encode("utf-8")
    except UnicodeEncodeError:
        return f"{path}: the file name is not UTF-8, which S3 keys must be; rename it"
    if entry.is_symlink() and (refused := _symlink_refusal(path, inside, holders)):
        return refused
    if entry.is_dir():
        return ""
    if not entry.is_file():
        return f"{path}: neither a file nor a folder; remove it"
    if not prefix and not entry.name.endswith(".py"):
        return (
            f"{path}: only DAG files (.py) sit directly in dags/, and this one would be"
            f" deployed renamed as DEV_{entry.name} and PROD_{entry.name}; move it into a"
            " package folder such as"
            " dags/common/ and open it relative to that package"
        )
    return ""


def _symlink_refusal(path: Path, inside: Path, holders: frozenset[Path]) -> str:
    """Why the symlink `path` cannot ship, or "" when it leads to a file inside `inside`."""
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return (
            f"{path}: a symlink that leads nowhere (its target is missing or a loop);"
            " fix or remove it"
        )
    if not target.is_relative_to(inside):
        return (
            f"{path}: a symlink to {target}, outside {inside}; only files inside the"
            " project are deployed: copy the file in, or remove the link"
        )
    if target in holders:
        return (
            f"{path}: a symlink to a folder that holds it, which would never end; remove the link"
        )
    return ""


def is_source_name(name: str) -> bool:
    """Hidden files and Python's caches are not deployed."""
    return not name.startswith(".") and name != "__pycache__"


def read_text(path: Path, content: bytes | None = None) -> str:
    """The text of a source (`content`, where it is read already), as written: no newline
    translated."""
    try:
        return (path.read_bytes() if content is None else content).decode("utf-8")
    except UnicodeDecodeError as error:
        raise StampError([f"{path}:1: not UTF-8 text ({error.reason}); save it as UTF-8"]) from None


def _import_edits(
    file: SourceFile, owner: str, helper_packages: frozenset[str]
) -> list[tuple[int, int, int, str]]:
    """Edits that point absolute imports of helper packages at the stamped `<owner>_<pkg>`."""
    lines = file.lines
    edits: list[tuple[int, int, int, str]] = []
    for node in file.nodes() if helper_packages else ():
        if isinstance(node, ast.Import):
            for alias in node.names:
                package, _, rest = alias.name.partition(".")
                if package not in helper_packages:
                    continue
                line = lines[alias.lineno - 1]
                start = char_column(line, alias.col_offset)
                renamed = f"{owner}_{alias.name}"
                if alias.asname:
                    end = start + len(package)
                    edits.append((alias.lineno, start, end, f"{owner}_{package}"))
                    continue
                end = char_column(line, alias.end_col_offset or 0)
                if alias.end_lineno != alias.lineno:
                    raise StampError([f"{file.path}:{alias.lineno}: put this import on one line"])
                # `import pkg.sub` binds the name `pkg`; keep that binding for the code below.
                binding = f"{owner}_{package} as {package}"
                edits.append(
                    (alias.lineno, start, end, f"{renamed}, {binding}" if rest else binding)
                )
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            package = node.module.partition(".")[0]
            if package in helper_packages:
                line_no, start = _module_position(file, node)
                edits.append((line_no, start, start + len(package), f"{owner}_{package}"))
    return edits


def _module_position(file: SourceFile, node: ast.ImportFrom) -> tuple[int, int]:
    """(line, character column) of the first name after `from` in this statement."""
    first = file.lines[node.lineno - 1]
    column = char_column(first, node.col_offset)
    # Padding keeps the statement's first line at its original character columns.
    segment = " " * column + first[column:] + "".join(file.lines[node.lineno : node.end_lineno])
    tokens = tokenize.generate_tokens(io.StringIO(segment).readline)
    names = (t for t in tokens if t.type == tokenize.NAME)
    next(names)  # `from`
    (row, column) = next(names).start
    return node.lineno + row - 1, column


def _apply(file: SourceFile, edits: list[tuple[int, int, int, str]]) -> str:
    """Replace (line, start, end) character spans, keeping every other byte as it was."""
    lines = list(file.lines)
    for line_no, start, end, text in sorted(edits, reverse=True):
        line = lines[line_no - 1]
        lines[line_no - 1] = line[:start] + text + line[end:]
    return file.bom + "".join(lines)
