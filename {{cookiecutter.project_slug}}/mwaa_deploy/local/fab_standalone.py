"""`airflow standalone` on Airflow 3 with FAB's auth manager, the one MWAA logs people in with.

Airflow 3's standalone swaps in its simple auth manager, which has no roles, so the project's
roles (docs/airflow-roles.md) would mean nothing on airflow-local. Run as
`python -m mwaa_deploy.local.fab_standalone [--set-up]`, this is standalone keeping FAB's,
with an `admin` of FAB's Admin role whose generated password it keeps in PASSWORD_FILE, as
Airflow 2's standalone does. `--set-up`: the database is new, or of an older start, and is
migrated first; without it, Airflow starts without checking it again (airflow_db.py).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
# In AIRFLOW_HOME, where Airflow 2's standalone writes its admin's password too.
PASSWORD_FILE = "standalone_admin_password.txt"


def _ensure_admin() -> None:
    """FAB's `admin`, an Admin, with the password PASSWORD_FILE keeps, made on the first start."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    file = Path(os.environ["AIRFLOW_HOME"]) / PASSWORD_FILE
    with get_application_builder() as appbuilder:
        security = appbuilder.sm
        security.sync_roles()  # Admin and the other roles of FAB's, before the API server's start
        if security.find_user(username="admin") is not None and file.is_file():
            return
        password = secrets.token_urlsafe(12)
        user = security.find_user(username="admin")
        if user is None:
            role = security.find_role("Admin")
            security.add_user("admin", "admin", "admin", "admin@localhost", role, password)
        else:
            security.reset_password(user.id, password)
        file.write_text(password + "\n")


def main(set_up: bool) -> None:
    """Standalone Airflow with the auth manager AIRFLOW__CORE__AUTH_MANAGER names."""
    from airflow.__main__ import main as airflow
    from airflow.cli.commands import standalone_command

    command = standalone_command.StandaloneCommand
    migrate = command.initialize_database

    def prepare(self: standalone_command.StandaloneCommand) -> None:
        if set_up:
            migrate(self)
        _ensure_admin()

    command.calculate_env = lambda _self: dict(os.environ)  # keep FAB's auth manager
    command.find_user_info = lambda _self: None  # the simple auth manager's passwords
    command.initialize_database = prepare
    sys.argv = ["airflow", "standalone"]
    airflow()


if __name__ == "__main__":
    main(set_up="--set-up" in sys.argv[1:])
