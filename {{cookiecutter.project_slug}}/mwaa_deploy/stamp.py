"""Stamping: turn the environment-agnostic sources into one environment's build.

`bucket_contents/dags/x.py` (holding `DEV = True`) becomes `build/DEV/dags/DEV_x.py`
unchanged, or `build/PROD/dags/PROD_x.py` with the flag rewritten to `DEV = False`.
Helper packages `dags/<pkg>/` become `dags/<ENV>_<pkg>/` with their absolute imports
rewritten, so that the two environments never share a line of code in the bucket.
"""

from __future__ import annotations

import ast
import io
import shutil
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mwaa_deploy import DeployError

ENVIRONMENTS = ("DEV", "PROD")
FLAG = "DEV"

# Placed in every stamped helper package so the scheduler never parses its modules as
# DAG files. The one pattern means "everything in this folder" under both ignore-file
# syntaxes: as a regexp (Airflow 2 default) it matches the empty string, so every path;
# as a glob (Airflow 3 default) it matches every name that does not start with a dot.
HELPER_AIRFLOWIGNORE = (
    b"# Written by the stamp: helper modules are imported by DAG files, never parsed as DAGs.\n"
    b"[!.]*\n"
)


class StampError(DeployError):
    """One or more source files cannot be stamped; `problems` holds `path:line: what to do`."""

    def __init__(self, problems: list[str]) -> None:
        # `problems` is the one argument, so the error survives the trip from the stamping
        # process (pickling rebuilds an exception from its arguments).
        super().__init__(problems)
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(self.problems)


@dataclass(frozen=True)
class Flag:
    """Where the one `DEV = True` sits: the span of its value `True`."""

    line: int  # 1-based
    start: int  # character column of the value
    end: int


def check_environment(env: str) -> str:
    if env not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {env!r}: use one of {', '.join(ENVIRONMENTS)}")
    return env


@dataclass(frozen=True)
class SourceFile:
    """One Python source, parsed once; `lines` split where the parser counts lines."""

    text: str
    path: str
    tree: ast.Module
    lines: list[str]

    @classmethod
    def parse(cls, text: str, path: str) -> SourceFile:
        try:
            tree = ast.parse(text, filename=path)
        except SyntaxError as error:
            raise StampError(
                [f"{path}:{error.lineno or 1}: syntax error: {error.msg}; fix it before deploying"]
            ) from None
        return cls(text, path, tree, io.StringIO(text, newline="").readlines())

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
    for node in file.nodes():
        if not _assigns_flag(node):
            continue
        line = getattr(node, "lineno", 1)
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            problems.append(
                f"{path}:{line}: the flag must be the plain statement `DEV = True`"
                " (no annotation, augmented or chained assignment)"
            )
        elif id(node) not in top_level:
            problems.append(
                f"{path}:{line}: `DEV` is assigned inside a block; the flag must be one"
                " top-level line `DEV = True`, outside any function, class, `if` or `try`"
            )
        elif not (isinstance(node.value, ast.Constant) and node.value.value is True):
            value = ast.get_source_segment(file.text, node.value) or "?"
            problems.append(
                f"{path}:{line}: the flag is `DEV = {value}`; sources must say `DEV = True`"
                " (the PROD deploy writes `DEV = False` itself)"
            )
        else:
            found.append(node)
    found.sort(key=lambda node: node.lineno)
    if len(found) > 1:
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
        raise StampError(
            sorted(problems, key=lambda problem: int(problem[len(path) + 1 :].split(":")[0]))
        )
    value = found[0].value
    line_text = file.lines[value.lineno - 1]
    return Flag(
        line=value.lineno,
        start=_char_column(line_text, value.col_offset),
        end=_char_column(line_text, value.end_col_offset or 0),
    )


def stamp_dag_file(source: str, path: str, env: str, helper_packages: frozenset[str]) -> str:
    """The source of one DAG file as deployed to `env`."""
    file = SourceFile.parse(source, path)
    flag = find_flag(file)
    edits = _import_edits(file, env, helper_packages)
    if env == "PROD":
        edits.append((flag.line, flag.start, flag.end, "False"))
    return _apply(file, edits)


def stamp_helper_module(source: str, path: str, env: str, helper_packages: frozenset[str]) -> str:
    """The source of one helper module as deployed to `env`: only its imports change."""
    file = SourceFile.parse(source, path)
    return _apply(file, _import_edits(file, env, helper_packages))


