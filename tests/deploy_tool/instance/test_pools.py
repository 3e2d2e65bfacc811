"""DEV's share of the workers on the instance (DESIGN: "Run time"): `make deploy-prod` creates
DEV's pool on the MWAA environment, or resizes it to `dev_pool_slots`, through MWAA's
InvokeRestApi, says which, and changes nothing when it is as set; a deploy role whose
Airflow role may not change pools is told so in one line.

Behind the MWAA stand-in (mwaa_local.py) stands an Airflow of pools alone. A real Airflow's
pools API answers the same requests in test_on_real_airflow.py (a PROD deploy through the stand-in)
and in tests/test_airflow_local.py (make airflow-local).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mwaa_deploy.__main__ import main
from mwaa_deploy.instance.pools import DEV_POOL
from mwaa_deploy.local.mwaa_local import MwaaLocal
from mwaa_deploy.local.mwaa_local_env import Environment
from tests.deploy_tool.helpers import SETTINGS, new_s3_bucket
from tests.deploy_tool.s3_endpoint import S3Endpoint


class AirflowOfPools:
    """In place of an Airflow: its pools API, answering as Airflow's `role` would."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.slots: dict[str, int] = {}
        self.changes: list[str] = []  # the requests that would change a pool

    def call(self, method: str, path: str, query: Any, body: Any) -> tuple[int, Any]:
        if (method, path) == ("GET", "/version"):  # the deploy's first question, any role's
            return 200, {"version": SETTINGS.airflow_version}
        name = path.removeprefix("/pools").strip("/") or body["name"]
        if method == "GET":
            if name not in self.slots:
                return 404, {"detail": f"The Pool with name: `{name}` was not found"}
            return 200, {"name": name, "slots": self.slots[name]}
        self.changes.append(method)
        if self.role == "Viewer":
            return 403, {"detail": "Forbidden"}
        if method == "PATCH":
            assert query == {"update_mask": "slots"}
        self.slots[name] = body["slots"]
        return (201 if method == "POST" else 200), body


@pytest.fixture
def instance(
    aws: S3Endpoint,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
    deploying_to: Callable[[MwaaLocal], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str], AirflowOfPools]]:
    """The stand-in in front of an Airflow of pools that answers as `role`; a project that
    deploys there, holding no DAG file (nothing would parse it), so that the parse gate
    has nothing to wait for."""
    stand_ins = []

    def as_role(role: str) -> AirflowOfPools:
        airflow = AirflowOfPools(role)
        environment = Environment(
            SETTINGS.mwaa_environment, SETTINGS.airflow_version, new_s3_bucket(), "eu-west-1"
        )
        stand_ins.append(MwaaLocal(environment, airflow, dags_folder=None))
        deploying_to(stand_ins[-1])
        monkeypatch.setenv("PARSE_GATE_SECONDS", "5")
        return airflow

    yield as_role
    for stand_in in stand_ins:
        stand_in.stop()


def deploy(env: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(["deploy", env, *(["--force"] if env == "PROD" else [])])
    out, err = capsys.readouterr()
    return code, [line for line in out.splitlines() if line.startswith("Pool ")], err


def test_a_prod_deploy_creates_devs_pool_leaves_it_as_set_and_resizes_it_to_the_setting(
    instance: Callable[[str], AirflowOfPools],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    airflow = instance("Op")
    assert deploy("PROD", capsys)[:2] == (
        0,
        [f"Pool {DEV_POOL}: created with 3 slots, DEV's share of the workers."],
    )
    assert deploy("PROD", capsys)[:2] == (0, [f"Pool {DEV_POOL}: 3 slots, as set."])
    assert airflow.changes == ["POST"]
    monkeypatch.setenv("DEV_POOL_SLOTS", "5")
    assert deploy("PROD", capsys)[:2] == (0, [f"Pool {DEV_POOL}: resized from 3 to 5 slots."])
    assert airflow.slots == {DEV_POOL: 5}


@pytest.mark.parametrize("sandbox", ["", "ann"])
def test_dev_and_sandbox_deploys_leave_the_pools_to_prod(
    instance: Callable[[str], AirflowOfPools],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sandbox: str,
) -> None:
    airflow = instance("Viewer")
    if sandbox:
        monkeypatch.setenv("SANDBOX", sandbox)
    assert deploy("DEV", capsys)[:2] == (0, [])
    assert airflow.slots == {} and airflow.changes == []


def test_a_role_that_may_not_change_pools_is_one_line_saying_prod_is_deployed(
    instance: Callable[[str], AirflowOfPools], capsys: pytest.CaptureFixture[str]
) -> None:
    instance("Viewer")
    code, _, err = deploy("PROD", capsys)
    assert code == 1
    assert err == (
        f"PROD is deployed, but {DEV_POOL} is not set: Airflow would not create {DEV_POOL}"
        " (403: Forbidden): the deploy role's Airflow role may not change pools; it needs Op"
        " (iam/deploy-roles.yaml). The parse gate did not run either, so PROD's import errors"
        " are unchecked: see them in the Airflow UI, and once the cause above is fixed, run"
        " make deploy-prod again to set the pool\n"
    )
