"""Shared fixtures: a throwaway Airflow home, and both environments deployed side by side."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from mwaa_deploy import config, sync
from mwaa_deploy.stamp import ENVIRONMENTS, stamp

# Airflow reads its settings when first imported: point it at a scratch home, with no
# example DAGs and no database needed for parsing.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"

SETTINGS = config.load()


@pytest.fixture(scope="session")
def deployed_dags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `dags/` folder of a local bucket holding the DEV and PROD deploys, as on MWAA."""
    root = tmp_path_factory.mktemp("deployed")
    bucket = sync.LocalBucket(root / "bucket")
    for env in ENVIRONMENTS:
        stamp(SETTINGS.sources, root / "build", env)
        desired = sync.read_build(root / "build", env)
        sync.apply(bucket, sync.plan(bucket, env, desired))
    dags = bucket.root / "dags"
    # MWAA puts the dags folder on sys.path, which is how DAG files import their helpers.
    sys.path.insert(0, str(dags))
    return dags


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 endpoint over HTTP on loopback (moto's server), for the whole test run."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the AWS SDK at the local endpoint, the way a user would: its own variables."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    return s3_endpoint
