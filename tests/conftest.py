"""The template's tests' fixtures; other shared code is in tests/helpers.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """airflow-local's end-to-end runs of a real Airflow first: the longest tests start
    while the others fill the other worker, so that both finish at about the same time. The
    parse gate's real Airflows last (xdist gives each worker a half of this order to start
    with): two Airflows at once on two cores make airflow-local's DAG runs miss their time."""
    first, last = "test_airflow_local.py", "test_parse_gate.py"
    items.sort(key=lambda item: (item.path.name != first) + (item.path.name == last))


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
