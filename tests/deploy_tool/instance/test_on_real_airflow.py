"""The live instance on a real Airflow, the oldest and the newest, behind the MWAA stand-in
(mwaa_local.py) that the SDK reaches as it reaches AWS: the parse gate (DESIGN: a deploy to S3
waits for MWAA to parse what it wrote and fails on import errors in its own files only), and
removing a sandbox, which removes it from Airflow's metadata too, never anything outside its
prefix (DESIGN: "The live instance").

Each version's Airflow (`make airflow-local MWAA_LOCAL=1` of a baked project, as its docs'
mwaa-local recipe starts it) starts once for the module, since each start costs half a minute;
each test deploys to a stand-in of its own, whose new bucket empties the DAGs folder first,
and to DAG ids of its own. The last follows the recipe to its end, with the make targets.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mwaa_deploy import config
from mwaa_deploy.__main__ import main
from mwaa_deploy.commands import airflow_cleanup
from mwaa_deploy.instance import metadata_cleanup
from mwaa_deploy.local.mwaa_local import MwaaLocal
from tests.deploy_tool.instance.real_airflow import (
    BROKEN_DAG,
    GOOD_DAG,
    NAME,
    RunningAirflow,
    deploy,
    running_airflow,
    stand_in_before,
)
from tests.deploy_tool.s3_endpoint import S3Endpoint
from tests.helpers import NEWEST, OLDEST, bake, commit_all, stopped, wait_for_line

pytestmark = pytest.mark.starts_airflow

# GOOD_DAG, with the owner (DEV, PROD, SBX_<name>) read from its stamped file's name, as the
# project's conventions read it: a sandbox's copy gets a DAG id of its own.
OWNED_DAG = GOOD_DAG.replace("_orders", "_returns").replace(
    'dev_prod_flag = "DEV" if DEV else "PROD"',
    'dev_prod_flag = __import__("pathlib").Path(__file__).name.removesuffix("_returns.py")',
)


@pytest.fixture(scope="module", params=[NEWEST, OLDEST])
def airflow(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningAirflow]:
    project = bake(tmp_path_factory.mktemp("airflow"), airflow_version=request.param)
    commit_all(project)  # for the recipe's deploy
    with running_airflow(project, request.param) as running:
        yield running


@pytest.fixture
def instance(airflow: RunningAirflow, s3_endpoint: S3Endpoint) -> Iterator[MwaaLocal]:
    with stand_in_before(airflow, s3_endpoint) as stand_in:
        yield stand_in


@pytest.fixture
def sources(instance: MwaaLocal, deploying_to: Callable[[MwaaLocal], Path]) -> Path:
    """The dags/ of a project that deploys to the real Airflow's bucket."""
    return deploying_to(instance)


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


def dag_ids(stand_in: MwaaLocal) -> list[str]:
    """Every DAG Airflow knows, those whose file is gone included."""
    assert stand_in.airflow is not None
    query: dict[str, Any] = {"limit": 100}
    query |= {"only_active": False} if stand_in.airflow.airflow_2 else {"exclude_stale": False}
    status, answer = stand_in.airflow.call("GET", "/dags", query, None)
    assert status == 200, answer
    return sorted(dag["dag_id"] for dag in answer["dags"])


def runs(stand_in: MwaaLocal, dag_id: str) -> tuple[int, int]:
    """The status of the DAG's runs list, and how many it holds."""
    assert stand_in.airflow is not None
    status, answer = stand_in.airflow.call("GET", f"/dags/{dag_id}/dagRuns", None, None)
    return status, answer.get("total_entries", 0) if isinstance(answer, dict) else 0


def finished(stand_in: MwaaLocal, dag_id: str) -> bool:
    assert stand_in.airflow is not None
    _, answer = stand_in.airflow.call("GET", f"/dags/{dag_id}/dagRuns", None, None)
    return all(run.get("end_date") for run in answer["dag_runs"])


