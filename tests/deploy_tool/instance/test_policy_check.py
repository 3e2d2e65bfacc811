"""The parse gate's read-back (DESIGN: "Run time": a policy MWAA silently ignores must fail
the deploy), against a real Airflow that ignores it: `make airflow-local MWAA_LOCAL=1` of a
project whose plugins hold no policy, behind the MWAA stand-in. With the policy in force
the same read-back passes, in test_on_real_airflow.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mwaa_deploy.local.mwaa_local import MwaaLocal
from tests.deploy_tool.instance.real_airflow import (
    GOOD_DAG,
    NAME,
    deploy,
    running_airflow,
    stand_in_before,
)
from tests.deploy_tool.s3_endpoint import S3Endpoint
from tests.helpers import NEWEST, bake


@pytest.fixture(scope="module")
def ignoring_the_policy(
    s3_endpoint: S3Endpoint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MwaaLocal]:
    """An Airflow whose plugins lack the policy, as an MWAA that skips them runs: one for
    the module, since each start costs half a minute."""
    project = bake(tmp_path_factory.mktemp("airflow"), airflow_version=NEWEST)
    (project / "bucket_contents" / "plugins" / "airflow_local_settings.py").unlink()
    with (
        running_airflow(project, NEWEST) as airflow,
        stand_in_before(airflow, s3_endpoint) as stand_in,
    ):
        yield stand_in


@pytest.mark.starts_airflow
@pytest.mark.parametrize("env", ["DEV", "PROD"])
def test_a_deploy_fails_naming_each_task_the_policy_did_not_place(
    ignoring_the_policy: MwaaLocal,
    deploying_to: Callable[[MwaaLocal], Path],
    capsys: pytest.CaptureFixture[str],
    env: str,
) -> None:
    (deploying_to(ignoring_the_policy) / "orders.py").write_text(GOOD_DAG)

    code, out, err = deploy(env, capsys)

    assert code == 1
    assert f"{NAME} parsed {env}'s 1 DAG file(s) without import errors" in out
    required = (
        "DEV_pool, priority below 1000"
        if env == "DEV"
        else ("default_pool or a PROD_ pool, priority at least 1000")
    )
    assert err.splitlines() == [
        f"{env}_orders.{env}_noop: pool 'default_pool', priority 1",
        f"Parse gate: {env} is deployed, but on {NAME} 1 of its 1 task(s) (above) are not as"
        f" {env} requires ({required}): the platform's cluster policy is not in force there."
        " Check that plugins.zip holds airflow_local_settings.py and mwaa_policy.json (make"
        " deploy-requirements) and the environment's scheduler logs for"
        " 'airflow_local_settings'.",
    ]
