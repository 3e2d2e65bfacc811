"""Removing a sandbox removes it from Airflow (DESIGN: "The live instance": its DAGs leave
Airflow's metadata too, never anything outside its prefix), on a real Airflow behind the
MWAA stand-in, as test_parse_gate.py starts it; which DAGs are the sandbox's, also against
an Airflow whose DAG ids read alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mwaa_deploy import config
from mwaa_deploy.__main__ import main
from mwaa_deploy.commands import airflow_cleanup
from mwaa_deploy.exceptions import OwnershipError
from mwaa_deploy.instance import metadata_cleanup
from mwaa_deploy.local.mwaa_local import MwaaLocal
from tests.deploy_tool.instance.test_parse_gate import (
    GOOD_DAG,
    airflow_local_behind_stand_in,
    deploy,
)
from tests.deploy_tool.s3_endpoint import S3Endpoint
from tests.helpers import NEWEST, OLDEST, bake

# GOOD_DAG, with the owner (DEV, PROD, SBX_<name>) read from its stamped file's name, as the
# project's conventions read it: a sandbox's copy gets a DAG id of its own.
OWNED_DAG = GOOD_DAG.replace(
    'dev_prod_flag = "DEV" if DEV else "PROD"',
    'dev_prod_flag = __import__("pathlib").Path(__file__).name.removesuffix("_orders.py")',
)


@pytest.fixture(params=[NEWEST, OLDEST])
def instance(
    request: pytest.FixtureRequest, s3_endpoint: S3Endpoint, tmp_path: Path
) -> Iterator[MwaaLocal]:
    project = bake(tmp_path / "airflow", airflow_version=request.param)
    with airflow_local_behind_stand_in(project, request.param, s3_endpoint) as stand_in:
        yield stand_in


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


@pytest.mark.starts_airflow
def test_cleaning_a_sandbox_removes_its_dags_and_runs_from_airflow_and_nothing_else(
    instance: MwaaLocal,
    deploying_to: Callable[[MwaaLocal], Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    airflow = instance.airflow
    assert airflow is not None
    sources = deploying_to(instance)
    (sources / "orders.py").write_text(OWNED_DAG)
    assert deploy("PROD", capsys)[0] == 0
    assert deploy("DEV", capsys)[0] == 0
    monkeypatch.setenv("SANDBOX", "ann")
    assert deploy("DEV", capsys)[0] == 0
    assert dag_ids(instance) == ["DEV_orders", "PROD_orders", "SBX_ann_orders"]
    body: dict[str, Any] = {} if airflow.airflow_2 else {"logical_date": None}
    for dag_id in ["DEV_orders", "PROD_orders", "SBX_ann_orders"]:
        if dag_id != "SBX_ann_orders":  # its run stays queued: no task of it runs when cleaned
            status, answer = airflow.call("PATCH", f"/dags/{dag_id}", None, {"is_paused": False})
            assert status == 200, answer
        status, answer = airflow.call("POST", f"/dags/{dag_id}/dagRuns", None, body)
        assert status == 200, answer
    assert runs(instance, "SBX_ann_orders") == (200, 1)

    started = time.monotonic()
    assert main(["clean", "DEV"]) == 0
    out = capsys.readouterr().out
    assert "SBX_ann cleaned from" in out
    assert out.splitlines()[-1] == (
        f"Removed 1 DAG(s) of SBX_ann from {instance.environment.name}'s Airflow, with their"
        " runs: SBX_ann_orders."
    )
    assert time.monotonic() - started < 60
    assert dag_ids(instance) == ["DEV_orders", "PROD_orders"]

    assert runs(instance, "SBX_ann_orders") in [(404, 0), (200, 0)]  # Airflow 3, 2
    assert runs(instance, "DEV_orders") == (200, 1)
    assert runs(instance, "PROD_orders") == (200, 1)

    # DEV's old runs go, PROD's stay: here every run that ended is "old".
    deadline = time.monotonic() + 120
    while not (finished(instance, "DEV_orders") and finished(instance, "PROD_orders")):
        assert time.monotonic() < deadline
        time.sleep(1)
    asked = airflow_cleanup.airflow_of(config.load(), 60, port=8080)  # MWAA: no port asked
    assert asked is not None
    assert metadata_cleanup.remove_old_runs(asked, days=-1) == 1
    assert runs(instance, "DEV_orders") == (200, 0)
    assert runs(instance, "PROD_orders") == (200, 1)

    # Again: the files and the DAGs are gone already; nothing else is touched.
    assert main(["clean", "DEV"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"No DAGs of SBX_ann in {instance.environment.name}'s Airflow: nothing to remove there."
    )
    assert dag_ids(instance) == ["DEV_orders", "PROD_orders"]


class AirflowWithNeighbours:
    """An Airflow (3's API) whose DAGs' files are all gone: the sandbox's, one of a sandbox
    whose name starts like it, DEV's, PROD's, and one no owner has."""

    name = "instance"

    def __init__(self) -> None:
        self.dag_ids = ["SBX_ann_orders", "SBX_ann2_orders", "DEV_orders", "PROD_orders", "orders"]
        self.deleted: list[str] = []

    def call(
        self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        if path == "/version":
            return 200, {"version": "3.3.1"}
        if (method, path) == ("GET", "/dags"):
            assert query is not None and query["exclude_stale"] is False
            dags = [{"dag_id": dag_id, "is_stale": True} for dag_id in self.dag_ids]
            return 200, {"dags": dags[query["offset"] :], "total_entries": len(dags)}
        assert method == "DELETE" and body is None, (method, path)
        dag_id = path.removeprefix("/dags/")
        if dag_id not in self.dag_ids:
            return 404, {"detail": "not found"}
        self.dag_ids.remove(dag_id)
        self.deleted.append(dag_id)
        return 204, None


def test_removing_a_sandbox_deletes_its_dags_only_and_again_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    airflow = AirflowWithNeighbours()
    metadata_cleanup.remove_dags(airflow, "SBX_ann", seconds=5)
    assert airflow.deleted == ["SBX_ann_orders"]
    metadata_cleanup.remove_dags(airflow, "SBX_ann", seconds=5)
    assert airflow.deleted == ["SBX_ann_orders"]
    assert capsys.readouterr().out.splitlines() == [
        "Removed 1 DAG(s) of SBX_ann from instance's Airflow, with their runs: SBX_ann_orders.",
        "No DAGs of SBX_ann in instance's Airflow: nothing to remove there.",
    ]
    with pytest.raises(OwnershipError, match="refusing to remove PROD's DAGs"):
        metadata_cleanup.remove_dags(airflow, "PROD", seconds=5)
    assert airflow.deleted == ["SBX_ann_orders"]


def test_clean_runs_asks_airflow_local_on_the_port_it_is_given(
    project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As airflow-local and airflow-roles take it: PORT=, else 8080."""
    project()
    monkeypatch.setenv("S3_BUCKET", "")
    monkeypatch.setenv("PORT", "18093")
    assert main(["clean-runs"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "no Airflow to clean runs from: no airflow-local answers on port 18093: start it, or"
        " give its PORT="
    ]
