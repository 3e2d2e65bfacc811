"""Stamping: turn the environment-agnostic sources into one owner's build.

`bucket_contents/dags/x.py` (holding `DEV = True`) becomes `build/DEV/dags/DEV_x.py`,
or `build/PROD/dags/PROD_x.py` with the flag rewritten to `DEV = False`, or, for a story
branch's sandbox, `dags/SBX_<name>_x.py` with the flag as it is (see owners.py). Helper
packages `dags/<pkg>/` become `dags/<owner>_<pkg>/`. The only other edit is to absolute
imports of a helper package, in DAG files and helpers alike, which are pointed at the
owner's copy, so that two owners never share a line of code in the bucket.

What ships is what lies inside `bucket_contents/`: a symlink that leads out of it, or
nowhere, stops the stamp, as does anything that could give PROD a `DEV = True`: a second
binding of the flag, a write of it through a module's namespace, code run from text
(`exec`, `eval`), or an import of an owner's deployed copy of a helper package.
"""

from __future__ import annotations

import ast
import io
import itertools
import math
import os
import shutil
import tempfile
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mwaa_deploy.exceptions import StampError
from mwaa_deploy.owners import check_owner, owner_of_key

FLAG = "DEV"
# Code given as text runs unread by the stamp: `exec("DEV = True")` would undo the
# `DEV = False` of a PROD build.
RUNS_TEXT = frozenset({"exec", "eval"})
BUILTINS = frozenset({"builtins", "__builtins__"})
# Calls that hand back a namespace, a dict of a module's names, through which the flag
# can be written behind the stamp's back; and `.__dict__`, which is one too.
NAMESPACE_CALLS = frozenset({"globals", "vars", "locals"})
# A namespace's methods that write the key their first argument names, and those that
# write every key their arguments hold.
KEY_WRITERS = frozenset(
    {"__setitem__", "__delitem__", "setdefault", "pop", "setitem", "delitem"}  # and operator's
)
MAPPING_WRITERS = frozenset({"update", "__ior__"})
IMPORTERS = frozenset({"import_module", "__import__"})
# How many texts one expression may be followed to (see `_texts`).
MAX_TEXTS = 64

