"""airflow-local as its user runs it, for the tests that start it: `make airflow-local` in a
terminal of its own, asked through Airflow's REST API, and stopped with Ctrl-C."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.helpers import OLDEST, VENVS, bake, make, user_environment

STARTUP_SECONDS = 300
PICKUP_SECONDS = 60
STOP_SECONDS = 120


class AirflowApi:
    """The stable REST API of a running Airflow: v1 on Airflow 2, v2 on Airflow 3."""

    def __init__(self, port: int, version: str, password: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.airflow_2 = version.startswith("2.")
        if self.airflow_2:
            self.prefix = "/api/v1"
            basic = base64.b64encode(f"admin:{password}".encode()).decode()
            self.headers = {"Authorization": f"Basic {basic}"}
        else:
            self.prefix = "/api/v2"
            login = {"username": "admin", "password": password}
            token = self._request("POST", "/auth/token", login)["access_token"]
            self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> dict:
        return self._request("GET", self.prefix + path, headers=self.headers)

    def send(self, method: str, path: str, data: dict) -> dict:
        return self._request(method, self.prefix + path, data, headers=self.headers)

    def dag_ids(self) -> set[str]:
        return {dag["dag_id"] for dag in self.get("/dags?limit=100")["dags"]}

    def start_run(self, dag_id: str) -> str:
        """Unpause the DAG and start a run now, as its play button does; return the run's path."""
        self.send("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        run = self.send(
            "POST", f"/dags/{dag_id}/dagRuns", {} if self.airflow_2 else {"logical_date": None}
        )
        return f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run['dag_run_id'])}"

    def _request(
        self, method: str, path: str, data: dict | None = None, headers: dict | None = None
    ) -> dict:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if data is None else json.dumps(data).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        for _ in range(2):
            try:
                return _answer(request)
            except urllib.error.HTTPError as error:
                # Airflow on SQLite answers 500 while running tasks hold its database
                # ("database is locked" writing its audit log): ask again, as a user would.
                if error.code < 500:
                    raise
                time.sleep(1)
        return _answer(request)


class AirflowUser:
    """A running Airflow's REST API as one user, answered with statuses: v1 with basic
    authentication on Airflow 2; v2 with a token from its login on Airflow 3, where FAB
    serves roles and users apart."""

    def __init__(self, port: int, version: str, user: str, password: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.airflow_2 = version.startswith("2.")
        if self.airflow_2:
            self.api = self.fab = "/api/v1"
            login = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.authorization = f"Basic {login}"
        else:
            self.api, self.fab = "/api/v2", "/auth/fab/v1"
            self.authorization = ""
            status, token = self.request(
                "POST", "/auth/token", {"username": user, "password": password}
            )
            assert status == 201, (user, status, token)
            self.authorization = f"Bearer {token['access_token']}"

    def status(self, method: str, path: str, body: dict | None = None) -> int:
        """Airflow's status for one request to its REST API."""
        return self.request(method, self.api + path, body)[0]

    def fab_status(self, method: str, path: str, body: dict | None = None) -> int:
        """Airflow's status for one request to its API of roles and users."""
        return self.request(method, self.fab + path, body)[0]

    def attempts(self, dag_id: str) -> dict[str, int]:
        """Trigger, clear (a dry run) and pause `dag_id`: Airflow's status for each."""
        run = {} if self.airflow_2 else {"logical_date": None}
        return {
            "trigger": self.status("POST", f"/dags/{dag_id}/dagRuns", run),
            "clear": self.status("POST", f"/dags/{dag_id}/clearTaskInstances", {"dry_run": True}),
            "pause": self.status("PATCH", f"/dags/{dag_id}", {"is_paused": True}),
        }

    def request(self, method: str, path: str, body: dict | None) -> tuple[int, object]:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": self.authorization},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, error.read()[:300]


def _answer(request: urllib.request.Request) -> dict:
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_in(folder: Path) -> list[str]:
    """Live processes working in `folder`: the command and every part of Airflow it ran."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if (proc / "cwd").resolve() == folder.resolve() and _alive(proc):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def _alive(proc: Path) -> bool:
    return (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(condition: Callable[[], bool], seconds: float, what: str, log: Path) -> None:
    """Until `condition` holds; a request that times out on a busy machine asks again."""
    deadline = time.monotonic() + seconds
    while not _holds(condition):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds} s; output:\n{log.read_text()[-4000:]}")
        time.sleep(1)


def _holds(condition: Callable[[], bool]) -> bool:
    try:
        return condition()
    except TimeoutError:
        return False


@contextmanager
def airflow_local(
    project: Path,
    version: str,
    port: int,
    log: Path,
    ca_file: Path | None = None,
    **variables: str,
) -> Iterator[AirflowApi]:
    """`make airflow-local` in a terminal of its own, its output in `log`, trusting `ca_file`
    for HTTPS (the local dbt Cloud API), with `variables` set; Ctrl-C on leaving."""
    trust = {"SSL_CERT_FILE": str(ca_file), "REQUESTS_CA_BUNDLE": str(ca_file)} if ca_file else {}
    with open(log, "w") as output:
        command = subprocess.Popen(
            ["make", "airflow-local", f"VENV={VENVS / f'airflow-{version}'}", f"PORT={port}"],
            cwd=project,
            env=user_environment() | trust | variables,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Its own process group, as a terminal's foreground job: Ctrl-C goes to all of it.
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: "Press Ctrl-C" in log.read_text() or command.poll() is not None,
            STARTUP_SECONDS,
            "Airflow was not ready",
            log,
        )
        lines = log.read_text().splitlines()
        assert command.poll() is None, "\n".join(lines)
        assert f"Airflow is ready: http://127.0.0.1:{port}" in lines
        password = next(line for line in lines if line.startswith("Log in as admin, password "))
        yield AirflowApi(port, version, password.rsplit(" ", 1)[1])
    finally:
        os.killpg(command.pid, signal.SIGINT)
        command.wait(120)
    assert "Airflow stopped." in log.read_text().splitlines()


def pids_in(folder: Path) -> list[int]:
    """What processes_in lists, by process id."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cwd").resolve() == folder.resolve():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


