"""The two Airflow roles the project owns: who may touch PROD in the one shared UI.

The developer role may do anything with DEV's and every sandbox's DAGs and read PROD's; the
PROD operator role may also trigger, clear and pause PROD's. Which DAGs each role reaches is
granted by the platform's cluster policy from the DAG id's owner prefix
(plugins/airflow_local_settings.py), so a new sandbox is covered with no edit anywhere.
What the roles may do beside their DAGs is Airflow's own User role without its hold on every
DAG: runs, task instances, logs and the rest of the UI, each gated by the DAG's permission.

`make airflow-roles` creates both roles, or adds what they lack, through Airflow's REST API
(on MWAA through InvokeRestApi, locally as airflow-local's admin); `make airflow-local` does
the same on its own Airflow. Airflow's roles API only ever adds permissions, so one a role
holds beyond these is named for removal by hand. No other role is ever written to.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mwaa_deploy import settings_rules as rules
from mwaa_deploy.exceptions import RolesError

if TYPE_CHECKING:
    from mwaa_deploy.config import Settings
    from mwaa_deploy.instance.pools import RestApi

# The role whose permissions, but for those on every DAG, both roles get.
TEMPLATE = "User"
# The resource that holds a permission on every DAG at once, and those of one DAG each
# (DAG:<id>, DAG Run:<id>) that the cluster policy's access_control gives.
EVERY_DAG = "DAGs"
ONE_DAG = re.compile(r"DAG( Run)?:")

Permission = tuple[str, str]  # (action, resource), as Airflow names them


def owned(settings: Settings) -> tuple[str, str]:
    """The developer role's and the PROD operator role's names; ConfigError where either
    is not the project's own to write (settings_rules.roles, as the settings load)."""
    rules.roles(settings.developer_role, settings.prod_operator_role, lambda _: rules.TABLE)
    return settings.developer_role, settings.prod_operator_role


def wanted(template: Any) -> set[Permission]:
    """What both roles hold beside their DAGs: the template role's permissions, but for
    those on every DAG (the cluster policy grants DAGs one by one)."""
    return {
        permission
        for permission in _permissions(template)
        if permission[1] != EVERY_DAG and not ONE_DAG.match(permission[1])
    }


def ensure(api: RestApi, settings: Settings) -> list[str]:
    """Create each of the project's roles, or add what it lacks; the lines saying what
    was done and what is left by hand."""
    names = owned(settings)
    status, template = api.call("GET", f"/roles/{TEMPLATE}", None, None)
    _check(status, template, f"read the role {TEMPLATE}")
    permissions = wanted(template)
    return [_ensure_one(api, name, permissions) for name in names]


def _ensure_one(api: RestApi, name: str, permissions: set[Permission]) -> str:
    status, role = api.call("GET", f"/roles/{name}", None, None)
    if status == 404:
        _check(*api.call("POST", "/roles", None, _body(name, permissions)), f"create {name}")
        return f"Role {name}: created with {len(permissions)} permissions."
    _check(status, role, f"read the role {name}")
    held = _permissions(role)
    lacking = permissions - held
    extra = sorted(
        f"{action} on {resource}"
        for action, resource in held - permissions
        if not ONE_DAG.match(resource)
    )
    said = f"Role {name}: "
    if lacking:
        # Airflow adds what the body holds to the role; what it held stays, DAGs' included.
        body = _body(name, held | permissions)
        _check(*api.call("PATCH", f"/roles/{name}", {"update_mask": "actions"}, body), "update")
        said += f"added {len(lacking)} permissions."
    else:
        said += "as set."
    if extra:
        said += (
            f" It also holds {', '.join(extra)}: remove them under Security > List Roles"
            " if the project did not mean to grant them."
        )
    return said


def _permissions(role: Any) -> set[Permission]:
    actions = role.get("actions") if isinstance(role, dict) else None
    if not isinstance(actions, list):
        raise RolesError(f"Airflow answered with {str(role)[:120]}, not a role")
    return {(a["action"]["name"], a["resource"]["name"]) for a in actions}


def _body(name: str, permissions: set[Permission]) -> dict[str, Any]:
    return {
        "name": name,
        "actions": [
            {"action": {"name": action}, "resource": {"name": resource}}
            for action, resource in sorted(permissions)
        ],
    }


def _check(status: int, answer: Any, doing: str) -> None:
    if status < 300:
        return
    detail = answer.get("detail") if isinstance(answer, dict) else answer
    if status in (401, 403):
        hint = (
            ": only an Admin may change roles; ask with an Admin's login (iam/airflow-roles.yaml)"
        )
    elif status == 404:
        hint = (
            ": Airflow 3's FAB serves its roles under /auth/fab/v1, apart from the /api/v2"
            " that MWAA's InvokeRestApi reaches; create the roles by hand, as"
            " docs/airflow-roles.md shows"
        )
    else:
        hint = ""
    raise RolesError(f"Airflow would not {doing} ({status}: {detail}){hint}")
