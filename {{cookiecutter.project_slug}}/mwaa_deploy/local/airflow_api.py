"""A running Airflow's REST API, reached directly over HTTP as its admin: how mwaa-local
forwards InvokeRestApi to airflow-local, and how airflow-local sets DEV's pool.

Airflow 2 serves v1 with basic authentication (as airflow-local starts it), Airflow 3 v2
with a token from its login; the requests and answers are JSON, as through MWAA. On
Airflow 3 the FAB auth manager serves roles and users apart, under FAB_API.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from mwaa_deploy.exceptions import LocalMwaaError

# Where Airflow 3's FAB auth manager serves its roles and users API, beside /api/v2.
FAB_API = "/auth/fab/v1"


class AirflowApi:
    """A running Airflow's REST API, logged in as `admin`: v1 with basic authentication on
    Airflow 2 (as airflow-local serves it), v2 with a token on Airflow 3; `prefix` in
    place of either: another API of the same login's (FAB_API)."""

    def __init__(
        self, url: str, airflow_version: str, password: str, prefix: str | None = None
    ) -> None:
        self.url, self.password = url.rstrip("/"), password
        self.airflow_2 = airflow_version.startswith("2.")
        self.prefix = prefix or ("/api/v1" if self.airflow_2 else "/api/v2")
        self._token = ""

    def call(
        self, method: str, path: str, query: dict[str, Any] | None, body: Any
    ) -> tuple[int, Any]:
        """Airflow's status and answer (JSON, or its text) for one request."""
        status, answer = self._send(method, path, query, body)
        if status == 401 and not self.airflow_2:  # an expired token: log in again, once
            self._token = ""
            status, answer = self._send(method, path, query, body)
        return status, answer

    def _send(
        self, method: str, path: str, query: dict[str, Any] | None, body: Any
    ) -> tuple[int, Any]:
        url = f"{self.url}{self.prefix}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(
                {k: _query_value(v) for k, v in query.items()}, doseq=True
            )
        return _request(method, url, body, {"Authorization": self._authorization()})

    def _authorization(self) -> str:
        if self.airflow_2:
            return "Basic " + base64.b64encode(f"admin:{self.password}".encode()).decode()
        if not self._token:
            login = {"username": "admin", "password": self.password}
            status, answer = _request("POST", f"{self.url}/auth/token", login, {})
            if status >= 300 or not isinstance(answer, dict):
                raise LocalMwaaError(f"Airflow at {self.url} refused admin's login ({status})")
            self._token = answer["access_token"]
        return f"Bearer {self._token}"


def _request(method: str, url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        # JSON, as MWAA asks: Airflow 2 serves a DAG's source as text unless asked for JSON,
        # and refuses a JSON request without a body (a DELETE).
        headers={"Accept": "application/json", **headers}
        | ({} if body is None else {"Content-Type": "application/json"}),
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def _query_value(value: Any) -> Any:
    """A query value as text: JSON's true and false, as Airflow reads them."""
    return json.dumps(value) if isinstance(value, bool) else value
