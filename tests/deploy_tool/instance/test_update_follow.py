"""`make deploy-requirements` follows MWAA's update closely (DESIGN: the update is followed
to AVAILABLE): an update that settles at once ends the command within seconds, while a
long one (10-30 minutes on MWAA) is looked at every POLL_SECONDS at most."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mwaa_deploy.instance import mwaa_environment
from mwaa_deploy.local.mwaa_local import MwaaLocal
from tests.deploy_tool.instance.conftest import DeployRequirements


def test_an_update_that_settles_at_once_ends_deploy_requirements_within_seconds(
    project: Callable[..., Path],
    mwaa: MwaaLocal,
    deploy_requirements: DeployRequirements,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The pauses as shipped, not the fixture's (none); the stand-in's update settles by
    # the second look at it.
    monkeypatch.setattr(mwaa_environment, "POLL_SECONDS", 30)
    monkeypatch.setattr(mwaa_environment, "FIRST_POLL_SECONDS", 1.0, raising=False)
    project()
    started = time.monotonic()
    code, out, err = deploy_requirements()
    assert (code, err) == (0, "")
    assert out.splitlines()[-1].endswith(
        "is AVAILABLE, running the new requirements.txt, startup.sh, plugins.zip."
    )
    assert time.monotonic() - started < 10
    assert len(mwaa.environment.updates) == 1
