"""`airflow standalone` as airflow-local runs it: with the project's roles in place before any
part of Airflow parses a DAG, and on Airflow 3 with FAB's auth manager, the one MWAA logs
people in with.

Run as `python -m mwaa_deploy.local.fab_standalone [--set-up] [--role NAME]...`:
- `--set-up`: the database is new, or of an older start, and is migrated first; without it,
  Airflow starts without checking it again (airflow_db.py).
- `--role NAME`: a role of the project's (instance/roles.py), created empty if missing. The
  cluster policy names these roles in every owned DAG's access_control, and Airflow fails to
  import a DAG that names a role it lacks; what the roles hold is set once Airflow answers
  (local_roles.py).
- Airflow 3's standalone swaps in its simple auth manager, which has no roles: this keeps
  FAB's, with an `admin` of FAB's Admin role whose generated password it keeps in
  PASSWORD_FILE, as Airflow 2's standalone does.
- On Ctrl-C each part of Airflow is stopped as in a terminal (_stop_triggerer_at_once).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
# In AIRFLOW_HOME, where Airflow 2's standalone writes its admin's password too.
PASSWORD_FILE = "standalone_admin_password.txt"
SECOND_SIGNAL_SECONDS = 0.5


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


def _ensure_roles(names: list[str]) -> None:
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        for name in names:
            if appbuilder.sm.find_role(name) is None:
                appbuilder.sm.add_role(name)


def _stop_triggerer_at_once(stop: Callable[[Any], None]) -> Callable[[Any], None]:
    """Standalone's stop of one of its parts, which asks the triggerer twice. In a terminal,
    Ctrl-C reaches every part of Airflow and standalone then stops each: two signals, the
    second of which makes the triggerer quit at once. Here only standalone gets the Ctrl-C,
    and after one signal Airflow 3's triggerer waits 10 s for a trigger runner that has
    already ended. It runs no task, so quitting at once loses nothing."""

    def stopping(part: Any) -> None:
        stop(part)
        if part.name == "triggerer":
            time.sleep(SECOND_SIGNAL_SECONDS)  # two signals at once would be taken as one
            if part.process.poll() is None:
                part.process.terminate()

    return stopping


def main(set_up: bool, roles: list[str]) -> None:
    """Standalone Airflow with the project's `roles`, and on Airflow 3 with the auth manager
    AIRFLOW__CORE__AUTH_MANAGER names."""
    from airflow import __version__
    from airflow.__main__ import main as airflow
    from airflow.cli.commands import standalone_command

    airflow_3 = not __version__.startswith("2.")
    command = standalone_command.StandaloneCommand
    migrate = command.initialize_database

    def prepare(self: standalone_command.StandaloneCommand) -> None:
        if set_up:
            migrate(self)
        else:
            self.user_info = {"username": "admin", "password": ""}  # printed from its file
        if airflow_3:
            _ensure_admin()
        _ensure_roles(roles)

    if airflow_3:
        command.calculate_env = lambda _self: dict(os.environ)  # keep FAB's auth manager
        command.find_user_info = lambda _self: None  # the simple auth manager's passwords
    command.initialize_database = prepare
    standalone_command.SubCommand.stop = _stop_triggerer_at_once(standalone_command.SubCommand.stop)
    sys.argv = ["airflow", "standalone"]
    airflow()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main(
        set_up="--set-up" in arguments,
        roles=[arguments[n + 1] for n, given in enumerate(arguments) if given == "--role"],
    )
