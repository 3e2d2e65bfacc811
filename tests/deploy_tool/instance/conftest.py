"""Fixtures of the live instance's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from mwaa_deploy.__main__ import main
from mwaa_deploy.instance import mwaa_environment
from mwaa_deploy.local.mwaa_local import MwaaLocal
from mwaa_deploy.local.mwaa_local_env import Environment
from tests.deploy_tool.helpers import SETTINGS, new_s3_bucket
from tests.deploy_tool.s3_endpoint import S3Endpoint

NAME = SETTINGS.mwaa_environment
DeployRequirements = Callable[..., tuple[int, str, str]]
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def mwaa(
    aws: S3Endpoint,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[MwaaLocal]:
    """A versioned bucket named by S3_BUCKET, and the MWAA environment that reads it."""
    environment = Environment(NAME, SETTINGS.airflow_version, new_s3_bucket(), SETTINGS.aws_region)
    stand_in = MwaaLocal(environment, airflow=None, dags_folder=None)
    monkeypatch.setenv("S3_BUCKET", environment.bucket)
    monkeypatch.setenv("MWAA_ENVIRONMENT", NAME)
    monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", stand_in.url)
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    monkeypatch.setattr(mwaa_environment, "POLL_SECONDS", 0)
    monkeypatch.setattr(mwaa_environment, "FIRST_POLL_SECONDS", 0)
    yield stand_in
    stand_in.stop()


@pytest.fixture
def deploy_requirements(capsys: pytest.CaptureFixture[str]) -> DeployRequirements:
    def run(*args: str) -> tuple[int, str, str]:
        code = main(["deploy-requirements", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """`make <command> ARGS`: its exit status, stdout and stderr."""

    def running(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return running
