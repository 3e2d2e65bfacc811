"""The template's tests' fixtures; other shared code is in tests/helpers.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

# Tests that run the baked project's DAGs in real Airflow, or bake and make several times:
# the longest after the real Airflows, so that they start first and the run ends on short ones.
SLOW_FILES = (
    "test_mwaa_parity.py",
    "test_dag_integrity_rules.py",
    "test_platform_policy.py",
    "test_adopt_corpus.py",
    "test_baked_project.py",
    "test_task_roles.py",
    "test_local_stand_ins.py",
    "test_sync_properties.py",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "starts_airflow: the test starts a real Airflow (make airflow-local)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that start a real Airflow first, then the slow files, then the rest.

    xdist (`--dist worksteal`) gives each of the two workers a half of this order to start
    with and lets the one that is done take tests from the end of the other's queue: the
    Airflows, all at the start of the first half, run one after the other on one worker
    (two Airflows at once on two cores make airflow-local's DAG runs miss their time),
    while the other worker takes the rest, and the run ends on short tests, whichever
    worker they end up on."""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("starts_airflow"):
            return 0
        return 1 if item.path.name in SLOW_FILES else 2

    items.sort(key=rank)


@pytest.fixture
def output(tmp_path: Path) -> Path:
    return tmp_path / "baked"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[dict[str, str]]:
    """moto's S3 server on loopback, and the variables that point the AWS SDK at it and
    name no MWAA environment (none reads it: deploys wait for no parse)."""
    # werkzeug, under moto, logs a line a request: hundreds in a failing test's output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "eu-west-1",
        "MWAA_ENVIRONMENT": "",
    }
    server.stop()
