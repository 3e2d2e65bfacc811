"""The parse gate against a real Airflow (DESIGN: a deploy to S3 waits for MWAA to parse what
it wrote and fails on import errors in its own files only), on the oldest and the newest
Airflow, through the MWAA stand-in (mwaa_local.py) that the SDK reaches as it reaches AWS.

One test a version runs a real Airflow (`make airflow-local MWAA_LOCAL=1` of a baked project;
the stand-in copies the bucket's dags/ into its DAGs folder, as MWAA does), so that each starts
once whichever test worker runs it. What happens before or without a parse is tested
against the stand-in alone, or in front of an Airflow that never parses anything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mwaa_deploy import config
from mwaa_deploy.__main__ import main
from mwaa_deploy.local.airflow_api import AirflowApi
from mwaa_deploy.local.airflow_local import admin_password, dags_folder
from mwaa_deploy.local.mwaa_local import MwaaLocal
from mwaa_deploy.local.mwaa_local_env import Environment
from tests.deploy_tool.helpers import SETTINGS, new_s3_bucket
from tests.deploy_tool.s3_endpoint import S3Endpoint
from tests.helpers import NEWEST, OLDEST, VENVS, bake, user_environment

STARTUP_SECONDS = 300
NAME = SETTINGS.mwaa_environment

# A DAG file for either Airflow, in the project's convention: its one task gets its pool
# and priority from the platform's policy, which the gate reads back.
GOOD_DAG = """\
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

DEV = True
dev_prod_flag = "DEV" if DEV else "PROD"

with DAG(f"{dev_prod_flag}_orders", schedule=None, start_date=pendulum.datetime(2025, 1, 1)):
    EmptyOperator(task_id=f"{dev_prod_flag}_noop")
"""
BROKEN_DAG = GOOD_DAG.replace("import pendulum\n", "import pendulum\nimport no_such_module\n")


@pytest.fixture(params=[NEWEST, OLDEST])
def instance(
    request: pytest.FixtureRequest,
    s3_endpoint: S3Endpoint,
    tmp_path: Path,
) -> Iterator[MwaaLocal]:
    """`make airflow-local MWAA_LOCAL=1` of a project baked for the version, and the stand-in
    before it, copying a bucket of its own into that Airflow's DAGs folder."""
    project = bake(tmp_path / "airflow", airflow_version=request.param)
    with airflow_local_behind_stand_in(project, request.param, s3_endpoint) as stand_in:
        yield stand_in


@contextlib.contextmanager
def airflow_local_behind_stand_in(
    project: Path, version: str, s3_endpoint: S3Endpoint
) -> Iterator[MwaaLocal]:
    """The project's `make airflow-local MWAA_LOCAL=1`, and the MWAA stand-in before it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = project / "airflow-local.out"
    with open(log, "w") as output:
        airflow = subprocess.Popen(
            ["make", "airflow-local", f"VENV={VENVS / f'airflow-{version}'}", f"PORT={port}"],
            cwd=project,
            env=user_environment() | {"MWAA_LOCAL": "1"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, to stop whole
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while "Press Ctrl-C" not in log.read_text():
            assert airflow.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        password = admin_password(config.load(project))
        assert password, log.read_text()
        with pytest.MonkeyPatch.context() as environment:
            environment.setenv("AWS_ENDPOINT_URL", s3_endpoint.url)
            environment.setenv("AWS_ACCESS_KEY_ID", "testing")
            environment.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            stand_in = MwaaLocal(
                Environment(NAME, version, new_s3_bucket(), SETTINGS.aws_region),
                AirflowApi(f"http://127.0.0.1:{port}", version, password),
                dags_folder(config.load(project), mwaa_local=True),
            )
        yield stand_in
        stand_in.stop()
    finally:
        # Ctrl-C, as in its terminal: airflow-local then stops Airflow, which runs in a
        # process group of its own that no signal to make's group reaches.
        os.killpg(airflow.pid, signal.SIGINT)
        airflow.wait()


@pytest.fixture
def airless(
    aws: S3Endpoint,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
) -> Iterator[MwaaLocal]:
    """The stand-in with no Airflow behind it: for what the gate does before asking one."""
    environment = Environment(NAME, SETTINGS.airflow_version, new_s3_bucket(), SETTINGS.aws_region)
    stand_in = MwaaLocal(environment, airflow=None, dags_folder=None)
    yield stand_in
    stand_in.stop()


@pytest.fixture
def sources(instance: MwaaLocal, deploying_to: Callable[[MwaaLocal], Path]) -> Path:
    """The dags/ of a project that deploys to the real Airflow's bucket."""
    return deploying_to(instance)


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


