"""The deploy package's tests' fixtures: buckets on a real S3 endpoint, MWAA's constraints,
projects to run the command line on. Other shared code is in helpers.py beside this."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.s3.models import FakeKey

from mwaa_deploy.bucket.buckets import Bucket
from mwaa_deploy.bucket.local_bucket import LocalBucket
from mwaa_deploy.bucket.s3_bucket import S3Bucket
from mwaa_deploy.instance import parse_gate, resolved_requirements
from mwaa_deploy.local.mwaa_local import MwaaLocal
from tests.deploy_tool.helpers import (
    FOREIGN,
    SETTINGS,
    command_line_on,
    new_s3_bucket,
    write_project,
)
from tests.deploy_tool.s3_endpoint import S3Endpoint
from tests.helpers import MWAA_CONSTRAINTS


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """A real S3 endpoint over HTTP on loopback (moto's server), for the whole test run."""
    endpoint = S3Endpoint()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="session", autouse=True)
def resolved_requirements_of_this_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The passes pip resolved are remembered for this test run alone: a test that checks a
    pass asks pip at least once a run, whatever an earlier run left in the user's cache."""
    remembered = tmp_path_factory.mktemp("resolved-requirements")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resolved_requirements, "folder", lambda: remembered)
        yield


@pytest.fixture
def aws(s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> S3Endpoint:
    """Point the AWS SDK at the local endpoint, the way a user would: its own variables."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    # No MWAA environment reads these buckets: deploys neither wait for one to parse them
    # nor set its pools, unless a test brings one (the MWAA stand-in, mwaa_local.py).
    monkeypatch.setenv("PARSE_GATE_SECONDS", "0")
    monkeypatch.setenv("MWAA_ENVIRONMENT", "")
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


@pytest.fixture
def mwaa_constraints(monkeypatch: pytest.MonkeyPatch) -> Path:
    """MWAA's constraint files, per Airflow version, as its images install with: copies kept
    with the tests (for the answers not to depend on the network or the day), in place of
    the download, through the setting a user without GitHub would use."""
    monkeypatch.setenv("MWAA_CONSTRAINTS", str(MWAA_CONSTRAINTS))
    return MWAA_CONSTRAINTS


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Make the command line work on a project written by `write_project(**files)`."""

    def make(**files: Any) -> Path:
        return command_line_on(write_project(tmp_path / "project", **files), monkeypatch)

    return make


@pytest.fixture(params=["local", "s3", "s3-kms"])
def bucket(request: pytest.FixtureRequest, tmp_path: Path) -> Bucket:
    """A bucket already holding files this project does not own.

    s3-kms: objects encrypted with SSE-KMS, whose ETags are not MD5s of their content.
    """
    if request.param == "local":
        bucket = LocalBucket(tmp_path / "bucket")
    else:
        request.getfixturevalue("aws")
        if request.param == "s3-kms":
            request.getfixturevalue("kms_etags")
        encryption = "aws:kms" if request.param == "s3-kms" else "AES256"
        bucket = S3Bucket.open(new_s3_bucket(encryption), "eu-west-1")
    for key, body in FOREIGN.items():
        bucket.put(key, body)
    return bucket


@pytest.fixture
def deploying_to(
    aws: S3Endpoint,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[MwaaLocal], Path]:
    """Make the command line deploy a project of its own to the bucket of a stand-in's
    environment (mwaa_local.py), and wait for it to parse; return the project's dags/, the
    test's to write."""

    def to(stand_in: MwaaLocal) -> Path:
        root = tmp_path / "project"
        (root / "bucket_contents" / "dags").mkdir(parents=True)
        (root / "pyproject.toml").write_bytes((SETTINGS.root / "pyproject.toml").read_bytes())
        monkeypatch.setattr("mwaa_deploy.config.PROJECT_ROOT", root)
        monkeypatch.chdir(root)
        monkeypatch.setenv("S3_BUCKET", stand_in.environment.bucket)
        monkeypatch.setenv("MWAA_ENVIRONMENT", stand_in.environment.name)
        monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", stand_in.url)
        monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
        monkeypatch.setenv("PARSE_GATE_SECONDS", "120")
        monkeypatch.setattr(parse_gate, "POLL_SECONDS", 0.5)
        return root / "bucket_contents" / "dags"

    return to
