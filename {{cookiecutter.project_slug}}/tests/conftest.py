"""The tests' fixtures: a throwaway Airflow home, both environments deployed side by side,
and buckets on a real S3 endpoint. Other shared code is in tests/helpers.py."""

from __future__ import annotations

import atexit
import importlib.metadata
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.s3.models import FakeKey

from mwaa_deploy.buckets import LocalBucket
from mwaa_deploy.stamp import ENVIRONMENTS
from tests import dag_rules
from tests.helpers import SETTINGS, deploy, write_project
from tests.s3_endpoint import S3Endpoint

# Airflow reads its settings when first imported: point it at a scratch home, with no
# example DAGs and no database needed for parsing.
AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-home-")
atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    seconds = terminalreporter.config.stash.get(dag_rules.PARSE_SECONDS, {})
    if seconds:
        budget = SETTINGS.dag_parse_budget_seconds
        terminalreporter.section(f"DAG file parse times (budget {budget} s)")
        for file, took in seconds.items():
            terminalreporter.write_line(f"{took:6.2f} s  {file}")


@pytest.fixture(scope="session")
def deployed_dags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `dags/` folder of a local bucket holding the DEV and PROD deploys, as on MWAA."""
    root = tmp_path_factory.mktemp("deployed")
    bucket = LocalBucket(root / "bucket")
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
