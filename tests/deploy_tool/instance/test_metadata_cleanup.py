"""Removing a sandbox removes it from Airflow (DESIGN: "The live instance": its DAGs leave
Airflow's metadata too, never anything outside its prefix): which DAGs are the sandbox's,
against an Airflow whose DAG ids read alike. On a real Airflow: test_on_real_airflow.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mwaa_deploy.__main__ import main
from mwaa_deploy.exceptions import OwnershipError
from mwaa_deploy.instance import metadata_cleanup


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
