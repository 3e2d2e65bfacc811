"""The template's tests' fixtures; other shared code is in tests/helpers.py."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from tests import airflow_lanes
from tests.airflow_local import StartedTwice, start_twice

# Tests that run the baked project's DAGs in real Airflow, or bake and make several times:
# they start first, so that the run ends on short tests, whichever worker is free.
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
        "markers",
        "starts_airflow: the test starts a real Airflow (make airflow-local); it belongs in a"
        " lane of tests/airflow_lanes.py",
    )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers() -> int | None:
    """`-n auto`: a worker per core and one per lane (airflow_lanes.py), unless
    PYTEST_XDIST_AUTO_NUM_WORKERS says otherwise."""
    return None if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") else airflow_lanes.workers()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> airflow_lanes.AirflowLanes:
    return airflow_lanes.AirflowLanes(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow files first; a test that starts Airflow must be in a lane."""
    for item in items:
        if item.get_closest_marker("starts_airflow") and not airflow_lanes.in_a_lane(item.nodeid):
            raise pytest.UsageError(
                f"{item.nodeid} starts Airflow: add it to a lane of tests/airflow_lanes.py"
            )
    items.sort(key=lambda item: item.path.name not in SLOW_FILES)


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


@pytest.fixture(scope="session")
def started_twice(tmp_path_factory: pytest.TempPathFactory) -> StartedTwice:
    """A project on the oldest Airflow, started and stopped twice, for test_airflow_local.py
    and test_airflow_local_starts.py (both in one lane of airflow_lanes.py, so one worker
    starts it once)."""
    return start_twice(tmp_path_factory.mktemp("started-twice"))
