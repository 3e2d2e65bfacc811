"""Airflow's metadata of DEV's and the sandboxes' DAGs: removing a sandbox removes its DAGs
(and with them their runs, task instances and XComs), and DEV's old runs can be removed.

Through Airflow's REST API: on MWAA through InvokeRestApi (live_instance.py), locally on
airflow-local (commands/airflow_cleanup.py picks which). A DAG is an owner's by the rule
that makes a key its (owners.py): its id starts with the owner's prefix, and no owner's
prefix starts another's. Nothing here ever deletes a DAG or a run of PROD's, nor of a DAG
no owner has.

Airflow would parse a DAG anew from a file still in its DAGs folder, so a DAG is deleted
only once the instance has noticed that its file is gone: Airflow 2 lists it as inactive,
Airflow 3 as stale. Every wait and question ends within PARSE_GATE_SECONDS; a rerun
deletes what is left and says so when nothing is.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from mwaa_deploy import owners
from mwaa_deploy.exceptions import MwaaError, OwnershipError

POLL_SECONDS = 2.0
PROGRESS_EVERY = 10.0
PAGE = 100
# The most runs one clean-runs deletes: a first run on a busy DEV ends in minutes, not hours.
MOST_RUNS = 2000
# Who may delete these: on MWAA the DEV deploy role asks as the project's developer role.
ROLE_HINT = (
    "on MWAA it deletes as the project's developer role, which make airflow-roles creates"
    " and iam/deploy-roles.yaml lets the DEV deploy role ask as"
)


class Airflow(Protocol):
    """Airflow's REST API, as live_instance.Instance and local.airflow_api.AirflowApi give it."""

    name: str

    def call(
        self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, Any]: ...


def remove_dags(airflow: Airflow, owner: str, seconds: float) -> None:
    """Once the instance has noticed the owner's files are gone, delete each of its DAGs."""
    _never_prod(owner)
    airflow_2 = _is_airflow_2(airflow)
    dags = [dag for dag in _dags(airflow, owner, airflow_2) if _owner_of(dag["dag_id"]) == owner]
    if not dags:
        print(f"No DAGs of {owner} in {airflow.name}'s Airflow: nothing to remove there.")
        return
    active = _wait_until_gone(airflow, owner, airflow_2, seconds)
    if active:
        raise MwaaError(
            f"{airflow.name} still parses {len(active)} DAG(s) of {owner} ({', '.join(active)})"
            f" {seconds:.0f} s after its files were deleted: run `make clean-dev` again once"
            " it has noticed (its DAGs list says so)"
        )
    removed, running = [], []
    for dag in dags:
        status, answer = airflow.call("DELETE", f"/dags/{quote(dag['dag_id'], safe='')}")
        if status in (200, 204, 404):  # 404: removed meanwhile, by a rerun or by hand
            removed.append(dag["dag_id"])
        elif status == 409:
            running.append(dag["dag_id"])
        else:
            raise MwaaError(
                f"{airflow.name} answered {status} to DELETE /dags/{dag['dag_id']}"
                f" ({_detail(answer)}): {ROLE_HINT}"
            )
    print(
        f"Removed {len(removed)} DAG(s) of {owner} from {airflow.name}'s Airflow, with their"
        f" runs: {', '.join(removed) or 'none'}."
    )
    if running:
        raise MwaaError(
            f"{len(running)} DAG(s) of {owner} still have running tasks ({', '.join(running)}):"
            " run `make clean-dev` again once they end"
        )


def remove_old_runs(airflow: Airflow, days: int) -> int:
    """Delete the finished runs of DEV's and the sandboxes' DAGs that ended more than `days`
    days ago, at most MOST_RUNS; return how many."""
    airflow_2 = _is_airflow_2(airflow)
    cutoff = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    removed = 0
    for dag in _dags(airflow, "", airflow_2):
        owner = _owner_of(dag["dag_id"])
        if owner is None or owner == "PROD":
            continue
        _never_prod(owner)
        path = f"/dags/{quote(dag['dag_id'], safe='')}/dagRuns"
        for run in _pages(airflow, path, "dag_runs", {"end_date_lte": cutoff}):
            if removed >= MOST_RUNS:
                print(f"  stopped at {MOST_RUNS} runs: run `make clean-runs` again for more")
                return removed
            status, answer = airflow.call("DELETE", f"{path}/{quote(run['dag_run_id'], safe='')}")
            if status not in (200, 204, 404):
                raise MwaaError(
                    f"{airflow.name} answered {status} to DELETE {path}/{run['dag_run_id']}"
                    f" ({_detail(answer)}): {ROLE_HINT}"
                )
            removed += 1
    return removed


def _wait_until_gone(airflow: Airflow, owner: str, airflow_2: bool, seconds: float) -> list[str]:
    """The owner's DAGs the instance still parses once it has noticed, or `seconds` passed."""
    started = said = time.monotonic()
    while True:
        active = sorted(
            dag["dag_id"]
            for dag in _dags(airflow, owner, airflow_2)
            if _owner_of(dag["dag_id"]) == owner
            and (dag.get("is_active") if airflow_2 else not dag.get("is_stale"))
        )
        if not active or time.monotonic() - started + POLL_SECONDS > seconds:
            return active
        if time.monotonic() - said >= PROGRESS_EVERY:
            said = time.monotonic()
            print(
                f"  {len(active)} DAG(s) of {owner} still parsed after {said - started:.0f} s",
                flush=True,
            )
        time.sleep(POLL_SECONDS)


def _dags(airflow: Airflow, owner: str, airflow_2: bool) -> list[dict[str, Any]]:
    """The DAGs whose id holds `owner`, those whose file is gone included."""
    query: dict[str, Any] = {"only_active": False} if airflow_2 else {"exclude_stale": False}
    if owner:
        query["dag_id_pattern"] = owner
    return _pages(airflow, "/dags", "dags", query)


def _pages(airflow: Airflow, path: str, items: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    total = 1
    while len(found) < total:
        status, page = airflow.call("GET", path, query | {"limit": PAGE, "offset": len(found)})
        if status >= 300 or not isinstance(page, dict) or not isinstance(page.get(items), list):
            raise MwaaError(f"{airflow.name} answered {status} to GET {path} ({_detail(page)})")
        found += page[items]
        total = int(page["total_entries"]) if page[items] else 0
    return found


def _is_airflow_2(airflow: Airflow) -> bool:
    """Whether the instance runs Airflow 2, whose API names the DAGs' listing's filters
    otherwise: asked, since a project may be moving from one version to the other."""
    status, answer = airflow.call("GET", "/version")
    if status >= 300 or not isinstance(answer, dict) or not isinstance(answer.get("version"), str):
        raise MwaaError(f"{airflow.name} answered {status} to GET /version ({_detail(answer)})")
    return answer["version"].startswith("2.")


def _owner_of(dag_id: str) -> str | None:
    """The owner of a DAG id, by the rule of keys: the id read as a file name under dags/."""
    return owners.owner_of_key(f"dags/{dag_id}")


def _never_prod(owner: str) -> None:
    if owners.check_owner(owner) == "PROD":
        raise OwnershipError("refusing to remove PROD's DAGs or runs from Airflow")


def _detail(answer: Any) -> Any:
    return (answer.get("detail") or answer.get("title")) if isinstance(answer, dict) else answer
