"""The project's Airflow roles on airflow-local, as `make airflow-roles` sets them on MWAA.

Airflow grants a DAG to the roles its access_control names when it writes the DAG, and
refuses a role that does not exist yet: fab_standalone.py creates the roles, empty, before
any part of Airflow parses a DAG, and what each role may do besides is set here once Airflow
answers. Airflow 3 runs FAB's auth manager here, as on MWAA (fab_standalone.py), which serves
the roles API apart from /api/v2.
"""

from __future__ import annotations

from collections.abc import Callable

from mwaa_deploy.config import Settings
from mwaa_deploy.exceptions import ConfigError, LocalMwaaError, RolesError
from mwaa_deploy.instance import roles
from mwaa_deploy.local.airflow_api import FAB_API, AirflowApi


def roles_api(settings: Settings, url: str, password: str) -> AirflowApi:
    """The API that holds the roles of the Airflow at `url`, as its admin."""
    fab = None if settings.airflow_version.startswith("2.") else FAB_API
    return AirflowApi(url, settings.airflow_version, password, prefix=fab)


def set_up(settings: Settings, url: str, password: str | None, say: Callable) -> None:
    """Create or complete the two roles on the Airflow at `url`, as its admin; say what
    was done, or why not and what that leaves."""
    problem = "no admin password to log in with"
    if password is not None:
        try:
            lines = roles.ensure(roles_api(settings, url, password), settings)
        except (RolesError, ConfigError, LocalMwaaError, OSError) as error:
            problem = str(error)
        else:
            for line in lines:
                say(line)
            return
    say(f"Could not set the project's roles ({problem}): run make airflow-roles once it can.")
