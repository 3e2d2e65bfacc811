"""The settings' table (each setting's kind, unit and bounds) and the checks of the values
pyproject.toml gives, each error naming the setting's line there; config.py loads them.
"""

from __future__ import annotations

import difflib
import math
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from mwaa_deploy.exceptions import ConfigError

# The local bucket's folder by default, which the project's .gitignore leaves out of git,
# and what a bucket holds at its top (instance/instance_files.py, owners.py).
DEFAULT_LOCAL_BUCKET = "local_bucket"
BUCKET_TOP = frozenset({"dags", "requirements.txt", "plugins.zip", "startup.sh"})
# Airflow stores a pool's slots in a 32-bit column and answers 500 to more; no MWAA
# environment runs anywhere near this many tasks at once.
DEV_POOL_MAX = 10_000
HEADER = "[tool.mwaa_deploy]"
# Airflow's roles, and MWAA's: the project never writes to them (instance/roles.py).
AIRFLOW_ROLES = ("Admin", "Op", "User", "Viewer", "Public")
ROLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")

# Setting -> (its type, an example for the message); the text settings are all optional.
KINDS: dict[str, tuple[type, str]] = {
    "s3_bucket": (str, '"my-bucket"'),
    "aws_region": (str, '"eu-west-1"'),
    "mwaa_environment": (str, '"my-environment"'),
    "mwaa_constraints": (str, '"mwaa-constraints"'),
    "airflow_version": (str, '"3.3.1"'),
    "python_version": (str, '"3.12"'),
    "default_branch": (str, '"main"'),
    "dev_branch_pattern": (str, '"story/**"'),
    "sandbox_stale_days": (int, "14"),
    "local_bucket": (str, '"local_bucket"'),
    "dag_parse_budget_seconds": (float, "5.0"),
    "parse_gate_seconds": (float, "600"),
    "startup_time_limit_seconds": (float, "60.0"),
    "dev_pool_slots": (int, "3"),
    "prod_priority_weight": (int, "1000"),
    "prod_retries": (int, "2"),
    "dev_run_retention_days": (int, "30"),
    "dev_runs_on_schedule": (bool, "false"),
    "developer_role": (str, '"Developer"'),
    "prod_operator_role": (str, '"PROD_operator"'),
    "task_id_prefix": (bool, "true"),
    "environment_tag": (bool, "true"),
    "offline_wheels": (bool, "false"),
}
# What the whole-number settings count, and the most each may be.
UNITS = {"sandbox_stale_days": "days", "dev_run_retention_days": "days", "prod_retries": "retries"}
UNITS |= {"dev_pool_slots": "worker slots", "prod_priority_weight": "points"}
# A weight is added up with those downstream of it, in Airflow's 32-bit column.
MAXIMUM = {"dev_pool_slots": DEV_POOL_MAX, "prod_priority_weight": 1_000_000, "prod_retries": 100}
MAXIMUM |= {"sandbox_stale_days": 3650, "dev_run_retention_days": 3650}  # past: a date error
# Number settings for which 0 means something: here, skip the parse gate.
ZERO_ALLOWED = {"parse_gate_seconds"}
TABLE = "pyproject.toml [tool.mwaa_deploy]"
# The text settings that are versions, and how they are written.
VERSIONS = {
    "airflow_version": (re.compile(r"\d+\.\d+\.\d+"), "Airflow's version, three numbers"),
    "python_version": (re.compile(r"\d+\.\d+"), "Python's version, two numbers"),
}
# What git refuses in a branch name (git check-ref-format), but for the rarest rules.
NOT_A_BRANCH = re.compile(r"^[-/.]|[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|[/.]$|\.lock$")