def test_cleaning_a_sandbox_removes_its_dags_and_runs_from_airflow_and_nothing_else(
    instance: MwaaLocal,
    deploying_to: Callable[[MwaaLocal], Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    airflow = instance.airflow
    assert airflow is not None
    sources = deploying_to(instance)
    (sources / "returns.py").write_text(OWNED_DAG)
    assert deploy("PROD", capsys)[0] == 0
    assert deploy("DEV", capsys)[0] == 0
    monkeypatch.setenv("SANDBOX", "ann")
    assert deploy("DEV", capsys)[0] == 0
    # Those of the module's other tests stay too, DEV's and PROD's alike.
    others = [dag_id for dag_id in dag_ids(instance) if not dag_id.endswith("_returns")]
    assert dag_ids(instance) == sorted(["DEV_returns", "PROD_returns", "SBX_ann_returns", *others])
    body: dict[str, Any] = {} if airflow.airflow_2 else {"logical_date": None}
    for dag_id in ["DEV_returns", "PROD_returns", "SBX_ann_returns"]:
        if dag_id != "SBX_ann_returns":  # its run stays queued: no task of it runs when cleaned
            status, answer = airflow.call("PATCH", f"/dags/{dag_id}", None, {"is_paused": False})
            assert status == 200, answer
        status, answer = airflow.call("POST", f"/dags/{dag_id}/dagRuns", None, body)
        assert status == 200, answer
    assert runs(instance, "SBX_ann_returns") == (200, 1)

    started = time.monotonic()
    assert main(["clean", "DEV"]) == 0
    out = capsys.readouterr().out
    assert "SBX_ann cleaned from" in out
    assert out.splitlines()[-1] == (
        f"Removed 1 DAG(s) of SBX_ann from {instance.environment.name}'s Airflow, with their"
        " runs: SBX_ann_returns."
    )
    assert time.monotonic() - started < 60
    assert dag_ids(instance) == sorted(["DEV_returns", "PROD_returns", *others])

    assert runs(instance, "SBX_ann_returns") in [(404, 0), (200, 0)]  # Airflow 3, 2
    assert runs(instance, "DEV_returns") == (200, 1)
    assert runs(instance, "PROD_returns") == (200, 1)

    # DEV's old runs go, PROD's stay: here every run that ended is "old".
    deadline = time.monotonic() + 120
    while not (finished(instance, "DEV_returns") and finished(instance, "PROD_returns")):
        assert time.monotonic() < deadline
        time.sleep(1)
    asked = airflow_cleanup.airflow_of(config.load(), 60, port=8080)  # MWAA: no port asked
    assert asked is not None
    assert metadata_cleanup.remove_old_runs(asked, days=-1) == 1
    assert runs(instance, "DEV_returns") == (200, 0)
    assert runs(instance, "PROD_returns") == (200, 1)

    # Again: the files and the DAGs are gone already; nothing else is touched.
    assert main(["clean", "DEV"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"No DAGs of SBX_ann in {instance.environment.name}'s Airflow: nothing to remove there."
    )
    assert dag_ids(instance) == sorted(["DEV_returns", "PROD_returns", *others])


def test_the_docs_mwaa_local_recipe_works_copied_into_fresh_terminals(
    airflow: RunningAirflow, tmp_path: Path
) -> None:
    """The mwaa-local recipe of docs/local-airflow.md as a reader runs it: each make line in
    a fresh terminal of its own, after the block's export, at the ports the page names (the
    module's Airflow is its second terminal's); the deploy then passes the parse gate of
    that Airflow behind mwaa-local."""
    recipe = airflow.recipe
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for n, line in enumerate(recipe.serving, start=1):
            if line == recipe.airflow_local:
                continue  # the module's Airflow, running since before this test
            log = tmp_path / f"terminal-{n}.log"
            command = recipe.terminal(line, log, airflow.version)
            started.append((command, log))
            wait_for_line(log, "Press Ctrl-C", command)
        deployed = recipe.run(recipe.deploy, airflow.version)
    finally:
        for command, log in reversed(started):
            assert stopped(command), log.read_text()
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "Deploying DEV to s3://local-mwaa-bucket" in deployed.stdout, deployed.stdout
    assert "parsed DEV's" in deployed.stdout, deployed.stdout
