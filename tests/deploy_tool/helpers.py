"""What the deploy package's tests share besides fixtures (those are in conftest.py): the
baked project's settings, a deploy as `make deploy-<env>` does it, buckets on the test S3
endpoint, projects on disk."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import boto3
import pytest

from mwaa_deploy import config, owners
from mwaa_deploy.bucket import history, sync
from mwaa_deploy.bucket.buckets import Bucket
from mwaa_deploy.bucket.local_bucket import LOCAL_LOCKS, LOCAL_VERSIONS
from mwaa_deploy.bucket.plans import Plan
from mwaa_deploy.bucket.s3_bucket import S3Bucket
from mwaa_deploy.instance import instance_files
from mwaa_deploy.stamping.build import Build
from tests.deploy_tool import BAKED
from tests.helpers import MWAA_CONSTRAINTS

SETTINGS = config.load(BAKED)

# Keys a bucket holds that no deploy of this project may touch.
FOREIGN = {
    "requirements.txt": b"apache-airflow-providers-dbt-cloud\n",
    "plugins.zip": b"PK",
    "dags/.airflowignore": b"",
    "dags/team_b_report.py": b"# someone else's DAG\n",
}

BUCKET_NAMES = (f"mwaa-test-{n}" for n in itertools.count())

CONSTRAINTS_URL = instance_files.constraints_url(SETTINGS)
CONSTRAINTS_LINE = f'--constraint "{CONSTRAINTS_URL}"'
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


def contents(bucket: Bucket) -> dict[str, bytes]:
    """Every object in the bucket, read back through the bucket's own storage."""
    if isinstance(bucket, S3Bucket):
        client = bucket.client
        keys = bucket.list("")
        return {k: client.get_object(Bucket=bucket.name, Key=k)["Body"].read() for k in keys}
    files = (p.relative_to(bucket.root) for p in bucket.root.rglob("*") if p.is_file())
    # Not objects: the folders where the local bucket keeps its deploy locks and versions.
    objects = (f for f in files if f.parts[0] not in (LOCAL_LOCKS, LOCAL_VERSIONS))
    return {f.as_posix(): (bucket.root / f).read_bytes() for f in objects}


def deployed_files(bucket: Bucket) -> dict[str, bytes]:
    """The bucket's objects but the deploys' bookkeeping (records, locks)."""
    return {
        key: body
        for key, body in contents(bucket).items()
        if not key.endswith((f"_{history.RECORD_NAME}", f"_{owners.LOCK_NAME}"))
    }


def deploy(bucket: Bucket, env: str, sources: Path = SETTINGS.sources) -> Plan:
    """What `make deploy-<env>` does, on any bucket: plan (stamping what changed), apply."""
    return sync.deploy(bucket, env, Build(sources, env))


def new_s3_bucket(encryption: str = "AES256", versioned: bool = True) -> str:
    """A fresh bucket on the endpoint the AWS SDK points at, set up as MWAA needs it."""
    name = next(BUCKET_NAMES)
    client = boto3.client("s3")
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    if versioned:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    client.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": encryption}}]
        },
    )
    return name


def write_project(
    root: Path,
    requirements: str = f"{CONSTRAINTS_LINE}\n# added by the data team\nsix\n",
    startup: str | None = "#!/usr/bin/env bash\nexport DBT_TARGET_PATH=/tmp/dbt\n",
    plugins: dict[str, str] | None = None,
) -> Path:
    """A project with the DAGs of this one and these instance-wide files, committed on
    the default branch."""
    sources = root / "bucket_contents"
    shutil.copytree(
        SETTINGS.sources / "dags", sources / "dags", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "pyproject.toml").write_bytes((SETTINGS.root / "pyproject.toml").read_bytes())
    (sources / "requirements.txt").write_text(requirements)
    if startup is not None:
        (sources / "startup.sh").write_text(startup)
    for name, text in (
        plugins or {"operators/__init__.py": "", "operators/notify.py": "X = 1\n"}
    ).items():
        (sources / "plugins" / name).parent.mkdir(parents=True, exist_ok=True)
        (sources / "plugins" / name).write_text(text)
    subprocess.run([*GIT, "init", "--quiet", "-b", SETTINGS.default_branch], cwd=root, check=True)
    commit(root)
    return root


def command_line_on(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the command line work on the project at `root`, until `monkeypatch` undoes it."""
    for name in ("GITHUB_ACTIONS", "GITHUB_REF_NAME", "GITHUB_REF_TYPE"):
        monkeypatch.delenv(name, raising=False)  # these tests may run on Actions too
    monkeypatch.setattr("mwaa_deploy.config.PROJECT_ROOT", root)
    monkeypatch.setenv("MWAA_CONSTRAINTS", str(MWAA_CONSTRAINTS))  # see mwaa_constraints
    monkeypatch.chdir(root)
    return root


def commit(root: Path) -> None:
    subprocess.run([*GIT, "add", "."], cwd=root, check=True)
    subprocess.run(
        [*GIT, "commit", "--quiet", "--allow-empty", "-m", "change"], cwd=root, check=True
    )
