"""`airflow-roles`: the project's two Airflow roles, created or completed on the instance.

On the MWAA environment where one is configured with a bucket (through InvokeRestApi, as the
parse gate asks it), otherwise on airflow-local, as its admin. instance/roles.py says what
the roles hold.
"""

from __future__ import annotations

from mwaa_deploy import config
from mwaa_deploy.exceptions import LocalMwaaError, RolesError
from mwaa_deploy.instance import roles

# Where the environment's bound on questions is 0 (deploys ask it nothing), this command
# still asks, within this.
SECONDS = 60.0


def airflow_roles(settings: config.Settings, port: int) -> int:
    """Create the developer and PROD operator roles, or add what they lack; say which."""
    roles.owned(settings)  # a wrong name stops before anything is asked
    if settings.s3_bucket and settings.mwaa_environment:
        from mwaa_deploy.instance import live_instance

        instance = live_instance.Instance(settings, settings.parse_gate_seconds or SECONDS)
        try:
            lines = roles.ensure(instance, settings)
        except live_instance.CannotAsk as error:
            raise RolesError(
                f"Cannot ask the MWAA environment {instance.name} to set the roles: {error}"
            ) from None
    else:
        from mwaa_deploy.local import airflow_local
        from mwaa_deploy.local.local_roles import roles_api

        password = airflow_local.admin_password(settings)
        if password is None:
            raise RolesError(
                "No airflow-local has started here yet: run make airflow-local (it sets the"
                " roles itself), or set s3_bucket and mwaa_environment to set them on MWAA"
            )
        url = f"http://{airflow_local.HOST}:{port}"
        try:
            lines = roles.ensure(roles_api(settings, url, password), settings)
        except (LocalMwaaError, OSError) as error:
            raise RolesError(
                f"Cannot reach airflow-local at {url} ({error}): start it with make"
                " airflow-local, or give its PORT="
            ) from None
    for line in lines:
        print(line)
    return 0
