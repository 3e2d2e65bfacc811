"""The commands that remove DEV's and the sandboxes' metadata from the project's Airflow
(instance/metadata_cleanup.py): after `make clean-dev`, and `make clean-runs`. The Airflow
is the MWAA environment's, asked through InvokeRestApi, or, with no bucket configured,
airflow-local's, when it runs.
"""

from __future__ import annotations

from typing import Any

from mwaa_deploy.config import Settings
from mwaa_deploy.exceptions import MwaaError
from mwaa_deploy.instance.metadata_cleanup import Airflow, remove_dags, remove_old_runs


def remove_from_airflow(settings: Settings, owner: str, port: int) -> None:
    """After `make clean-dev`: remove the owner's DAGs from the project's Airflow, if it has
    one that can be asked (airflow-local: on `port`)."""
    seconds = settings.parse_gate_seconds
    airflow = airflow_of(settings, seconds, port) if seconds else None
    if airflow is None:
        where = (
            "MWAA_ENVIRONMENT and PARSE_GATE_SECONDS"
            if settings.s3_bucket
            else f"no airflow-local answers on port {port}; PORT= names another"
        )
        print(f"Airflow's metadata of {owner} left as it is: no Airflow to ask ({where}).")
        return
    try:
        remove_dags(airflow, owner, seconds)
    except MwaaError as error:
        raise MwaaError(
            f"{owner}'s files are deleted, but its DAGs are left in Airflow: {error}."
            " `make clean-dev` again removes them"
        ) from None


def clean_runs(settings: Settings, port: int) -> int:
    """`clean-runs`: delete DEV's and the sandboxes' runs that ended longer ago than
    dev_run_retention_days, from the project's Airflow."""
    days = settings.dev_run_retention_days
    airflow = airflow_of(settings, settings.parse_gate_seconds or 600, port)
    if airflow is None:
        where = (
            "set MWAA_ENVIRONMENT"
            if settings.s3_bucket
            else f"no airflow-local answers on port {port}: start it, or give its PORT="
        )
        raise MwaaError(f"no Airflow to clean runs from: {where}")
    removed = remove_old_runs(airflow, days)
    print(
        f"Removed {removed} run(s) of DEV's and the sandboxes' DAGs that ended over {days}"
        f" day(s) ago from {airflow.name}'s Airflow; PROD's are kept."
    )
    return 0


def airflow_of(settings: Settings, seconds: float, port: int) -> Airflow | None:
    """The project's Airflow: the MWAA environment's through InvokeRestApi, or, with no
    bucket configured, airflow-local's (None when it is not running)."""
    if settings.s3_bucket:
        if not settings.mwaa_environment:
            return None
        from mwaa_deploy.instance.live_instance import Instance

        return _Named(Instance(settings, seconds), settings.mwaa_environment)
    return _local(settings, port)


class _Named:
    """An Airflow by name, whose failure to answer is one line (MwaaError)."""

    def __init__(self, api: Any, name: str) -> None:
        self.api, self.name = api, name

    def call(
        self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        from mwaa_deploy.exceptions import LocalMwaaError
        from mwaa_deploy.instance.live_instance import CannotAsk

        try:
            return self.api.call(method, path, query, body)
        except (CannotAsk, LocalMwaaError, OSError) as error:
            raise MwaaError(f"Cannot ask {self.name}'s Airflow: {error}") from None


def _local(settings: Settings, port: int) -> Airflow | None:
    import urllib.request

    from mwaa_deploy.local.airflow_api import AirflowApi
    from mwaa_deploy.local.airflow_local import HOST, admin_password, health_url

    password = admin_password(settings)
    try:
        with urllib.request.urlopen(health_url(settings, port), timeout=5):
            pass
    except OSError:
        return None
    if password is None:
        return None
    return _Named(
        AirflowApi(f"http://{HOST}:{port}", settings.airflow_version, password), "airflow-local"
    )