def stamp(sources: Path, env: str) -> dict[str, bytes]:
    """The build of `sources` (the bucket_contents folder) for `env`: bucket key -> content.

    Every file is checked; on any problem StampError lists them all.
    """
    check_environment(env)
    dags = sources / "dags"
    if not dags.is_dir():
        raise StampError([f"{dags}: no dags folder; DAG files live in {dags}/"])
    entries = sorted(p for p in dags.iterdir() if _is_source_name(p.name))
    helper_packages = frozenset(p.name for p in entries if p.is_dir())
    for package in sorted(helper_packages):
        if not package.isidentifier():
            raise StampError(
                [f"{dags / package}: helper package name is not a Python identifier; rename it"]
            )

    outputs: dict[str, bytes] = {}
    problems: list[str] = []
    for entry in entries:
        target = f"dags/{env}_{entry.name}"
        try:
            if entry.is_dir():
                outputs.update(_stamp_package(entry, target, env, helper_packages))
            elif entry.suffix == ".py":
                source = _read(entry)
                outputs[target] = stamp_dag_file(source, str(entry), env, helper_packages).encode()
            else:
                outputs[target] = entry.read_bytes()
        except StampError as error:
            problems += error.problems
    clashes = {p.stem for p in entries if p.suffix == ".py"} & helper_packages
    problems += [
        f"{dags / name}.py: a DAG file and a helper package are both named {name!r}; rename one"
        for name in sorted(clashes)
    ]
    if problems:
        raise StampError(problems)
    return dict(sorted(outputs.items()))


def write_build(files: dict[str, bytes], build: Path, env: str) -> Path:
    """Write a build to `build/<env>/`, to look at, and return that folder.

    The files go to a scratch folder first, moved into place when complete, so a build
    folder is never half old and half new.
    """
    final = build / env
    scratch = build / f".{env}.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    for key, body in files.items():
        file = scratch / key
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(body)
    shutil.rmtree(final, ignore_errors=True)
    scratch.rename(final)
    return final


def _stamp_package(
    package: Path, target: str, env: str, helper_packages: frozenset[str]
) -> dict[str, bytes]:
    outputs = {f"{target}/.airflowignore": HELPER_AIRFLOWIGNORE}
    problems: list[str] = []
    for file in sorted(package.rglob("*")):
        relative = file.relative_to(package)
        if not file.is_file() or not all(map(_is_source_name, relative.parts)):
            continue
        key = f"{target}/{relative.as_posix()}"
        if file.suffix == ".py":
            try:
                source = _read(file)
                outputs[key] = stamp_helper_module(source, str(file), env, helper_packages).encode()
            except StampError as error:
                problems += error.problems
        else:
            outputs[key] = file.read_bytes()
    if problems:
        raise StampError(problems)
    return outputs


def _is_source_name(name: str) -> bool:
    """Hidden files and Python's caches are not deployed."""
    return not name.startswith(".") and name != "__pycache__"


def _read(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as file:
            return file.read()
    except UnicodeDecodeError as error:
        raise StampError([f"{path}:1: not UTF-8 text ({error.reason}); save it as UTF-8"]) from None


def _assigns_flag(node: ast.AST) -> bool:
    if isinstance(node, ast.Assign):
        targets = [t for target in node.targets for t in ast.walk(target)]
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
        targets = [node.target]
    else:
        return False
    return any(isinstance(t, ast.Name) and t.id == FLAG for t in targets)


def _import_edits(
    file: SourceFile, env: str, helper_packages: frozenset[str]
) -> list[tuple[int, int, int, str]]:
    """Edits that point absolute imports of helper packages at the stamped `<env>_<pkg>`."""
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
                renamed = f"{env}_{alias.name}"
                if alias.asname:
                    end = start + len(package)
                    edits.append((alias.lineno, start, end, f"{env}_{package}"))
                    continue
                end = _char_column(line, alias.end_col_offset or 0)
                if alias.end_lineno != alias.lineno:
                    raise StampError([f"{file.path}:{alias.lineno}: put this import on one line"])
                # `import pkg.sub` binds the name `pkg`; keep that binding for the code below.
                binding = f"{env}_{package} as {package}"
                edits.append(
                    (alias.lineno, start, end, f"{renamed}, {binding}" if rest else binding)
                )
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            package = node.module.partition(".")[0]
            if package in helper_packages:
                line_no, start = _module_position(file, node)
                edits.append((line_no, start, start + len(package), f"{env}_{package}"))
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
    return "".join(lines)


def _char_column(line: str, byte_offset: int) -> int:
    """ast columns count UTF-8 bytes; string slicing counts characters."""
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))