def check(key: str, value: object, where: str) -> None:
    """ConfigError where the setting `key` is unknown or `value` is not of its kind;
    `where`: the setting's place, as place() says it."""
    if key not in KINDS:
        close = difflib.get_close_matches(key, KINDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(KINDS)}"
        raise ConfigError(f"{where}: unknown setting {key}{hint}")
    kind, example = KINDS[key]
    if kind is bool:
        fits = isinstance(value, bool)
        expected = "true or false"
    elif kind is float:
        # TOML's inf and nan are floats too, and no bound.
        fits = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (value > 0 or (value == 0 and key in ZERO_ALLOWED))
        )
        expected = "a number of seconds"
    elif kind is int:
        most = MAXIMUM.get(key)
        fits = (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value > 0
            and (most is None or value <= most)
        )
        expected = f"a whole number of {UNITS[key]}" + (f" from 1 to {most}" if most else "")
    elif key in VERSIONS:
        pattern, expected = VERSIONS[key]
        fits = isinstance(value, str) and bool(pattern.fullmatch(value))
    else:
        fits = isinstance(value, str)
        expected = "text in quotes"
    if not fits:
        shown_value = str(value).lower() if isinstance(value, bool) else repr(value)
        raise ConfigError(
            f"{where} {key} = {shown_value}: expected {expected}, such as {key} = {example}"
        )


def default_branch(setting: str, where: str) -> str:
    """The branch PROD deploys from; empty or not a branch name, it would match none, or
    be read by git as something else."""
    if setting.strip() and not NOT_A_BRANCH.search(setting):
        return setting
    wrong = "not a git branch name; " if setting.strip() else ""
    raise ConfigError(
        f"{where} default_branch = {setting!r}: {wrong}name the branch whose pushes deploy"
        ' PROD, such as default_branch = "main"'
    )


def local_bucket(root: Path, setting: str, where: str) -> Path:
    """The local bucket's folder: a folder of the project's own, never git's, the sources
    or the builds, inside or around them."""
    advice = 'such as local_bucket = "local_bucket"'
    if not setting.strip():
        raise ConfigError(
            f"{where} local_bucket = {setting!r}: name a folder for the local bucket, {advice}"
        )
    folder = (root / setting).resolve()
    if folder == root.resolve() or not folder.is_relative_to(root.resolve()):
        raise ConfigError(
            f"{where} local_bucket = {setting!r}: the local bucket must be a folder inside the"
            f" project, not the project itself; use a folder of its own, {advice}"
        )
    for taken in (".git", "bucket_contents", "build"):
        other = (root / taken).resolve()
        if folder.is_relative_to(other) or other.is_relative_to(folder):
            raise ConfigError(
                f"{where} local_bucket = {setting!r}: the local bucket cannot be inside"
                f" {taken}/ or hold it; use a folder of its own, {advice}"
            )
    if setting != DEFAULT_LOCAL_BUCKET and (held := _holding_project_files(root.resolve(), folder)):
        be = "be" if held == folder else "be inside"
        raise ConfigError(
            f"{where} local_bucket = {setting!r}: the local bucket cannot {be}"
            f" {held.relative_to(root.resolve()).as_posix()}/, which holds files of the project;"
            f" use a folder of its own, {advice}"
        )
    return root / setting


def _holding_project_files(root: Path, folder: Path) -> Path | None:
    """The folder of `root` that holds the local bucket's `folder` (or is it) and files of
    the project, which deploys would write among: with git, a folder it tracks a file in;
    without, a folder holding what a bucket never does. None for a folder of its own."""
    top = root / folder.relative_to(root).parts[0]
    if not top.exists():
        return None  # a first deploy will make it: nothing is there to ask git about
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "-z", "--", f":(literal){top.name}"],
            cwd=root,
            capture_output=True,
            check=False,
        )
    except OSError:  # no git here
        tracked = None
    if tracked is not None and tracked.returncode == 0:
        return top if tracked.stdout else None
    # Without git: anything beside the path down to the bucket, or in the bucket but its
    # own files; dot files are neither (.locks/ and .versions/ are the local bucket's).
    inside = [folder, *folder.parents][: len(folder.relative_to(root).parts)]
    for path, inner in zip(inside, [None, *inside], strict=False):
        if path.is_dir():
            held = {entry.name for entry in path.iterdir() if not entry.name.startswith(".")}
            if held - ({inner.name} if inner else BUCKET_TOP):
                return path
    return None


