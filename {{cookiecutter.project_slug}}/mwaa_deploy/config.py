"""Settings: `[tool.mwaa_deploy]` in pyproject.toml, overridden by environment variables.

The AWS SDK's own variables (`AWS_ENDPOINT_URL`, `AWS_PROFILE`, keys) are not read here:
the AWS SDK honours them itself.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import subprocess
import tomllib
from pathlib import Path

from mwaa_deploy.exceptions import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Environment variable -> setting it overrides.
OVERRIDES = {
    "S3_BUCKET": "s3_bucket",
    "AWS_REGION": "aws_region",
    "MWAA_ENVIRONMENT": "mwaa_environment",
    "MWAA_CONSTRAINTS": "mwaa_constraints",
}
# The numbers a variable overrides: how long a deploy waits for MWAA to parse it, and
# how many worker slots DEV's tasks may hold at once.
PARSE_GATE_VARIABLE = "PARSE_GATE_SECONDS"
PARSE_GATE_DEFAULT = 600.0
DEV_POOL_VARIABLE = "DEV_POOL_SLOTS"
DEV_POOL_DEFAULT = 3
# The local bucket's folder by default, which the project's .gitignore leaves out of git,
# and what a bucket holds at its top (instance/instance_files.py, owners.py).
DEFAULT_LOCAL_BUCKET = "local_bucket"
BUCKET_TOP = frozenset({"dags", "requirements.txt", "plugins.zip", "startup.sh"})
# Airflow stores a pool's slots in a 32-bit column and answers 500 to more; no MWAA
# environment runs anywhere near this many tasks at once.
DEV_POOL_MAX = 10_000


@dataclasses.dataclass(frozen=True)
class Settings:
    root: Path
    s3_bucket: str
    aws_region: str
    mwaa_environment: str
    # Empty: MWAA's constraint files, downloaded once. A path: a folder of copies of them.
    mwaa_constraints: str
    airflow_version: str
    python_version: str
    default_branch: str
    # Pushes to these branches deploy their sandboxes, named without its fixed start (story/).
    dev_branch_pattern: str
    # `make sandboxes` marks a sandbox stale after this many days without a deploy.
    sandbox_stale_days: int
    local_bucket: Path
    # The integrity tests fail a DAG file whose top level takes longer than this to parse.
    dag_parse_budget_seconds: float
    # How long a deploy to S3 waits for MWAA's parse of it (instance/parse_gate.py), and the
    # bound of its other questions to MWAA; 0: it asks nothing (instance/live_instance.py).
    parse_gate_seconds: float
    # check-startup stops startup.sh after this long (MWAA stops it after five minutes).
    startup_time_limit_seconds: float
    # The worker slots DEV's tasks, the sandboxes' included, may hold at once (instance/pools.py).
    dev_pool_slots: int
    # The cluster policy gives PROD's tasks at least this priority, these retries if none.
    prod_priority_weight: int = 1000
    prod_retries: int = 2
    # make clean-runs deletes DEV's and the sandboxes' runs that ended longer ago than this.
    dev_run_retention_days: int = 30
    # True: DEV's and the sandboxes' copies keep PROD's clock schedules.
    dev_runs_on_schedule: bool = False
    # The Airflow roles the project owns (instance/roles.py), granted DAGs by the policy.
    developer_role: str = "Developer"
    prod_operator_role: str = "PROD_operator"
    # Conventions the integrity tests hold DAGs to, which isolate nothing (a task id is
    # scoped by its DAG's, and tags only label): every task and group id starts with the
    # owner's prefix; the DAG's tags hold the owner.
    task_id_prefix: bool = True
    environment_tag: bool = True
    offline_wheels: bool = False  # MWAA installs from wheels in plugins.zip (instance/wheels.py)

    @property
    def sources(self) -> Path:
        return self.root / "bucket_contents"

    @property
    def build(self) -> Path:
        return self.root / "build"


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
REQUIRED = ("airflow_version", "python_version")
# The settings read as written: those with their default in Settings.
AS_WRITTEN = {f.name for f in dataclasses.fields(Settings) if f.default is not dataclasses.MISSING}
TABLE = "pyproject.toml [tool.mwaa_deploy]"
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# What git refuses in a branch name (git check-ref-format), but for the rarest rules.
NOT_A_BRANCH = re.compile(r"^[-/.]|[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|[/.]$|\.lock$")


def load(root: Path | None = None) -> Settings:
    """The settings of the project at `root`; ConfigError names the first wrong one."""
    root = root or PROJECT_ROOT
    table = _read_table(root / "pyproject.toml")
    for key, value in table.items():
        _check(key, value)
    for key in REQUIRED:
        if key not in table:
            raise ConfigError(f"{TABLE}: {key} is missing; add {key} = {KINDS[key][1]}")
    values = {name: str(table.get(name, "")) for name in OVERRIDES.values()}
    values |= {
        setting: text for var, setting in OVERRIDES.items() if (text := variable(var)) is not None
    }
    bucket = values["s3_bucket"]
    if bucket and not BUCKET.fullmatch(bucket):
        source = "S3_BUCKET" if variable("S3_BUCKET") is not None else f"{TABLE} s3_bucket"
        raise ConfigError(
            f"{source}={bucket!r} is not a bucket name: write the name alone, such as"
            " my-mwaa-bucket (no s3://, no folder)"
        )
    region = values["aws_region"]
    if region and not REGION.fullmatch(region):
        source = "AWS_REGION" if variable("AWS_REGION") is not None else f"{TABLE} aws_region"
        raise ConfigError(
            f"{source}={region!r} is not an AWS region name: use one such as eu-west-1"
        )
    return Settings(
        root=root,
        airflow_version=table["airflow_version"],
        python_version=table["python_version"],
        default_branch=_default_branch(table.get("default_branch", "main")),
        dev_branch_pattern=table.get("dev_branch_pattern", "story/**"),
        sandbox_stale_days=int(table.get("sandbox_stale_days", 14)),
        local_bucket=_local_bucket(root, table.get("local_bucket", DEFAULT_LOCAL_BUCKET)),
        dag_parse_budget_seconds=float(table.get("dag_parse_budget_seconds", 5.0)),
        parse_gate_seconds=_parse_gate_seconds(table),
        startup_time_limit_seconds=float(table.get("startup_time_limit_seconds", 60.0)),
        dev_pool_slots=_dev_pool_slots(table),
        **{key: table[key] for key in AS_WRITTEN if key in table},
        **values,
    )


def variable(name: str) -> str | None:
    """The value of an environment variable a user gives (make's too), without the spaces
    around it, which a shell or a CI file adds unseen; None where it is not set. Every
    variable of the tool's is read here, so each reads the same way."""
    text = os.environ.get(name)
    return None if text is None else text.strip()


def _read_table(pyproject: Path) -> dict[str, object]:
    try:
        with open(pyproject, "rb") as file:
            document = tomllib.load(file)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            f"{pyproject.name} is not valid TOML ({error}); fix it, then run this again"
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read {pyproject}: {error.strerror}") from None
    table = document.get("tool", {}).get("mwaa_deploy", {})
    if not isinstance(table, dict):
        raise ConfigError(
            f"{pyproject.name}: tool.mwaa_deploy = {table!r}, where a table of settings belongs;"
            " write them under a [tool.mwaa_deploy] line"
        )
    return table


def _check(key: str, value: object) -> None:
    if key not in KINDS:
        close = difflib.get_close_matches(key, KINDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(KINDS)}"
        raise ConfigError(f"{TABLE}: unknown setting {key}{hint}")
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
    else:
        fits = isinstance(value, str)
        expected = "text in quotes"
    if not fits:
        shown_value = str(value).lower() if isinstance(value, bool) else repr(value)
        raise ConfigError(
            f"{TABLE} {key} = {shown_value}: expected {expected}, such as {key} = {example}"
        )


def _parse_gate_seconds(table: dict[str, object]) -> float:
    """The parse gate's bound: PARSE_GATE_SECONDS, else the setting, else the default."""
    text = variable(PARSE_GATE_VARIABLE)
    if text is None:
        return float(table.get("parse_gate_seconds", PARSE_GATE_DEFAULT))
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigError(
            f"{PARSE_GATE_VARIABLE}={text!r} is not a number of seconds: use 0 to skip the"
            f" parse gate, or a bound on its wait such as {PARSE_GATE_VARIABLE}=600"
        )
    return seconds


def _dev_pool_slots(table: dict[str, object]) -> int:
    """DEV's worker slots: DEV_POOL_SLOTS, else the setting, else the default."""
    text = variable(DEV_POOL_VARIABLE)
    if text is None:
        return int(table.get("dev_pool_slots", DEV_POOL_DEFAULT))
    if not (text.isascii() and text.isdecimal() and 0 < int(text) <= DEV_POOL_MAX):
        raise ConfigError(
            f"{DEV_POOL_VARIABLE}={text!r} is not a number of worker slots: use a whole"
            f" number from 1 to {DEV_POOL_MAX}, such as {DEV_POOL_VARIABLE}={DEV_POOL_DEFAULT}"
        )
    return int(text)


def _default_branch(setting: str) -> str:
    """The branch PROD deploys from; empty or not a branch name, it would match none, or
    be read by git as something else."""
    if setting.strip() and not NOT_A_BRANCH.search(setting):
        return setting
    wrong = "not a git branch name; " if setting.strip() else ""
    raise ConfigError(
        f"{TABLE} default_branch = {setting!r}: {wrong}name the branch whose pushes deploy"
        ' PROD, such as default_branch = "main"'
    )


def _local_bucket(root: Path, setting: str) -> Path:
    """The local bucket's folder: a folder of the project's own, never git's, the sources
    or the builds, inside or around them."""
    advice = 'such as local_bucket = "local_bucket"'
    if not setting.strip():
        raise ConfigError(
            f"{TABLE} local_bucket = {setting!r}: name a folder for the local bucket, {advice}"
        )
    folder = (root / setting).resolve()
    if folder == root.resolve() or not folder.is_relative_to(root.resolve()):
        raise ConfigError(
            f"{TABLE} local_bucket = {setting!r}: the local bucket must be a folder inside the"
            f" project, not the project itself; use a folder of its own, {advice}"
        )
    for taken in (".git", "bucket_contents", "build"):
        other = (root / taken).resolve()
        if folder.is_relative_to(other) or other.is_relative_to(folder):
            raise ConfigError(
                f"{TABLE} local_bucket = {setting!r}: the local bucket cannot be inside"
                f" {taken}/ or hold it; use a folder of its own, {advice}"
            )
    if setting != DEFAULT_LOCAL_BUCKET and (held := _holding_project_files(root.resolve(), folder)):
        be = "be" if held == folder else "be inside"
        raise ConfigError(
            f"{TABLE} local_bucket = {setting!r}: the local bucket cannot {be}"
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


def shown(path: Path) -> Path:
    """A path in a message, relative to where the command runs, as a person typed it."""
    return Path(os.path.relpath(path))
