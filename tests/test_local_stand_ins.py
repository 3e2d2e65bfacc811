"""`make s3-local` and `make mwaa-local` of a baked project, run as a user runs them: in a
terminal of their own, or as a background job, and stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from tests.helpers import (
    NEWEST,
    STARTUP_SECONDS,
    VENVS,
    bake,
    make,
    stopped,
    user_environment,
    wait_for_line,
)

ESCAPING = "dags/SBX_evil_x/../../../../pwned.txt"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def started(project: Path, log: Path, *arguments: str, **variables: str) -> subprocess.Popen[bytes]:
    """`make ARGUMENTS` in a process group of its own (a terminal's job), output in `log`."""
    with open(log, "w") as output:
        return subprocess.Popen(
            ["make", *arguments, f"VENV={VENVS / f'airflow-{NEWEST}'}"],
            cwd=project,
            env=user_environment() | variables,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture
def airflow_health() -> Iterator[int]:
    """An Airflow's health endpoint alone, on a free port: what mwaa-local asks before it
    starts. The copy of the bucket under test needs nothing more of an Airflow."""

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_make_mwaa_local_copies_into_a_folder_of_its_own_and_leaves_the_local_bucket_alone(
    tmp_path: Path, s3_endpoint: dict[str, str], airflow_health: int
) -> None:
    project = bake(tmp_path / "baked")
    deployed = make(project, "deploy-dev", "deploy-prod", airflow_version=NEWEST)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    local_bucket = {p: p.read_bytes() for p in (project / "local_bucket").rglob("*") if p.is_file()}
    # What airflow-local writes on its first start: mwaa-local logs in with it.
    home = project / "airflow_home"
    home.mkdir()
    (home / "standalone_admin_password.txt").write_text("x\n")
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint["AWS_ENDPOINT_URL"],
        region_name=s3_endpoint["AWS_REGION"],
        aws_access_key_id=s3_endpoint["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_endpoint["AWS_SECRET_ACCESS_KEY"],
    )
    bucket = "local-mwaa-bucket"  # the stand-in's, where the project names none
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for key in (ESCAPING, "dags/DEV_from_s3.py"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"# from S3\n")

    log = tmp_path / "mwaa-local.log"
    port = free_port()
    command = started(
        project, log, "mwaa-local", **s3_endpoint, PORT=str(port), AIRFLOW_PORT=str(airflow_health)
    )
    try:
        wait_for_line(log, "Press Ctrl-C", command)
        deadline = time.monotonic() + STARTUP_SECONDS
        copies = [home / "mwaa_local" / "dags", project / "local_bucket" / "dags"]
        while not any((folder / "DEV_from_s3.py").exists() for folder in copies):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(5)  # two more rounds of the copy, each of which would delete what is not in S3
    finally:
        assert stopped(command), log.read_text()
    assert (home / "mwaa_local" / "dags" / "DEV_from_s3.py").read_bytes() == b"# from S3\n"
    assert {p: p.read_bytes() for p in (project / "local_bucket").rglob("*") if p.is_file()} == (
        local_bucket
    )
    assert not list(tmp_path.rglob("pwned.txt"))
    skipped = [line for line in log.read_text().splitlines() if line.startswith("Skipped")]
    assert skipped == [
        f"Skipped s3://{bucket}/{ESCAPING}: not a plain path of a file inside"
        " airflow_home/mwaa_local/dags/ (it holds a '..', '.' or empty part); delete the key"
    ]
    history = make(project, "history-prod", airflow_version=NEWEST)
    assert "* what the bucket holds now" in history.stdout, history.stdout


def test_make_s3_local_started_as_a_background_job_stops_on_sigint(tmp_path: Path) -> None:
    project = bake(tmp_path / "baked")
    log = tmp_path / "s3-local.log"
    with open(log, "w") as output:
        command = subprocess.Popen(
            ["make", "s3-local", f"PORT={free_port()}", f"VENV={VENVS / f'airflow-{NEWEST}'}"],
            cwd=project,
            env=user_environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # What a shell does to a job it starts in the background (`make s3-local &`).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509
        )
    wait_for_line(log, "Press Ctrl-C", command)
    assert stopped(command), log.read_text()
    assert "S3 endpoint stopped." in log.read_text()


def test_make_s3_local_refuses_mwaas_api_saying_what_to_set(tmp_path: Path) -> None:
    """A deploy to s3-local with an MWAA environment still named asks s3-local for it: one
    line says what to do, in the deploy's output and in s3-local's, and nothing is deployed."""
    project = bake(tmp_path / "baked")
    log = tmp_path / "s3-local.log"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = started(project, log, "s3-local", PORT=str(port))
    try:
        wait_for_line(log, "Press Ctrl-C", command)
        variables = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": "eu-west-1",
            "S3_BUCKET": "local-mwaa-bucket",
            "MWAA_ENVIRONMENT": "data-platform",
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        }
        deployed = make(project, "deploy-dev", airflow_version=NEWEST, **variables)
        listed = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="eu-west-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        ).list_objects_v2(Bucket="local-mwaa-bucket")
    finally:
        assert stopped(command), log.read_text()
    assert listed["KeyCount"] == 0
    assert deployed.returncode != 0
    assert deployed.stderr.splitlines()[0] == (
        f"Cannot ask the MWAA environment data-platform before deploying DEV: {endpoint}"
        " refused the request (NotS3: this endpoint is make s3-local's, which serves S3 only,"
        " not MWAA's API: point AWS_ENDPOINT_URL_MWAA at make mwaa-local"
        " (docs/local-airflow.md), or set MWAA_ENVIRONMENT= where no environment is wanted (a"
        " deploy then waits for no parse)). Nothing was deployed; PARSE_GATE_SECONDS=0 deploys"
        " without asking the environment."
    )
    served = log.read_text()
    assert "Refused a request for MWAA's API: this endpoint serves S3 only." in served
    assert "Traceback" not in served


def test_make_s3_local_answers_a_request_it_cannot_read_with_one_line(tmp_path: Path) -> None:
    project = bake(tmp_path / "baked")
    log = tmp_path / "s3-local.log"
    port = free_port()
    command = started(project, log, "s3-local", PORT=str(port))
    try:
        wait_for_line(log, "Press Ctrl-C", command)
        odd = urllib.request.Request(
            f"http://127.0.0.1:{port}/local-mwaa-bucket", headers={"Authorization": "garbage"}
        )
        with pytest.raises(urllib.error.HTTPError) as answered:
            urllib.request.urlopen(odd, timeout=10)
        plain = urllib.request.urlopen(f"http://127.0.0.1:{port}/local-mwaa-bucket", timeout=10)
    finally:
        assert stopped(command), log.read_text()
    assert answered.value.code == 400
    assert json.load(answered.value)["message"].startswith("s3-local cannot read this request (")
    assert plain.status == 200  # and it goes on serving
    served = log.read_text()
    assert "Refused a request: s3-local cannot read this request (" in served
    assert "Traceback" not in served