def roles(developer: str, operator: str, where: Callable[[str], str]) -> None:
    """ConfigError where the developer role or the PROD operator role is not a name of the
    project's own to write (one of Airflow's, or none), or both name one role; `where`
    gives a setting's place, as place() says it."""
    for key, name in (("developer_role", developer), ("prod_operator_role", operator)):
        # In any case: `admin` reads as Admin to whoever grants it, and a database that
        # compares names without case (MySQL's default) finds Airflow's own role by it.
        if not ROLE_NAME.fullmatch(name) or name.casefold() in {
            role.casefold() for role in AIRFLOW_ROLES
        }:
            raise ConfigError(
                f"{where(key)} {key} = {name!r}: name a role of the project's own (a letter,"
                f" then letters, digits, _ . -), not one of Airflow's ({', '.join(AIRFLOW_ROLES)})"
            )
    if developer.casefold() == operator.casefold():
        raise ConfigError(
            f"{where('prod_operator_role')}: developer_role and prod_operator_role both name"
            f" {operator!r} (role names compare without case: {developer!r} is the same role);"
            " give each its own"
        )


def mwaa_python(airflow_version: str) -> str:
    """The Python MWAA runs an Airflow version on: 3.12 from 2.11 on, 3.11 before."""
    major, minor = (int(part) for part in airflow_version.split(".")[:2])
    return "3.12" if (major, minor) >= (2, 11) else "3.11"


def python_version(airflow_version: str, setting: str, where: str) -> None:
    """ConfigError where python_version is not the Python MWAA runs the Airflow version on:
    pins, wheels and the constraints line would all be another environment's."""
    wanted = mwaa_python(airflow_version)
    if setting != wanted:
        raise ConfigError(
            f"{where} python_version = {setting!r}: MWAA runs Airflow {airflow_version} on"
            f' Python {wanted}; write python_version = "{wanted}"'
        )


def key_lines(text: str) -> dict[str, int]:
    """Where each setting is written in pyproject.toml's text: key -> line number. tomllib
    tells no lines: the text is scanned as TOML is, past multi-line strings and arrays, with
    headers and keys bare or quoted. A setting written otherwise (a dotted key, an inline
    table) is not found, and its errors name the table alone, never another line."""
    found: dict[str, int] = {}
    inside = False
    scan = _Scan()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if scan.at_top and stripped.startswith("["):
            inside = _header(stripped) == TABLE_PATH
            continue
        if scan.at_top and inside and (key := KEY.match(stripped)):
            found.setdefault(next(part for part in key.groups() if part is not None), number)
        scan.line(line)
    return found


# A bare or quoted key, followed by a dot or the header's end (`[ tool . "mwaa_deploy" ]`),
# or by `=` for a setting.
_PART = r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*"""
HEADER_PART = re.compile(_PART + r"([.\]])")
KEY = re.compile(_PART + "=")
TABLE_PATH = ("tool", "mwaa_deploy")


def _header(line: str) -> tuple[str, ...] | None:
    """The dotted key a table's header names; None for an array of tables' or no header."""
    if line.startswith("[["):
        return None
    parts: list[str] = []
    at = 1
    while part := HEADER_PART.match(line, at):
        parts.append(next(name for name in part.groups()[:3] if name is not None))
        at = part.end()
        if part[4] == "]":
            return tuple(parts)
    return None


class _Scan:
    """Where TOML's text is, line after line: in a multi-line string or array, or at the
    top, where a line may be a header or a key."""

    def __init__(self) -> None:
        self.quote = ""
        self.depth = 0

    @property
    def at_top(self) -> bool:
        return not self.quote and self.depth == 0

    def line(self, line: str) -> None:
        at = 0
        while at < len(line):
            if self.quote:
                if self.quote[0] == '"' and line[at] == "\\":
                    at += 2
                elif line.startswith(self.quote, at):
                    at, self.quote = at + len(self.quote), ""
                else:
                    at += 1
                continue
            if line[at] == "#":
                break
            if line.startswith(('"""', "'''"), at):
                self.quote = line[at : at + 3]
            elif line[at] in "\"'":
                self.quote = line[at]
            elif line[at] in "[{":
                self.depth += 1
            elif line[at] in "]}":
                self.depth = max(self.depth - 1, 0)
            at += len(self.quote) or 1
        if len(self.quote) == 1:  # a one-line string ends with its line
            self.quote = ""


def place(lines: dict[str, int], key: str) -> str:
    """`pyproject.toml:12 [tool.mwaa_deploy]`: where a setting's error points."""
    return f"pyproject.toml:{lines[key]} {HEADER}" if key in lines else TABLE
