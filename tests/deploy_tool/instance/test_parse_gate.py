"""The parse gate (DESIGN: a deploy to S3 waits for MWAA to parse what it wrote and fails on
import errors in its own files only) before or without a parse: against the MWAA stand-in
(mwaa_local.py) alone, or in front of an Airflow that never parses anything. What it does
against a real Airflow is in test_on_real_airflow.py.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mwaa_deploy.__main__ import main
from mwaa_deploy.local.mwaa_local import MwaaLocal
from mwaa_deploy.local.mwaa_local_env import Environment
from tests.deploy_tool.helpers import SETTINGS, new_s3_bucket
from tests.deploy_tool.instance.real_airflow import GOOD_DAG, NAME, deploy
from tests.deploy_tool.s3_endpoint import S3Endpoint


@pytest.fixture
def airless(
    aws: S3Endpoint,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
) -> Iterator[MwaaLocal]:
    """The stand-in with no Airflow behind it: for what the gate does before asking one."""
    environment = Environment(NAME, SETTINGS.airflow_version, new_s3_bucket(), SETTINGS.aws_region)
    stand_in = MwaaLocal(environment, airflow=None, dags_folder=None)
    yield stand_in
    stand_in.stop()


class AirflowThatParsesNothing:
    """In place of an Airflow: one whose DAGs folder is never parsed, so the gate waits."""

    def call(self, method: str, path: str, *_: object) -> tuple[int, object]:
        assert (method, path) in [("GET", "/version"), ("GET", "/importErrors"), ("GET", "/dags")]
        if path == "/version":  # the deploy's first question
            return 200, {"version": SETTINGS.airflow_version}
        return 200, {
            path.strip("/").replace("importErrors", "import_errors"): [],
            "total_entries": 0,
        }


@pytest.fixture
def unparsed(
    aws: S3Endpoint,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
    deploying_to: Callable[[MwaaLocal], Path],
) -> Iterator[tuple[MwaaLocal, Path]]:
    """The stand-in in front of an Airflow that parses nothing, and the dags/ of a project
    deploying there."""
    environment = Environment(NAME, SETTINGS.airflow_version, new_s3_bucket(), SETTINGS.aws_region)
    stand_in = MwaaLocal(environment, AirflowThatParsesNothing(), dags_folder=None)
    yield stand_in, deploying_to(stand_in)
    stand_in.stop()


@pytest.mark.parametrize("owner", ["DEV", "SBX_ann"])
def test_a_file_not_yet_parsed_within_the_bound_fails_the_deploy_naming_it(
    unparsed: tuple[MwaaLocal, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    owner: str,
) -> None:
    _, sources = unparsed
    (sources / "orders.py").write_text(GOOD_DAG)
    monkeypatch.setenv("PARSE_GATE_SECONDS", "3")
    if owner != "DEV":  # a story branch's sandbox, named by hand
        monkeypatch.setenv("SANDBOX", owner.removeprefix("SBX_"))
    code, _, err = deploy("DEV", capsys)
    assert code == 1
    assert err.splitlines() == [
        f"dags/{owner}_orders.py: not yet parsed within 3 s of the deploy, and the instance"
        " lists no DAG from it",
        f"Parse gate: {owner} is deployed, but {NAME} has not yet parsed 1 of its 1 DAG file(s)"
        " (above): see them in the Airflow UI once it has, or deploy again with a larger"
        " PARSE_GATE_SECONDS.",
    ]


def test_ctrl_c_while_waiting_stops_at_once_saying_the_files_are_deployed(
    unparsed: tuple[MwaaLocal, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stand_in, sources = unparsed
    (sources / "orders.py").write_text(GOOD_DAG)
    monkeypatch.setenv("PARSE_GATE_SECONDS", "20")  # a missed Ctrl-C fails in 20 s, not 120

    def press_ctrl_c_once_the_gate_asks() -> None:
        # The deploy asks once before it uploads, the gate after.
        while stand_in.calls.count("InvokeRestApi") < 2:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c_once_the_gate_asks, daemon=True).start()
    started = time.monotonic()
    code, out, err = deploy("DEV", capsys)
    assert time.monotonic() - started < 15
    assert code == 130
    assert "DEV deployed: " in out
    assert err == (
        f"Interrupted while waiting for {NAME} to parse: DEV is deployed, its import errors"
        " unchecked; see the Airflow UI.\n"
    )


@pytest.mark.parametrize(
    ("switch", "last_line"),
    [
        (
            "PARSE_GATE_SECONDS=0",
            "Parse gate skipped: its bound, PARSE_GATE_SECONDS or parse_gate_seconds, is 0.",
        ),
        (
            "parse_gate_seconds = 0",
            "Parse gate skipped: its bound, PARSE_GATE_SECONDS or parse_gate_seconds, is 0.",
        ),
        (
            "MWAA_ENVIRONMENT=",
            "DEV deployed: 1 uploaded (1 new, 0 changed), 0 deleted, 0 unchanged.",
        ),
    ],
    ids=["variable", "setting", "no-environment"],
)
def test_the_gate_is_skipped_by_its_switch_and_without_an_environment(
    airless: MwaaLocal,
    deploying_to: Callable[[MwaaLocal], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    switch: str,
    last_line: str,
) -> None:
    sources = deploying_to(airless)
    (sources / "orders.py").write_text(GOOD_DAG)
    if switch.startswith("parse_gate_seconds"):
        monkeypatch.delenv("PARSE_GATE_SECONDS")
        pyproject = Path("pyproject.toml")
        pyproject.write_text(pyproject.read_text().replace("parse_gate_seconds = 600", switch))
    else:
        monkeypatch.setenv(*switch.split("="))
    code, out, _ = deploy("DEV", capsys)
    assert code == 0 and out.splitlines()[-1] == last_line
    assert airless.calls == []


def test_an_environment_the_gate_cannot_ask_is_one_line_before_anything_is_deployed(
    airless: MwaaLocal,
    deploying_to: Callable[[MwaaLocal], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (deploying_to(airless) / "orders.py").write_text(GOOD_DAG)
    monkeypatch.setenv("MWAA_ENVIRONMENT", "someone-else")
    code, out, err = deploy("DEV", capsys)
    assert code == 1 and "DEV deployed" not in out
    assert err == (
        "Cannot ask the MWAA environment someone-else before deploying DEV: there is no MWAA"
        " environment someone-else in eu-west-1: check MWAA_ENVIRONMENT (or mwaa_environment)"
        " and AWS_REGION. Nothing was deployed; PARSE_GATE_SECONDS=0 deploys without asking"
        " the environment.\n"
    )


@pytest.mark.usefixtures("aws")
def test_mwaa_local_without_airflow_local_says_to_start_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as one, socket.socket() as other:  # two free ports, not one twice
        one.bind(("127.0.0.1", 0))
        other.bind(("127.0.0.1", 0))
        port, nothing_there = (str(probe.getsockname()[1]) for probe in (one, other))
    assert main(["mwaa-local", "--port", port, "--airflow-port", nothing_there]) == 1
    assert capsys.readouterr().err == (
        "no Airflow of this project answers on port"
        f" {nothing_there}: start `make airflow-local MWAA_LOCAL=1 PORT={nothing_there}` first"
        " (in another terminal), or name its port with AIRFLOW_PORT=...\n"
    )
