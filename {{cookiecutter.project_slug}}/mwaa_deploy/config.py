"""Settings: `[tool.mwaa_deploy]` in pyproject.toml, overridden by environment variables.

The AWS SDK's own variables (`AWS_ENDPOINT_URL`, `AWS_PROFILE`, keys) are not read here:
the AWS SDK honours them itself.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Environment variable -> setting it overrides.
OVERRIDES = {
    "S3_BUCKET": "s3_bucket",
    "AWS_REGION": "aws_region",
    "MWAA_ENVIRONMENT": "mwaa_environment",
    "CONSTRAINTS_FILE": "constraints_file",
}


@dataclass(frozen=True)
class Settings:
    root: Path
    s3_bucket: str
    aws_region: str
    mwaa_environment: str
    # Empty: the constraints URL written in requirements.txt. A path: a local copy of it.
    constraints_file: str
    airflow_version: str
    python_version: str
    default_branch: str
    local_bucket: Path
    # The integrity tests fail a DAG file whose top level takes longer than this to parse.
    dag_parse_budget_seconds: float

    @property
    def sources(self) -> Path:
        return self.root / "bucket_contents"

    @property
    def build(self) -> Path:
        return self.root / "build"


def load(root: Path | None = None, environ: Mapping[str, str] = os.environ) -> Settings:
    root = root or PROJECT_ROOT
    pyproject = root / "pyproject.toml"
    with open(pyproject, "rb") as file:
        table = tomllib.load(file).get("tool", {}).get("mwaa_deploy", {})
    values = {name: str(table.get(name, "")) for name in OVERRIDES.values()}
    values |= {setting: environ[var] for var, setting in OVERRIDES.items() if var in environ}
    return Settings(
        root=root,
        airflow_version=str(table["airflow_version"]),
        python_version=str(table["python_version"]),
        default_branch=str(table.get("default_branch", "main")),
        local_bucket=root / table.get("local_bucket", "local_bucket"),
        dag_parse_budget_seconds=float(table.get("dag_parse_budget_seconds", 5.0)),
        **values,
    )


def shown(path: Path) -> Path:
    """A path in a message, relative to where the command runs, as a person typed it."""
    return Path(os.path.relpath(path))
