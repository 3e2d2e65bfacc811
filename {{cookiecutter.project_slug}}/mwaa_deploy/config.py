"""Settings: `[tool.mwaa_deploy]` in pyproject.toml, overridden by environment variables.

The AWS SDK's own variables (`AWS_ENDPOINT_URL`, `AWS_PROFILE`, keys) are not read here:
the AWS SDK honours them itself.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import tomllib
from pathlib import Path

from mwaa_deploy import settings_rules as rules
from mwaa_deploy.exceptions import ConfigError
from mwaa_deploy.settings_rules import DEFAULT_LOCAL_BUCKET, DEV_POOL_MAX, KINDS, TABLE

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


REQUIRED = ("airflow_version", "python_version")
# The settings read as written: those with their default in Settings.
AS_WRITTEN = {f.name for f in dataclasses.fields(Settings) if f.default is not dataclasses.MISSING}
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def load(root: Path | None = None) -> Settings:
    """The settings of the project at `root`; ConfigError names the first wrong one."""
    root = root or PROJECT_ROOT
    table, lines = _read_table(root / "pyproject.toml")
    where = functools.partial(rules.place, lines)
    for key, value in table.items():
        rules.check(key, value, where(key))
    for key in REQUIRED:
        if key not in table:
            raise ConfigError(f"{TABLE}: {key} is missing; add {key} = {KINDS[key][1]}")
    values = {name: str(table.get(name, "")) for name in OVERRIDES.values()}
    values |= {
        setting: text for var, setting in OVERRIDES.items() if (text := variable(var)) is not None
    }
    bucket = values["s3_bucket"]
    if bucket and not BUCKET.fullmatch(bucket):
        source = (
            "S3_BUCKET" if variable("S3_BUCKET") is not None else f"{where('s3_bucket')} s3_bucket"
        )
        raise ConfigError(
            f"{source}={bucket!r} is not a bucket name: write the name alone, such as"
            " my-mwaa-bucket (no s3://, no folder)"
        )
    region = values["aws_region"]
    if region and not REGION.fullmatch(region):
        source = (
            "AWS_REGION"
            if variable("AWS_REGION") is not None
            else f"{where('aws_region')} aws_region"
        )
        raise ConfigError(
            f"{source}={region!r} is not an AWS region name: use one such as eu-west-1"
        )
    rules.python_version(table["airflow_version"], table["python_version"], where("python_version"))
    settings = Settings(
        root=root,
        airflow_version=table["airflow_version"],
        python_version=table["python_version"],
        default_branch=rules.default_branch(
            table.get("default_branch", "main"), where("default_branch")
        ),
        dev_branch_pattern=table.get("dev_branch_pattern", "story/**"),
        sandbox_stale_days=int(table.get("sandbox_stale_days", 14)),
        local_bucket=rules.local_bucket(
            root,
            table.get("local_bucket", DEFAULT_LOCAL_BUCKET),
            where("local_bucket"),
        ),
        dag_parse_budget_seconds=float(table.get("dag_parse_budget_seconds", 5.0)),
        parse_gate_seconds=_parse_gate_seconds(table),
        startup_time_limit_seconds=float(table.get("startup_time_limit_seconds", 60.0)),
        dev_pool_slots=_dev_pool_slots(table),
        **{key: table[key] for key in AS_WRITTEN if key in table},
        **values,
    )
    rules.roles(settings.developer_role, settings.prod_operator_role, where)
    return settings


def variable(name: str) -> str | None:
    """The value of an environment variable a user gives (make's too), without the spaces
    around it, which a shell or a CI file adds unseen; None where it is not set. Every
    variable of the tool's is read here, so each reads the same way."""
    text = os.environ.get(name)
    return None if text is None else text.strip()


def _read_table(pyproject: Path) -> tuple[dict[str, object], dict[str, int]]:
    """The settings' table, and the line of each setting (settings_rules.key_lines)."""
    try:
        text = pyproject.read_bytes().decode()
        document = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
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
    return table, rules.key_lines(text)


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


def shown(path: Path) -> Path:
    """A path in a message, relative to where the command runs, as a person typed it."""
    return Path(os.path.relpath(path))