def deploy(env: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`make deploy-<env>`: its exit status, stdout and stderr."""
    code = main(["deploy", env, *(["--force"] if env == "PROD" else [])])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.starts_airflow
def test_an_import_error_fails_its_own_environments_deploy_or_rollback_only_and_a_fix_passes(
    sources: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (sources / "orders.py").write_text(GOOD_DAG)
    code, out, _ = deploy("PROD", capsys)
    assert code == 0
    assert out.splitlines()[-2:] == [
        f"{NAME} parsed PROD's 1 DAG file(s) without import errors; DAGs listed: PROD_orders.",
        f"{NAME} runs PROD's 1 task(s) in PROD's pool and priority.",
    ]
    # Before it waits, the PROD deploy sets DEV's pool through the same API (test_pools.py):
    # as airflow-local created it when it started.
    assert "Pool DEV_pool: 3 slots, as set." in out.splitlines()

    (sources / "orders.py").write_text(BROKEN_DAG)
    code, out, err = deploy("DEV", capsys)
    assert code == 1
    assert "DEV deployed: 1 uploaded (1 new, 0 changed), 0 deleted, 0 unchanged." in out
    assert err.splitlines() == [
        "dags/DEV_orders.py:2: ModuleNotFoundError: No module named 'no_such_module'",
        f"Parse gate: DEV is deployed, but {NAME} did not import 1 of its 1 DAG file(s)"
        " (above); fix them and deploy again.",
    ]

    # A redeploy that writes nothing has nothing to wait for.
    (sources / "orders.py").write_text(GOOD_DAG)
    code, out, _ = deploy("PROD", capsys)
    last_two = out.splitlines()[-2:]
    assert code == 0 and last_two[0].startswith("PROD deployed: 0 uploaded"), out
    assert last_two[1] == "Pool DEV_pool: 3 slots, as set."

    # PROD, deployed from a good version while DEV holds the broken one, still passes; its
    # deploy resizes DEV's pool to a new setting.
    (sources / "orders.py").write_text(GOOD_DAG + "# reviewed\n")
    monkeypatch.setenv("DEV_POOL_SLOTS", "4")
    code, out, err = deploy("PROD", capsys)
    assert code == 0, err
    assert "Pool DEV_pool: resized from 3 to 4 slots." in out
    assert out.splitlines()[-2] == (
        f"{NAME} parsed PROD's 1 DAG file(s) without import errors; DAGs listed: PROD_orders."
        " 1 import error(s) in other files, not this deploy's."
    )

    code, out, _ = deploy("DEV", capsys)
    assert code == 0
    assert out.splitlines()[-2:] == [
        f"{NAME} parsed DEV's 1 DAG file(s) without import errors; DAGs listed: DEV_orders.",
        f"{NAME} runs DEV's 1 task(s) in DEV's pool and priority.",
    ]

    # A rollback is gated like a deploy: back to the broken DEV deploy, then undone.
    assert main(["rollback", "DEV"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "dags/DEV_orders.py:2: ModuleNotFoundError: No module named 'no_such_module'"
    )
    assert main(["rollback", "DEV"]) == 0
    assert capsys.readouterr().out.splitlines()[-2] == (
        f"{NAME} parsed DEV's 1 DAG file(s) without import errors; DAGs listed: DEV_orders."
    )


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
