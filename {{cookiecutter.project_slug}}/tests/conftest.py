"""Shared fixtures and helpers: a throwaway Airflow home, both environments deployed side by
side, and buckets on a real S3 endpoint."""

from __future__ import annotations

import importlib.metadata
import itertools
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.s3.models import FakeKey

from mwaa_deploy import config, instance, sync
from mwaa_deploy.s3 import S3Bucket
from mwaa_deploy.stamp import ENVIRONMENTS, stamp
from tests import dag_rules
from tests.s3_endpoint import S3Endpoint

# Airflow reads its settings when first imported: point it at a scratch home, with no
# example DAGs and no database needed for parsing.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"

SETTINGS = config.load()

# Keys a bucket holds that no deploy of this project may touch.
FOREIGN = {
    "requirements.txt": b"apache-airflow-providers-dbt-cloud\n",
    "plugins.zip": b"PK",
    "dags/.airflowignore": b"",
    "dags/team_b_report.py": b"# someone else's DAG\n",
}

BUCKET_NAMES = (f"mwaa-test-{n}" for n in itertools.count())

CONSTRAINTS_URL = instance.CONSTRAINTS_URL.format(
    airflow=SETTINGS.airflow_version, python=SETTINGS.python_version
)
CONSTRAINTS_LINE = f'--constraint "{CONSTRAINTS_URL}"'
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    seconds = terminalreporter.config.stash.get(dag_rules.PARSE_SECONDS, {})
    if seconds:
        budget = SETTINGS.dag_parse_budget_seconds
        terminalreporter.section(f"DAG file parse times (budget {budget} s)")
        for file, took in seconds.items():
            terminalreporter.write_line(f"{took:6.2f} s  {file}")


def contents(bucket: sync.Bucket) -> dict[str, bytes]:
    """Every object in the bucket, read back through the bucket's own storage."""
    if isinstance(bucket, S3Bucket):
        client = bucket.client
        keys = bucket.list("")
        return {k: client.get_object(Bucket=bucket.name, Key=k)["Body"].read() for k in keys}
    root = bucket.root
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def deploy(bucket: sync.Bucket, env: str, sources: Path = SETTINGS.sources) -> sync.Plan:
    """What `make deploy-<env>` does, on any bucket: stamp, plan, apply."""
    return sync.deploy(bucket, env, stamp(sources, env))


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


@pytest.fixture(scope="session")
def deployed_dags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `dags/` folder of a local bucket holding the DEV and PROD deploys, as on MWAA."""
    root = tmp_path_factory.mktemp("deployed")
    bucket = sync.LocalBucket(root / "bucket")
    for env in ENVIRONMENTS:
        deploy(bucket, env)
    dags = bucket.root / "dags"
    # MWAA puts the dags folder on sys.path, which is how DAG files import their helpers.
    sys.path.insert(0, str(dags))
    return dags


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """A real S3 endpoint over HTTP on loopback (moto's server), for the whole test run."""
    endpoint = S3Endpoint()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def aws(s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> S3Endpoint:
    """Point the AWS SDK at the local endpoint, the way a user would: its own variables."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    s3_endpoint.reset()
    return s3_endpoint


@pytest.fixture
def kms_etags(monkeypatch: pytest.MonkeyPatch) -> None:
    """Objects under SSE-KMS get ETags that are not the MD5 of their content, as on AWS.

    moto gives every object its MD5; this makes the endpoint answer like S3 does for
    objects encrypted with aws:kms: an opaque ETag, new for every upload.
    """
    md5_etag = FakeKey.etag

    def etag(key: FakeKey) -> str:
        if key._etag is None and key.encryption == "aws:kms":
            key._etag = secrets.token_hex(16)
        return md5_etag.fget(key)

    monkeypatch.setattr(FakeKey, "etag", property(etag))


@pytest.fixture(scope="session")
def constraints_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Airflow's constraints, as this test environment installed them.

    Tests cannot reach the constraints URL; the versions pip resolved for this Airflow here
    are the same kind of file (as `pip freeze` would write it).
    """
    pins = sorted(
        f"{dist.metadata['Name']}=={dist.version}"
        for dist in importlib.metadata.distributions()
        if dist.read_text("direct_url.json") is None  # not from a local folder
    )
    path = tmp_path_factory.mktemp("constraints") / "constraints.txt"
    path.write_text("\n".join(pins) + "\n")
    return path


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


def commit(root: Path) -> None:
    subprocess.run([*GIT, "add", "."], cwd=root, check=True)
    subprocess.run(
        [*GIT, "commit", "--quiet", "--allow-empty", "-m", "change"], cwd=root, check=True
    )


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, constraints_file: Path
) -> Callable[..., Path]:
    """Make the command line work on a project written by `write_project(**files)`."""

    def make(**files: Any) -> Path:
        root = write_project(tmp_path / "project", **files)
        for name in ("GITHUB_ACTIONS", "GITHUB_REF_NAME", "GITHUB_REF_TYPE"):
            monkeypatch.delenv(name, raising=False)  # these tests may run on Actions too
        monkeypatch.setattr("mwaa_deploy.config.PROJECT_ROOT", root)
        monkeypatch.setenv("CONSTRAINTS_FILE", str(constraints_file))
        monkeypatch.chdir(root)
        return root

    return make