class StartedTwice(NamedTuple):
    """A project on the oldest Airflow with DEV deployed, started and stopped twice."""

    project: Path
    dev_copies: set[str]
    first: str  # what the first start said
    second: str  # what the second start, piped to tee, wrote through tee
    listed_at_once: set[str]  # the DAGs the second start listed as soon as it answered
    left_running: list[str]  # what of the second start still ran after Ctrl-C


def start_twice(output: Path) -> StartedTwice:
    """A new project in `output`, started twice: the first start as airflow_local() runs it;
    the second as a user who keeps a log runs it, `make airflow-local 2>&1 | tee log`,
    stopped with Ctrl-C: the terminal's SIGINT reaches tee too, so the command's next line
    goes to a closed pipe. (On the oldest Airflow: the quickest to start, and the pipe is
    the command's, not Airflow's.)"""
    project = bake(output, airflow_version=OLDEST)
    deployed = make(project, "deploy-dev", airflow_version=OLDEST)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    dev_copies = {
        f"DEV_{file.stem}" for file in (project / "bucket_contents" / "dags").glob("*.py")
    }
    log = output / "airflow-local.out"
    with airflow_local(project, OLDEST, free_port(), log) as api:
        wait_for(lambda: api.dag_ids() == dev_copies, PICKUP_SECONDS, "DAGs not listed", log)
    assert not processes_in(project)
    first = log.read_text()

    tee_log = output / "tee.log"
    tee_log.touch()  # for the wait to read before tee opens it
    port = free_port()
    shell = subprocess.Popen(
        ["bash", "-c", f'make airflow-local VENV="$1" PORT={port} 2>&1 | tee "$2"',
         "bash", str(VENVS / f"airflow-{OLDEST}"), str(tee_log)],
        cwd=project,
        env=user_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a terminal's foreground job: make, the command and tee
    )  # fmt: skip
    try:
        wait_for(
            lambda: "Press Ctrl-C" in tee_log.read_text() or shell.poll() is not None,
            STARTUP_SECONDS,
            "Airflow was not ready",
            tee_log,
        )
        assert shell.poll() is None, tee_log.read_text()
        second = tee_log.read_text()
        password = next(
            line for line in second.splitlines() if line.startswith("Log in as admin, password ")
        )
        listed_at_once = AirflowApi(port, OLDEST, password.rsplit(" ", 1)[1]).dag_ids()
        os.killpg(shell.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_SECONDS
        while processes_in(project) and time.monotonic() < deadline:
            time.sleep(1)
        left_running = processes_in(project)
    finally:
        for pid in pids_in(project):  # what a failed stop left behind, all of it this test's
            os.kill(pid, signal.SIGKILL)
    return StartedTwice(project, dev_copies, first, second, listed_at_once, left_running)
