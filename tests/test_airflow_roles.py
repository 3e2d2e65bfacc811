"""Who may touch PROD in the shared UI (issue 30), on a real Airflow: `make airflow-local`
creates the project's two roles, the cluster policy grants them each owner's DAGs, and
Airflow refuses what a role does not hold. Airflow 2 alone: Airflow 3's airflow-local runs
the simple auth manager, which has no roles (docs/airflow-roles.md)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import OLDEST, bake, make
from tests.test_airflow_local import PICKUP_SECONDS, airflow_local, free_port, wait_for

pytestmark = pytest.mark.starts_airflow

PASSWORD = "a-password-of-the-tests"


def as_user(port: int, user: str, method: str, path: str, body: dict | None = None) -> int:
    """Airflow's status for one request of `user`'s to its REST API (v1, basic auth)."""
    login = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {login}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def attempts(port: int, user: str, dag_id: str) -> dict[str, int]:
    """Trigger, clear (a dry run) and pause `dag_id` as `user`: Airflow's status for each."""
    return {
        "trigger": as_user(port, user, "POST", f"/dags/{dag_id}/dagRuns", {}),
        "clear": as_user(
            port, user, "POST", f"/dags/{dag_id}/clearTaskInstances", {"dry_run": True}
        ),
        "pause": as_user(port, user, "PATCH", f"/dags/{dag_id}", {"is_paused": True}),
    }


ALLOWED = {"trigger": 200, "clear": 200, "pause": 200}
REFUSED = {"trigger": 403, "clear": 403, "pause": 403}


def test_a_developer_runs_dev_and_sandbox_dags_only_and_a_prod_operator_runs_prods(
    output: Path,
) -> None:
    project = bake(output, airflow_version=OLDEST)
    deployed = make(project, "install", "deploy-dev", "deploy-prod", airflow_version=OLDEST)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    sandboxed = make(project, "deploy-dev", airflow_version=OLDEST, SANDBOX="ann")
    assert sandboxed.returncode == 0, sandboxed.stdout + sandboxed.stderr
    port, log = free_port(), output / "airflow-local.out"

    with airflow_local(project, OLDEST, port, log) as api:
        said = log.read_text()
        assert "Role Developer: created with" in said and "Role PROD_operator: created" in said
        dags = {"DEV_dbt_models", "SBX_ann_dbt_models", "PROD_dbt_models"}
        wait_for(lambda: dags <= api.dag_ids(), PICKUP_SECONDS, "DAGs not listed", log)
        wait_for(
            lambda: api.get("/importErrors")["import_errors"] == [],
            PICKUP_SECONDS,
            "import errors remained",
            log,
        )
        for user, role in [("dev", "Developer"), ("operator", "PROD_operator")]:
            api.send(
                "POST",
                "/users",
                {
                    "username": user,
                    "password": PASSWORD,
                    "first_name": user,
                    "last_name": user,
                    "email": f"{user}@example.com",
                    "roles": [{"name": role}],
                },
            )

        assert attempts(port, "dev", "DEV_dbt_models") == ALLOWED
        assert attempts(port, "dev", "SBX_ann_dbt_models") == ALLOWED
        assert attempts(port, "dev", "PROD_dbt_models") == REFUSED
        assert as_user(port, "dev", "GET", "/dags/PROD_dbt_models") == 200
        assert attempts(port, "operator", "PROD_dbt_models") == ALLOWED
        for user in ("dev", "operator"):
            assert as_user(port, user, "PATCH", "/roles/Developer", {"name": "Developer"}) == 403
            assert as_user(port, user, "POST", "/roles", {"name": "Mine", "actions": []}) == 403
