"""`make airflow-local` refuses to start, with what to do, where Airflow could not work.

Starting the real Airflow and stopping it again is tested end to end by the template
this project was made from."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from mwaa_deploy.__main__ import main
from mwaa_deploy.local.airflow_local import HOST


@pytest.fixture
def local_project(project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project that deploys to its local bucket, whatever bucket this one names."""
    monkeypatch.setenv("S3_BUCKET", "")
    return project()


@pytest.mark.usefixtures("local_project")
def test_airflow_local_before_any_deploy_asks_for_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["airflow-local"]) == 1
    assert capsys.readouterr().err == (
        "local_bucket/dags does not exist yet: run `make deploy-dev deploy-prod` first\n"
    )


@pytest.mark.usefixtures("local_project")
def test_airflow_local_on_a_port_in_use_names_a_free_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["deploy", "DEV"]) == 0
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["airflow-local", "--port", str(port)]) == 1
    assert capsys.readouterr().err == (
        f"port {port} is in use, perhaps by another Airflow: stop it,"
        f" or run `make airflow-local PORT={port + 1}`\n"
    )
    assert not Path("airflow_home").exists()
