"""The parse gate knows the parse it saw is of the bytes it deployed (DESIGN: "The live
instance"), when MWAA's copy of the bucket lags behind the deploy: an Airflow behind the
MWAA stand-in that keeps parsing the file a deploy replaced until its copy arrives, as
MWAA's does. With a real Airflow, in test_on_real_airflow.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mwaa_deploy.local.mwaa_local import MwaaLocal
from mwaa_deploy.local.mwaa_local_env import Environment
from tests.deploy_tool.helpers import SETTINGS, new_s3_bucket
from tests.deploy_tool.instance.real_airflow import BROKEN_DAG, GOOD_DAG, NAME, deploy
from tests.deploy_tool.s3_endpoint import S3Endpoint

FILE = "DEV_orders.py"
PREVIOUS = GOOD_DAG.replace("schedule=None", 'schedule="@daily"')
BROKEN_TRACE = (
    "Traceback (most recent call last):\n"
    f'  File "/usr/local/airflow/dags/{FILE}", line 2, in <module>\n'
    "    import no_such_module\n"
    "ModuleNotFoundError: No module named 'no_such_module'\n"
)


class LaggingAirflow:
    """An Airflow (3's API) that parses its DAGs folder all the time, whose folder holds
    `previous` until `copied_at` (time.monotonic()), then `deployed`."""

    def __init__(self, previous: str, deployed: str) -> None:
        self.previous, self.deployed = previous, deployed
        self.copied_at = float("inf")

    def source(self) -> str:
        return self.deployed if time.monotonic() >= self.copied_at else self.previous

    def call(self, method: str, path: str, *_: object) -> tuple[int, object]:
        assert method == "GET", path
        now = datetime.now(UTC).isoformat()
        broken = "no_such_module" in self.source()
        if path == "/version":
            return 200, {"version": SETTINGS.airflow_version}
        if path == "/importErrors":
            error = {"filename": FILE, "timestamp": now, "stack_trace": BROKEN_TRACE}
            return 200, {"import_errors": [error] if broken else [], "total_entries": int(broken)}
        if path == "/dags":
            dag = {"dag_id": "DEV_orders", "relative_fileloc": FILE, "last_parsed_time": now}
            dag["is_stale"] = False
            return 200, {"dags": [] if broken else [dag], "total_entries": 0 if broken else 1}
        if path == "/dagSources/DEV_orders":
            return 200, {"dag_id": "DEV_orders", "content": self.source()}
        if path == "/dags/DEV_orders/tasks":  # the policy's read-back, as in force
            task = {"task_id": "DEV_noop", "pool": "DEV_pool", "priority_weight": 1}
            return 200, {"tasks": [task], "total_entries": 1}
        raise AssertionError(path)


@pytest.fixture
def lagging(
    aws: S3Endpoint,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
    deploying_to: Callable[[MwaaLocal], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str, str], tuple[LaggingAirflow, Path]]]:
    """The stand-in in front of a LaggingAirflow, and the dags/ of a project deploying there."""
    monkeypatch.setenv("PARSE_GATE_SECONDS", "20")
    stand_ins = []

    def make(previous: str, deployed: str) -> tuple[LaggingAirflow, Path]:
        airflow = LaggingAirflow(previous, deployed)
        environment = Environment(
            NAME, SETTINGS.airflow_version, new_s3_bucket(), SETTINGS.aws_region
        )
        stand_ins.append(MwaaLocal(environment, airflow, dags_folder=None))
        return airflow, deploying_to(stand_ins[-1])

    yield make
    for stand_in in stand_ins:
        stand_in.stop()


def test_the_gate_waits_for_the_parse_of_the_deployed_bytes_and_ends_within_seconds_of_it(
    lagging: Callable[[str, str], tuple[LaggingAirflow, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    airflow, sources = lagging(PREVIOUS, GOOD_DAG)
    (sources / "orders.py").write_text(GOOD_DAG)
    # MWAA's copy arrives 4 s after the deploy starts, later than the copy time the gate
    # once assumed (BUCKET_COPY_SECONDS, 2 s here, after the first answer's second: 3 s at
    # most); meanwhile Airflow parses the previous file.
    airflow.copied_at = time.monotonic() + 4
    code, out, err = deploy("DEV", capsys)
    ended = time.monotonic()
    assert code == 0, err
    parsed = f"{NAME} parsed DEV's 1 DAG file(s) without import errors; DAGs listed: DEV_orders."
    assert parsed in out.splitlines()
    assert airflow.copied_at <= ended < airflow.copied_at + 3


def test_a_file_whose_previous_version_the_instance_still_serves_is_not_yet_parsed(
    lagging: Callable[[str, str], tuple[LaggingAirflow, Path]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, sources = lagging(PREVIOUS, GOOD_DAG)  # the copy never arrives
    (sources / "orders.py").write_text(GOOD_DAG)
    monkeypatch.setenv("PARSE_GATE_SECONDS", "4")
    code, _, err = deploy("DEV", capsys)
    assert code == 1
    assert err.splitlines() == [
        f"dags/{FILE}: not yet parsed within 4 s of the deploy: the instance still serves its"
        " previous version",
        f"Parse gate: DEV is deployed, but {NAME} has not yet parsed 1 of its 1 DAG file(s)"
        " (above): see them in the Airflow UI once it has, or deploy again with a larger"
        " PARSE_GATE_SECONDS.",
    ]


def test_an_import_error_of_the_file_the_deploy_replaced_is_not_blamed_on_the_deployed_one(
    lagging: Callable[[str, str], tuple[LaggingAirflow, Path]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, sources = lagging(BROKEN_DAG, GOOD_DAG)  # the fix is deployed; the copy never arrives
    (sources / "orders.py").write_text(GOOD_DAG)
    monkeypatch.setenv("PARSE_GATE_SECONDS", "4")
    code, _, err = deploy("DEV", capsys)
    assert code == 1
    assert err.splitlines()[0] == (
        f"dags/{FILE}: not yet parsed within 4 s of the deploy, and the instance lists no DAG"
        " from it"
    )


def test_an_import_error_that_quotes_the_deployed_bytes_fails_the_deploy_at_once(
    lagging: Callable[[str, str], tuple[LaggingAirflow, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    airflow, sources = lagging(BROKEN_DAG, BROKEN_DAG + "# still broken\n")
    (sources / "orders.py").write_text(BROKEN_DAG + "# still broken\n")
    airflow.copied_at = time.monotonic()
    started = time.monotonic()
    code, _, err = deploy("DEV", capsys)
    assert time.monotonic() - started < 5
    assert code == 1
    assert err.splitlines() == [
        f"dags/{FILE}:2: ModuleNotFoundError: No module named 'no_such_module'",
        f"Parse gate: DEV is deployed, but {NAME} did not import 1 of its 1 DAG file(s)"
        " (above); fix them and deploy again.",
    ]


def test_behind_mwaa_local_a_deploy_that_changes_a_helper_waits_for_its_copy_not_mwaas(
    lagging: Callable[[str, str], tuple[LaggingAirflow, Path]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the gate cannot tell which bytes a parse read (the deploy wrote a helper
    module, which any DAG file may import), it waits for a parse later than the bucket's
    next copy: mwaa-local says in its answers that it copies every 2 s, so the deploy
    passes well within PARSE_GATE_SECONDS (20 s here), where MWAA's 30 s would not."""
    airflow, sources = lagging(GOOD_DAG, GOOD_DAG)
    airflow.copied_at = time.monotonic()
    monkeypatch.setenv("PARSE_GATE_SECONDS", "20")
    (sources / "orders.py").write_text(GOOD_DAG)
    (sources / "common").mkdir()
    (sources / "common" / "__init__.py").write_text("")
    (sources / "common" / "names.py").write_text('TABLE = "orders"\n')

    code, out, err = deploy("DEV", capsys)

    assert code == 0, err
    assert f"{NAME} parsed DEV's 1 DAG file(s) without import errors" in out
