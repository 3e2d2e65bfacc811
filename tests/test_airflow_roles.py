"""Who may touch PROD in the shared UI (issue 30), on a real Airflow: `make airflow-local`
creates the project's two roles, the cluster policy grants them each owner's DAGs, and
Airflow refuses what a role does not hold: on the oldest Airflow and on the newest, which
runs FAB's auth manager as MWAA does and serves the roles and users apart from /api/v2."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import NEWEST, OLDEST, bake, make
from tests.test_airflow_local import PICKUP_SECONDS, airflow_local, free_port, wait_for

pytestmark = pytest.mark.starts_airflow

PASSWORD = "a-password-of-the-tests"
# Where airflow-local keeps its admin's password, on either Airflow.
ADMIN_PASSWORD = "airflow_home/standalone_admin_password.txt"


class Airflow:
    """A running Airflow's REST API as one user: v1 with basic authentication on Airflow 2,
    v2 with a token from its login on Airflow 3, where FAB serves roles and users apart."""

    def __init__(self, port: int, version: str, user: str, password: str = PASSWORD) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.airflow_2 = version.startswith("2.")
        if self.airflow_2:
            self.api = self.fab = "/api/v1"
            login = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.authorization = f"Basic {login}"
        else:
            self.api, self.fab = "/api/v2", "/auth/fab/v1"
            self.authorization = ""
            status, token = self.request(
                "POST", "/auth/token", {"username": user, "password": password}
            )
            assert status == 201, (user, status, token)
            self.authorization = f"Bearer {token['access_token']}"

    def status(self, method: str, path: str, body: dict | None = None) -> int:
        """Airflow's status for one request to its REST API."""
        return self.request(method, self.api + path, body)[0]

    def fab_status(self, method: str, path: str, body: dict | None = None) -> int:
        """Airflow's status for one request to its API of roles and users."""
        return self.request(method, self.fab + path, body)[0]

    def attempts(self, dag_id: str) -> dict[str, int]:
        """Trigger, clear (a dry run) and pause `dag_id`: Airflow's status for each."""
        run = {} if self.airflow_2 else {"logical_date": None}
        return {
            "trigger": self.status("POST", f"/dags/{dag_id}/dagRuns", run),
            "clear": self.status("POST", f"/dags/{dag_id}/clearTaskInstances", {"dry_run": True}),
            "pause": self.status("PATCH", f"/dags/{dag_id}", {"is_paused": True}),
        }

    def request(self, method: str, path: str, body: dict | None) -> tuple[int, object]:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": self.authorization},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, error.read()[:300]


ALLOWED = {"trigger": 200, "clear": 200, "pause": 200}
REFUSED = {"trigger": 403, "clear": 403, "pause": 403}


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_a_developer_runs_dev_and_sandbox_dags_only_and_a_prod_operator_runs_prods(
    output: Path, version: str
) -> None:
    project = bake(output, airflow_version=version)
    deployed = make(project, "install", "deploy-dev", "deploy-prod", airflow_version=version)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    sandboxed = make(project, "deploy-dev", airflow_version=version, SANDBOX="ann")
    assert sandboxed.returncode == 0, sandboxed.stdout + sandboxed.stderr
    port, log = free_port(), output / "airflow-local.out"

    with airflow_local(project, version, port, log) as api:
        said = log.read_text()
        # Made empty before Airflow parses a DAG (fab_standalone.py), then given their permissions.
        assert "Role Developer: added " in said and "Role PROD_operator: added " in said
        dags = {"DEV_dbt_models", "SBX_ann_dbt_models", "PROD_dbt_models"}
        wait_for(lambda: dags <= api.dag_ids(), PICKUP_SECONDS, "DAGs not listed", log)
        wait_for(
            lambda: api.get("/importErrors")["import_errors"] == [],
            PICKUP_SECONDS,
            "import errors remained",
            log,
        )
        admin = Airflow(port, version, "admin", (project / ADMIN_PASSWORD).read_text().strip())
        for user, role in [("dev", "Developer"), ("operator", "PROD_operator")]:
            created = admin.fab_status(
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
            assert created == 200, (user, created)
        dev, operator = Airflow(port, version, "dev"), Airflow(port, version, "operator")

        assert dev.attempts("DEV_dbt_models") == ALLOWED
        assert dev.attempts("SBX_ann_dbt_models") == ALLOWED
        assert dev.attempts("PROD_dbt_models") == REFUSED
        assert dev.status("GET", "/dags/PROD_dbt_models") == 200
        assert operator.attempts("PROD_dbt_models") == ALLOWED
        for user in (dev, operator):
            assert user.fab_status("PATCH", "/roles/Developer", {"name": "Developer"}) == 403
            assert user.fab_status("POST", "/roles", {"name": "Mine", "actions": []}) == 403
