"""A deploy that asks the MWAA environment (DESIGN: "The live instance") is held to its bound
whatever the instance does, and says in one line what it deployed and what the instance
answered: an instance that never answers, a closed port, MWAA's 5xx, an unknown environment,
an endpoint the SDK cannot reach without AWS_DISABLE_HOST_PREFIX_INJECTION, and answers that
are not Airflow's.

The instance is an HTTP server on loopback that the SDK reaches through AWS_ENDPOINT_URL_MWAA,
as it reaches AWS: it answers InvokeRestApi by the Airflow path asked, as the test tells it.
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mwaa_deploy.__main__ import main
from mwaa_deploy.instance import live_instance
from mwaa_deploy.local.mwaa_local_env import Environment
from tests.deploy_tool.helpers import SETTINGS, new_s3_bucket
from tests.deploy_tool.s3_endpoint import S3Endpoint
from tests.helpers import NEWEST, OLDEST, VENVS, bake, user_environment

NAME = SETTINGS.mwaa_environment
DAG = "DEV = True\n"
# PARSE_GATE_SECONDS in these tests: a loopback server answers within milliseconds, and the
# tests that hang wait this out.
BOUND = 1
# Well beyond the bound, far below what an unbounded call takes (minutes).
RETURNS_WITHIN = 30

# An answer: MWAA's HTTP status, its body, and its error type (x-amzn-ErrorType).
Answer = tuple[int, bytes, str]
HANG: Answer = (0, b"", "")  # no answer at all, until the test ends


def airflow(status: int, document: Any) -> Answer:
    """MWAA's answer carrying Airflow's, as InvokeRestApi wraps it."""
    wrapped = json.dumps({"RestApiStatusCode": status, "RestApiResponse": document}).encode()
    if status < 400:
        return 200, wrapped, ""
    kind = "RestApiClientException" if status < 500 else "RestApiServerException"
    return 400, wrapped, kind


VERSION = airflow(200, {"version": SETTINGS.airflow_version})
NO_IMPORT_ERRORS = airflow(200, {"import_errors": [], "total_entries": 0})


class Instance:
    """MWAA's API for one environment, answering each Airflow path as `answers` says (any
    other: HANG), and every call the same way if `everything` is given."""

    def __init__(self, answers: dict[str, Answer], everything: Answer | None = None) -> None:
        self.environment = Environment(NAME, SETTINGS.airflow_version, new_s3_bucket(), "eu-west-1")
        self.answers, self.everything = answers, everything
        self.asked: list[str] = []  # "METHOD path" of each InvokeRestApi
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # Polled for `stop` every 0.05 s, not socketserver's 0.5 s that each test waits out.
        serving = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        serving.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        instance = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                instance.asked.append(f"{request['Method']} {request['Path']}")
                status, body, kind = instance.everything or instance.answers.get(
                    request["Path"], HANG
                )
                if status == 0:
                    instance._stopping.wait()
                    return
                self.send_response(status)
                json_body = body[:1] in (b"{", b"[")
                self.send_header("Content-Type", "application/json" if json_body else "text/html")
                self.send_header("Content-Length", str(len(body)))
                if kind:
                    self.send_header("x-amzn-ErrorType", kind)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


@pytest.fixture
def instance(
    aws: S3Endpoint,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
    deploying_to: Callable[[Any], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Instance]]:
    """An instance answering as told, and a project holding one DAG file that deploys to
    its bucket and asks it, within BOUND seconds."""
    started: list[Instance] = []

    def answering(answers: dict[str, Answer], everything: Answer | None = None) -> Instance:
        started.append(Instance(answers, everything))
        (deploying_to(started[-1]) / "orders.py").write_text(DAG)
        monkeypatch.setenv("PARSE_GATE_SECONDS", str(BOUND))
        return started[-1]

    yield answering
    for each in started:
        each.stop()


# What a PROD deploy whose pool step failed says of the parse gate after it.
GATE_NOT_RUN = (
    ". The parse gate did not run either, so PROD's import errors are unchecked: see them"
    " in the Airflow UI, and once the cause above is fixed, run make deploy-prod again to"
    " set the pool"
)


def deploy(env: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str, float]:
    """`make deploy-<env>`: its exit status, stdout, stderr, and how long it took."""
    started = time.monotonic()
    code = main(["deploy", env, *(["--force"] if env == "PROD" else [])])
    took = time.monotonic() - started
    out, err = capsys.readouterr()
    return code, out, err, took


def uploads(aws: S3Endpoint) -> int:
    return aws.count(["put"])


@pytest.mark.parametrize("env", ["DEV", "PROD"])
def test_an_instance_that_never_answers_stops_the_deploy_within_its_bound_before_uploading(
    instance: Callable[..., Instance],
    aws: S3Endpoint,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: str,
) -> None:
    instance({}, everything=HANG)
    monkeypatch.setattr(live_instance, "STILL_WAITING_EVERY", BOUND / 4)
    code, out, err, took = deploy(env, capsys)
    assert code == 1 and took < RETURNS_WITHIN, (took, err)
    [line] = err.splitlines()
    assert line.startswith(f"Cannot ask the MWAA environment {NAME} before deploying {env}: ")
    assert f"did not answer within {BOUND} s" in line
    assert line.endswith(
        "Nothing was deployed; PARSE_GATE_SECONDS=0 deploys without asking the environment."
    )
    assert "  still waiting for an answer from" in out
    assert uploads(aws) == 0


@pytest.mark.parametrize(
    ("env", "asked_path", "says"),
    [
        ("DEV", "/importErrors", "Parse gate: DEV is deployed, its import errors unchecked: "),
        ("PROD", "/pools/DEV_pool", "PROD is deployed, but DEV_pool is not set: "),
    ],
    ids=["parse-gate", "pool"],
)
def test_an_instance_that_stops_answering_after_the_upload_is_given_up_at_the_bound(
    instance: Callable[..., Instance],
    capsys: pytest.CaptureFixture[str],
    env: str,
    asked_path: str,
    says: str,
) -> None:
    asked = instance({"/version": VERSION})
    code, out, err, took = deploy(env, capsys)
    assert code == 1 and took < RETURNS_WITHIN, (took, err)
    assert f"{env} deployed: 1 uploaded" in out
    assert f"GET {asked_path}" in asked.asked
    [line] = err.splitlines()
    assert line.startswith(says) and f"did not answer within {BOUND} s" in line, line
    if env == "PROD":  # the gate comes after the pool: the line says it did not run
        assert "GET /importErrors" not in asked.asked
        assert line.endswith(GATE_NOT_RUN), line


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(
            (500, b'{"message": "oops"}', "InternalServerException"),
            "MWAA answered 500 (InternalServerException: oops), a fault on its side: try again"
            " in a few minutes",
            id="5xx",
        ),
        pytest.param(
            (404, b'{"message": "no such environment"}', "ResourceNotFoundException"),
            f"there is no MWAA environment {NAME} in eu-west-1: check MWAA_ENVIRONMENT (or"
            " mwaa_environment) and AWS_REGION",
            id="unknown-environment",
        ),
        pytest.param(
            (403, b'{"Message": "not authorized"}', "AccessDeniedException"),
            "access denied (AccessDeniedException: not authorized): the deploy role needs"
            " airflow:InvokeRestApi on the environment (iam/deploy-roles.yaml)",
            id="access-denied",
        ),
    ],
)
def test_each_reason_the_instance_cannot_be_asked_is_its_own_line_before_uploading(
    instance: Callable[..., Instance],
    aws: S3Endpoint,
    capsys: pytest.CaptureFixture[str],
    answer: Answer,
    reason: str,
) -> None:
    instance({}, everything=answer)
    code, _, err, took = deploy("DEV", capsys)
    assert code == 1 and took < RETURNS_WITHIN
    assert err.splitlines() == [
        f"Cannot ask the MWAA environment {NAME} before deploying DEV: {reason}. Nothing was"
        " deployed; PARSE_GATE_SECONDS=0 deploys without asking the environment."
    ]
    assert uploads(aws) == 0


def test_an_instance_slower_than_the_clients_timeout_is_its_own_line_before_uploading(
    instance: Callable[..., Instance],
    aws: S3Endpoint,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = instance({}, everything=HANG)
    monkeypatch.setenv("PARSE_GATE_SECONDS", "600")  # the client's timeout comes first
    monkeypatch.setattr(live_instance, "READ_TIMEOUT_SECONDS", 0.3)
    code, _, err, took = deploy("DEV", capsys)
    assert code == 1 and took < RETURNS_WITHIN
    assert err.splitlines() == [
        f"Cannot ask the MWAA environment {NAME} before deploying DEV: {asked.url} did not"
        " answer in time, nor when asked again: try again later. Nothing was deployed;"
        " PARSE_GATE_SECONDS=0 deploys without asking the environment."
    ]
    assert len(asked.asked) > 1 and uploads(aws) == 0


def test_a_closed_port_is_its_own_line_before_uploading(
    instance: Callable[..., Instance],
    aws: S3Endpoint,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    instance({})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", closed)
    code, _, err, _ = deploy("DEV", capsys)
    assert code == 1
    assert err.splitlines() == [
        f"Cannot ask the MWAA environment {NAME} before deploying DEV: nothing answers at"
        f" {closed} (connection refused): check AWS_ENDPOINT_URL_MWAA. Nothing was deployed;"
        " PARSE_GATE_SECONDS=0 deploys without asking the environment."
    ]
    assert uploads(aws) == 0


def test_a_local_endpoint_without_disabling_the_host_prefix_says_to_disable_it(
    instance: Callable[..., Instance],
    aws: S3Endpoint,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = instance({"/version": VERSION})
    monkeypatch.delenv("AWS_DISABLE_HOST_PREFIX_INJECTION")
    code, _, err, _ = deploy("DEV", capsys)
    assert code == 1
    assert err.splitlines() == [
        f"Cannot ask the MWAA environment {NAME} before deploying DEV: the AWS SDK asks"
        f" env.{asked.url.removeprefix('http://')}, MWAA's host prefix before the host of"
        " AWS_ENDPOINT_URL_MWAA, and cannot resolve it: set AWS_DISABLE_HOST_PREFIX_INJECTION=true"
        " for an endpoint of your own. Nothing was deployed; PARSE_GATE_SECONDS=0 deploys"
        " without asking the environment."
    ]
    assert uploads(aws) == 0


@pytest.mark.parametrize(
    ("answers", "answered"),
    [
        pytest.param(
            {"/importErrors": (200, b"<html>Service Unavailable</html>", "")},
            "answered GET /importErrors with what is not MWAA's answer (HTTP 200, text/html)",
            id="not-json",
        ),
        pytest.param(
            {"/importErrors": airflow(200, "Service Unavailable")},
            'answered GET /importErrors with "Service Unavailable" (not Airflow\'s answer)',
            id="text-body",
        ),
        pytest.param(
            {
                "/importErrors": airflow(
                    200,
                    {
                        "import_errors": [{"filename": "DEV_orders.py", "stack_trace": "x"}],
                        "total_entries": 1,
                    },
                )
            },
            'answered GET /importErrors with {"filename": "DEV_orders.py", "stack_trace": "x"}'
            " (no 'timestamp')",
            id="import-error-without-timestamp",
        ),
        pytest.param(
            {
                "/importErrors": NO_IMPORT_ERRORS,
                "/dags": airflow(200, {"dags": [{"dag_id": "DEV_orders"}], "total_entries": 1}),
            },
            'answered GET /dags with {"dag_id": "DEV_orders"} (no \'fileloc\')',
            id="dag-without-file",
        ),
    ],
)
def test_an_answer_that_is_not_airflows_is_one_line_saying_what_was_deployed_and_what_came(
    instance: Callable[..., Instance],
    capsys: pytest.CaptureFixture[str],
    answers: dict[str, Answer],
    answered: str,
) -> None:
    instance({"/version": VERSION, **answers})
    code, out, err, took = deploy("DEV", capsys)
    assert code == 1 and took < RETURNS_WITHIN
    assert "DEV deployed: 1 uploaded (1 new, 0 changed), 0 deleted, 0 unchanged." in out
    assert err.splitlines() == [
        f"Parse gate: DEV is deployed, its import errors unchecked: {NAME} {answered}. See"
        " them in the Airflow UI; PARSE_GATE_SECONDS=0 skips the gate."
    ]


@pytest.mark.parametrize(
    "pool",
    [
        pytest.param(airflow(200, "DEV_pool"), id="text-body"),
        pytest.param(airflow(200, {"name": "DEV_pool", "slots": "3"}), id="slots-as-text"),
    ],
)
def test_a_pool_answer_that_is_not_a_pool_is_one_line_saying_prod_is_deployed(
    instance: Callable[..., Instance],
    capsys: pytest.CaptureFixture[str],
    pool: Answer,
) -> None:
    instance({"/version": VERSION, "/pools/DEV_pool": pool})
    code, out, err, _ = deploy("PROD", capsys)
    assert code == 1 and "PROD deployed: 1 uploaded" in out
    answered = json.dumps(json.loads(pool[1])["RestApiResponse"])
    assert err.splitlines() == [
        f"PROD is deployed, but DEV_pool is not set: Airflow answered GET /pools/DEV_pool with"
        f" {answered}, not a pool; set it under Admin > Pools{GATE_NOT_RUN}"
    ]


def test_a_bound_of_zero_deploys_prod_without_asking_the_instance(
    instance: Callable[..., Instance],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = instance({}, everything=HANG)
    monkeypatch.setenv("PARSE_GATE_SECONDS", "0")
    code, out, err, took = deploy("PROD", capsys)
    assert (code, err) == (0, "") and took < RETURNS_WITHIN
    assert out.splitlines()[-2:] == [
        "Pool DEV_pool: not checked, as the bound on asking MWAA (PARSE_GATE_SECONDS or"
        " parse_gate_seconds) is 0.",
        "Parse gate skipped: its bound, PARSE_GATE_SECONDS or parse_gate_seconds, is 0.",
    ]
    assert asked.asked == []


def test_the_mwaa_model_every_project_asks_through_is_botocores_own() -> None:
    """MWAA's API as the newest Airflow's SDK ships it, not a hand-made model: the SDK that
    MWAA pins for Airflow 2.10 lacks InvokeRestApi (the Airflow 2.10 lane of the docs'
    mwaa-local recipe, test_on_real_airflow.py, asks through it)."""
    sdk = VENVS / f"airflow-{NEWEST}"
    (botocores,) = sdk.glob("lib/python3*/site-packages/botocore/data/mwaa/*/service-2.json.gz")
    assert botocores.parent.name == live_instance.SDK_MODEL.name  # the same API version
    shipped = (live_instance.SDK_MODEL / "service-2.json").read_bytes()
    assert shipped == gzip.decompress(botocores.read_bytes())


def test_a_model_of_mwaa_in_the_users_own_folder_does_not_take_the_projects_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore takes a model's newest API version from any of its folders: one a user keeps
    (here in AWS_DATA_PATH, the SDK's setting for them), without InvokeRestApi, is not asked
    instead."""
    older = json.loads((live_instance.SDK_MODEL / "service-2.json").read_text())
    del older["operations"]["InvokeRestApi"]
    (tmp_path / "mwaa" / "2099-01-01").mkdir(parents=True)
    (tmp_path / "mwaa" / "2099-01-01" / "service-2.json").write_text(json.dumps(older))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))

    assert hasattr(live_instance.client(SETTINGS), "invoke_rest_api")


def test_on_the_sdk_airflow_2_10_pins_the_client_has_invoke_rest_api_and_the_profiles_settings(
    tmp_path: Path,
) -> None:
    """The botocore MWAA pins for Airflow 2.10 lacks InvokeRestApi and reads no
    disable_host_prefix_injection, which an endpoint of one's own needs (make mwaa-local):
    the client has both, the setting from the AWS config file too."""
    project = bake(tmp_path, airflow_version=OLDEST)
    (tmp_path / "aws-config").write_text("[default]\ndisable_host_prefix_injection = true\n")
    made = subprocess.run(
        [
            str(VENVS / f"airflow-{OLDEST}" / "bin" / "python"),
            "-c",
            "from mwaa_deploy import config; from mwaa_deploy.instance import live_instance;"
            " made = live_instance.client(config.load());"
            " print(hasattr(made, 'invoke_rest_api'), made.meta.config.inject_host_prefix)",
        ],
        cwd=project,
        env=user_environment() | {"AWS_CONFIG_FILE": str(tmp_path / "aws-config")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.stdout.split() == ["True", "False"], made.stderr