# Placed in every stamped helper package so the scheduler never parses its modules as
# DAG files. The one pattern means "everything in this folder" under both ignore-file
# syntaxes: as a regexp (Airflow 2 default) it matches the empty string, so every path;
# as a glob (Airflow 3 default) it matches every name that does not start with a dot.
HELPER_AIRFLOWIGNORE = (
    b"# Written by the stamp: helper modules are imported by DAG files, never parsed as DAGs.\n"
    b"[!.]*\n"
)


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
        except SyntaxError as error:
            raise StampError(
                [f"{path}:{error.lineno or 1}: syntax error: {error.msg}; fix it before deploying"]
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
        raise StampError(_in_line_order(path, problems))
    value = found[0].value
    line_text = file.lines[value.lineno - 1]
    return Flag(
        line=value.lineno,
        start=_char_column(line_text, value.col_offset),
        end=_char_column(line_text, value.end_col_offset or 0),
    )


def _in_line_order(path: str, problems: list[str]) -> list[str]:
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


def stamp_dag_file(source: str, path: str, owner: str, helper_packages: frozenset[str]) -> str:
    """The source of one DAG file as deployed to `owner` (DEV, PROD or a sandbox)."""
    file = SourceFile.parse(source, path)
    problems = run_time_problems(file)
    try:
        flag = find_flag(file)
    except StampError as error:
        raise StampError(_in_line_order(path, problems + error.problems)) from None
    if problems:
        raise StampError(problems)
    edits = _import_edits(file, owner, helper_packages)
    if owner == "PROD":
        edits.append((flag.line, flag.start, flag.end, "False"))
    return _apply(file, edits)


def stamp_helper_module(source: str, path: str, owner: str, helper_packages: frozenset[str]) -> str:
    """The source of one helper module as deployed to `owner`: only its imports change.

    A helper must not set `DEV`, which would reach PROD as written, nor define a DAG,
    which Airflow would never see inside a helper package.
    """
    file = SourceFile.parse(source, path)
    problems = run_time_problems(file)
    binding = next((node for node, kind in _dev_bindings(file) if kind != "a star import"), None)
    if binding is not None:
        problems.append(
            f"{path}:{_line(binding)}: a helper module sets `DEV`, which would"
            " reach PROD as written: a DAG file goes directly in dags/, and helper code"
            " takes the environment from the DAG file that calls it"
        )
    line = _dag_definition(file.tree)
    if line:
        problems.append(
            f"{path}:{line}: defines a DAG, but sub-folders of dags/ hold helper code"
            " that Airflow never parses: move the DAG file directly into dags/"
        )
    if problems:
        raise StampError(_in_line_order(path, problems))
    return _apply(file, _import_edits(file, owner, helper_packages))


def stamp(sources: Path, owner: str, only: frozenset[str] | None = None) -> dict[str, bytes]:
    """The build of `sources` (the bucket_contents folder) for `owner`: bucket key -> content.

    `only`: the names (`x.py`, `common/y.py`) of the files to ship, for a sandbox that
    holds part of the project; None ships every file. Every file shipped is checked; on
    any problem StampError lists them all.
    """
    check_owner(owner)
    tree = scan(sources)
    helper_packages = frozenset(tree.packages)
    problems = list(tree.problems)
    problems += [
        f"{sources / 'dags' / package}: helper package name is not a Python identifier; rename it"
        for package in sorted(helper_packages)
        if not package.isidentifier()
    ]
    shipped = {name: path for name, path in tree.files.items() if only is None or name in only}
    outputs = {
        f"dags/{owner}_{package}/.airflowignore": HELPER_AIRFLOWIGNORE
        for package in helper_packages
        if any(name.startswith(f"{package}/") for name in shipped)
    }
    for name, path in shipped.items():
        try:
            outputs[f"dags/{owner}_{name}"] = _stamp_file(name, path, owner, helper_packages)
        except StampError as error:
            problems += error.problems
        except OSError as error:
            problems.append(f"{path}: cannot be read ({error.strerror}); fix or remove it")
    dag_names = {name.removesuffix(".py") for name in tree.files if "/" not in name}
    problems += [
        f"{sources / 'dags' / name}.py: a DAG file and a helper package are both named"
        f" {name!r}; rename one"
        for name in sorted(dag_names & helper_packages)
    ]
    if problems:
        raise StampError(problems)
    return dict(sorted(outputs.items()))


def _stamp_file(name: str, path: Path, owner: str, helper_packages: frozenset[str]) -> bytes:
    """One file as deployed to `owner`: a DAG file (`x.py`), a helper module, or other data."""
    if "/" not in name:
        return stamp_dag_file(read_text(path), str(path), owner, helper_packages).encode()
    if path.suffix == ".py":
        return stamp_helper_module(read_text(path), str(path), owner, helper_packages).encode()
    return path.read_bytes()


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
            behind = path.resolve() if entry.is_symlink() else real / entry.name
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


def read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as file:
            return file.read()
    except UnicodeDecodeError as error:
        raise StampError([f"{path}:1: not UTF-8 text ({error.reason}); save it as UTF-8"]) from None


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


def run_time_problems(file: SourceFile) -> list[str]:
    """What in a module could undo its stamp once it runs, one `path:line: ...` each.

    Three ways, each seen on the syntax tree: a write of `DEV` through a namespace
    (`globals()["DEV"] = True`), code run from text (`exec`, `eval`), and an import of an
    owner's deployed copy of a helper package (`from DEV_common import x` in a source
    that PROD would run). Keys and names are followed as far as the file spells them:
    literal text, joined or held in a name, and names given a namespace or the builtins;
    what is computed at run time goes unseen.
    """
    nodes = list(ast.walk(file.tree))
    names = _Names.of(nodes)
    problems = []
    for node in nodes:
        problem = (
            _owner_copy_import(node, names) or _text_run(node, names) or _flag_write(node, names)
        )
        if problem:
            problems.append(f"{file.path}:{node.lineno}: {problem}")
    return problems


@dataclass
class _Names:
    """What the module's names are given, as far as its assignments show: text, a
    namespace (`g = globals()`), the builtins (`import builtins as b`, `b = builtins`)."""

    texts: dict[str, set[str]] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)
    builtins: set[str] = field(default_factory=lambda: set(BUILTINS))

    @classmethod
    def of(cls, nodes: list[ast.AST]) -> _Names:
        names = cls()
        names.builtins |= {
            alias.asname
            for node in nodes
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name == "builtins" and alias.asname
        }
        assignments = sorted(
            (n for n in nodes if isinstance(n, (ast.Assign, ast.AnnAssign, ast.NamedExpr))),
            key=lambda node: (node.lineno, node.col_offset),
        )
        for node in assignments:
            if node.value is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound = [target.id for target in targets if isinstance(target, ast.Name)]
            if values := _texts(node.value, names.texts):
                for name in bound:
                    names.texts.setdefault(name, set()).update(values)
            if _is_namespace(node.value, names):
                names.namespaces.update(bound)
            if _is_builtins(node.value, names):
                names.builtins.update(bound)
        return names


def _owner_copy_import(node: ast.AST, names: _Names) -> str:
    """Why this imports an owner's copy (`DEV_common`, `SBX_ann_common`), or ""."""
    if isinstance(node, ast.Import):
        modules = [(alias.name, "import {}") for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        modules = [(node.module, "from {} import ...")]
    elif isinstance(node, ast.Call) and _called(node.func) in IMPORTERS and node.args:
        modules = [(text, "{}") for text in sorted(_texts(node.args[0], names.texts))]
    else:
        return ""
    for module, statement in modules:
        owner = owner_of_key(f"dags/{module.partition('.')[0]}")
        if owner:
            source = module.removeprefix(f"{owner}_")
            return (
                f"imports `{module}`, {owner}'s deployed copy of `{source}`, so every"
                f" environment that runs this file would run {owner}'s code; write"
                f" `{statement.format(source)}` (the stamp points an import of a helper"
                " package at each environment's own copy)"
            )
    return ""


def _text_run(node: ast.AST, names: _Names) -> str:
    """Why this reaches `exec` or `eval`, or ""."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        used = RUNS_TEXT & {node.id}
    elif isinstance(node, ast.Attribute) and _is_builtins(node.value, names):
        used = RUNS_TEXT & {node.attr}
    elif isinstance(node, ast.Subscript) and _is_builtins(node.value, names):
        used = RUNS_TEXT & _texts(node.slice, names.texts)
    elif isinstance(node, ast.Call) and _called(node.func) == "getattr" and len(node.args) > 1:
        if not _is_builtins(node.args[0], names):
            return ""
        used = RUNS_TEXT & _texts(node.args[1], names.texts)
    elif isinstance(node, ast.ImportFrom) and node.module == "builtins":
        used = RUNS_TEXT & {alias.name for alias in node.names}
    else:
        return ""
    if not used:
        return ""
    return (
        f"uses `{min(used)}`, which runs code the stamp never reads (it could bind `DEV`"
        " again, and PROD would run with DEV's settings); write that code out in the file"
    )


def _flag_write(node: ast.AST, names: _Names) -> str:
    """Why this writes `DEV` other than by a binding of the name, or ""."""
    writes = False
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)):
        writes = _is_namespace(node.value, names) and FLAG in _texts(node.slice, names.texts)
    elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
        # Another module's `DEV` too: a helper could set `etl.DEV` of a DAG module.
        writes = node.attr == FLAG
    elif isinstance(node, ast.Call):
        writes = _call_writes_flag(node, names)
    if not writes:
        return ""
    return (
        f"`{_shortened(ast.unparse(node))}` would rebind the flag at run time, behind the"
        " line the PROD deploy rewrites (PROD would run with DEV's settings);"
        " `DEV = True` must be the only binding of DEV: remove it"
    )


def _call_writes_flag(node: ast.Call, names: _Names) -> bool:
    """`setattr(m, "DEV", ...)`, or a namespace's method that writes the key `DEV`:
    `globals().update(DEV=...)`, and the same as `dict.update(globals(), ...)` or
    `operator.setitem(globals(), ...)`."""
    called, args = _called(node.func), node.args
    if called in ("setattr", "delattr"):
        return len(args) > 1 and FLAG in _texts(args[1], names.texts)
    if not (isinstance(node.func, ast.Attribute) and _is_namespace(node.func.value, names)):
        # Called unbound, or operator's: the namespace is the first argument.
        if not (args and _is_namespace(args[0], names)):
            return False
        args = args[1:]
    if called in KEY_WRITERS:
        return bool(args) and FLAG in _texts(args[0], names.texts)
    if called in MAPPING_WRITERS:
        given = [*args, *(keyword.value for keyword in node.keywords)]
        return any(keyword.arg == FLAG for keyword in node.keywords) or any(
            FLAG in _texts(sub, names.texts) for value in given for sub in ast.walk(value)
        )
    return False


def _is_namespace(node: ast.expr, names: _Names) -> bool:
    """`globals()`, `vars(...)`, `locals()`, anything's `.__dict__`, or a name given one."""
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id in NAMESPACE_CALLS
    if isinstance(node, ast.Name):
        return node.id in names.namespaces
    return isinstance(node, ast.Attribute) and node.attr == "__dict__"


def _is_builtins(node: ast.expr, names: _Names) -> bool:
    """The builtins module or its namespace: `builtins`, `__builtins__`, a name given
    either, `__import__("builtins")`, and the `vars(...)` or `.__dict__` of these."""
    if isinstance(node, ast.Name):
        return node.id in names.builtins
    if isinstance(node, ast.Attribute):
        return node.attr == "__dict__" and _is_builtins(node.value, names)
    if isinstance(node, ast.Call) and node.args:
        called = _called(node.func)
        if called == "vars":
            return _is_builtins(node.args[0], names)
        return called in IMPORTERS and "builtins" in _texts(node.args[0], names.texts)
    return False


def _texts(node: ast.expr, names: dict[str, set[str]]) -> set[str]:
    """The texts an expression may hold, as far as the file spells them: literal text, its
    concatenations and f-strings, and names assigned these. Empty when not known."""
    if isinstance(node, ast.Constant):
        return {node.value} if isinstance(node.value, str) else set()
    if isinstance(node, ast.Name):
        return names.get(node.id, set())
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = [_texts(node.left, names), _texts(node.right, names)]
    elif isinstance(node, ast.JoinedStr):
        parts = [
            _texts(value.value, names)
            if isinstance(value, ast.FormattedValue)
            and value.conversion == -1
            and value.format_spec is None
            else _texts(value, names)
            for value in node.values
        ]
    else:
        return set()
    if math.prod(map(len, parts)) > MAX_TEXTS:
        return set()  # text built in a loop, say: past following, and no key anyone writes
    return {"".join(joined) for joined in itertools.product(*parts)}


def _shortened(code: str, length: int = 60) -> str:
    return code if len(code) <= length else code[: length - 3] + "..."


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
        uses = [_called(d) for d in function.decorator_list] + [
            _called(n.func) for n in ast.walk(function) if isinstance(n, ast.Call)
        ]
        if makers & set(uses):
            makers.add(function.name)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and _called(sub.func) in makers:
                return sub.lineno
    return 0


def _called(node: ast.expr) -> str:
    """The name a call or decorator uses: `DAG` for `DAG(...)` and `models.DAG(...)`."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


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
                start = _char_column(line, alias.col_offset)
                renamed = f"{owner}_{alias.name}"
                if alias.asname:
                    end = start + len(package)
                    edits.append((alias.lineno, start, end, f"{owner}_{package}"))
                    continue
                end = _char_column(line, alias.end_col_offset or 0)
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
    column = _char_column(first, node.col_offset)
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


def _char_column(line: str, byte_offset: int) -> int:
    """ast columns count UTF-8 bytes; string slicing counts characters."""
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))
