"""Who may touch PROD in the one shared UI (issue 30): `make airflow-roles` creates the
project's developer and PROD operator roles on the MWAA environment through InvokeRestApi, or
adds what they lack; doing it again changes nothing; it never writes any other role; and the
platform's cluster policy grants each role its DAGs by the DAG id's owner prefix.

Behind the MWAA stand-in (mwaa_local.py) stands an Airflow of roles alone, which keeps its
roles as Airflow 2's FAB API does: an update only ever adds permissions. A real Airflow
enforces the roles in tests/test_airflow_local.py.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from mwaa_deploy.__main__ import main
from mwaa_deploy.instance import policy
from mwaa_deploy.local.mwaa_local import MwaaLocal
from mwaa_deploy.local.mwaa_local_env import Environment
from tests.deploy_tool.helpers import SETTINGS, new_s3_bucket
from tests.deploy_tool.s3_endpoint import S3Endpoint
from tests.helpers import filled

# A few of the User role's permissions, with its hold on every DAG.
USER = {
    ("can_read", "DAGs"),
    ("can_edit", "DAGs"),
    ("can_delete", "DAGs"),
    ("can_create", "DAG Runs"),
    ("can_read", "DAG Runs"),
    ("can_edit", "Task Instances"),
    ("can_read", "Task Logs"),
}
BESIDE_DAGS = USER - {("can_read", "DAGs"), ("can_edit", "DAGs"), ("can_delete", "DAGs")}
DEVELOPER, OPERATOR = "Developer", "PROD_operator"
ACCOUNT = "123456789012"


def _role(name: str, permissions: set[tuple[str, str]]) -> dict[str, Any]:
    actions = [{"action": {"name": a}, "resource": {"name": r}} for a, r in sorted(permissions)]
    return {"name": name, "actions": actions}


class AirflowOfRoles:
    """In place of an Airflow: its roles API, answering as Airflow's `role` would."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.roles = {"Admin": {("can_edit", "Roles")}, "User": set(USER), "Viewer": set()}
        self.written: list[str] = []  # the roles a request would change
        # False: as MWAA's Airflow 3, whose REST API (what InvokeRestApi reaches) holds no roles.
        self.serves_roles = True

    def call(self, method: str, path: str, query: Any, body: Any) -> tuple[int, Any]:
        if not self.serves_roles:
            return 404, {"detail": "Not Found"}
        name = path.removeprefix("/roles").strip("/") or body["name"]
        if method == "GET":
            if name not in self.roles:
                return 404, {"detail": f"Role with name {name!r} was not found"}
            return 200, _role(name, self.roles[name])
        self.written.append(name)
        if self.role != "Admin":
            return 403, {"detail": "Forbidden"}
        if method == "PATCH":
            assert query == {"update_mask": "actions"}
        given = {(a["action"]["name"], a["resource"]["name"]) for a in body["actions"]}
        self.roles[name] = self.roles.get(name, set()) | given
        return 200, _role(name, self.roles[name])


@pytest.fixture
def instance(
    aws: S3Endpoint,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
    deploying_to: Callable[[MwaaLocal], Path],
) -> Iterator[Callable[[str], AirflowOfRoles]]:
    """The stand-in in front of an Airflow of roles that answers as `role`."""
    stand_ins = []

    def as_role(role: str) -> AirflowOfRoles:
        airflow = AirflowOfRoles(role)
        environment = Environment(
            SETTINGS.mwaa_environment, SETTINGS.airflow_version, new_s3_bucket(), "eu-west-1"
        )
        stand_ins.append(MwaaLocal(environment, airflow, dags_folder=None))
        deploying_to(stand_ins[-1])
        return airflow

    yield as_role
    for stand_in in stand_ins:
        stand_in.stop()


def airflow_roles(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["airflow-roles"])
    out, err = capsys.readouterr()
    return code, out, err


def test_airflow_roles_creates_both_roles_with_users_permissions_but_not_every_dag(
    instance: Callable[[str], AirflowOfRoles], capsys: pytest.CaptureFixture[str]
) -> None:
    airflow = instance("Admin")
    assert airflow_roles(capsys) == (
        0,
        f"Role {DEVELOPER}: created with 4 permissions.\n"
        f"Role {OPERATOR}: created with 4 permissions.\n",
        "",
    )
    assert airflow.roles[DEVELOPER] == airflow.roles[OPERATOR] == BESIDE_DAGS


def test_airflow_roles_again_changes_nothing(
    instance: Callable[[str], AirflowOfRoles], capsys: pytest.CaptureFixture[str]
) -> None:
    airflow = instance("Admin")
    airflow_roles(capsys)
    airflow.written.clear()
    assert airflow_roles(capsys)[1] == f"Role {DEVELOPER}: as set.\nRole {OPERATOR}: as set.\n"
    assert airflow.written == []


def test_airflow_roles_adds_what_a_role_lacks_and_keeps_the_dags_the_policy_granted(
    instance: Callable[[str], AirflowOfRoles], capsys: pytest.CaptureFixture[str]
) -> None:
    airflow = instance("Admin")
    granted = {("can_read", "DAG:PROD_orders"), ("can_edit", "DAG:DEV_orders")}
    airflow.roles[DEVELOPER] = {("can_read", "Task Logs"), ("can_edit", "Connections")} | granted
    out = airflow_roles(capsys)[1]
    assert out.splitlines()[0] == (
        f"Role {DEVELOPER}: added 3 permissions. It also holds can_edit on Connections: remove"
        " them under Security > List Roles if the project did not mean to grant them."
    )
    assert airflow.roles[DEVELOPER] == BESIDE_DAGS | granted | {("can_edit", "Connections")}


def test_airflow_roles_never_writes_a_role_it_does_not_own(
    instance: Callable[[str], AirflowOfRoles], capsys: pytest.CaptureFixture[str]
) -> None:
    airflow = instance("Admin")
    airflow_roles(capsys)
    airflow_roles(capsys)
    assert set(airflow.written) == {DEVELOPER, OPERATOR}
    assert airflow.roles["User"] == USER


@pytest.mark.parametrize(
    ("setting", "written"),
    [
        ('developer_role = "User"', "developer_role = 'User'"),
        ('prod_operator_role = "Admin"', "prod_operator_role = 'Admin'"),
        # Airflow's own roles, in any case.
        ('developer_role = "admin"', "developer_role = 'admin'"),
        ('prod_operator_role = "VIEWER"', "prod_operator_role = 'VIEWER'"),
        ('developer_role = "public"', "developer_role = 'public'"),
        ('prod_operator_role = "Developer"', "developer_role and prod_operator_role both"),
    ],
)
def test_a_role_setting_that_names_a_role_not_the_projects_own_is_refused_before_asking(
    instance: Callable[[str], AirflowOfRoles],
    capsys: pytest.CaptureFixture[str],
    setting: str,
    written: str,
) -> None:
    airflow = instance("Admin")
    pyproject = Path("pyproject.toml")
    key = setting.split(" = ")[0]
    lines = pyproject.read_text().splitlines(keepends=True)
    pyproject.write_text(
        "".join(f"{setting}\n" if ln.startswith(f"{key} =") else ln for ln in lines)
    )
    code, out, err = airflow_roles(capsys)
    assert (code, out) == (1, "")
    assert written in err and len(err.splitlines()) == 1
    assert airflow.written == []


def test_a_login_that_may_not_change_roles_is_told_to_ask_as_an_admin(
    instance: Callable[[str], AirflowOfRoles], capsys: pytest.CaptureFixture[str]
) -> None:
    instance("Op")
    assert airflow_roles(capsys) == (
        1,
        "",
        f"Airflow would not create {DEVELOPER} (403: Forbidden): only an Admin may change"
        " roles; ask with an Admin's login (iam/airflow-roles.yaml)\n",
    )


def test_an_airflow_whose_rest_api_has_no_roles_is_told_to_create_them_by_hand(
    instance: Callable[[str], AirflowOfRoles], capsys: pytest.CaptureFixture[str]
) -> None:
    instance("Admin").serves_roles = False
    assert airflow_roles(capsys) == (
        1,
        "",
        "Airflow would not read the role User (404: Not Found): Airflow 3's FAB serves its"
        " roles under /auth/fab/v1, apart from the /api/v2 that MWAA's InvokeRestApi reaches;"
        " create the roles by hand, as docs/airflow-roles.md shows\n",
    )


def _policy(tmp_path: Path) -> Any:
    """The cluster policy module as Airflow imports it, beside its settings file."""
    plugins = SETTINGS.sources / "plugins" / "airflow_local_settings.py"
    (tmp_path / "airflow_local_settings.py").write_bytes(plugins.read_bytes())
    for name, body in policy.generated_files(SETTINGS).items():
        (tmp_path / name).write_bytes(body)
    spec = importlib.util.spec_from_file_location("policy_under_test", tmp_path / plugins.name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("dag_id", "developer", "operator"),
    [
        (
            "DEV_orders",
            {"can_read", "can_edit", "can_delete"},
            {"can_read", "can_edit", "can_delete"},
        ),
        (
            "SBX_ann_orders",
            {"can_read", "can_edit", "can_delete"},
            {"can_read", "can_edit", "can_delete"},
        ),
        ("PROD_orders", {"can_read"}, {"can_read", "can_edit"}),
    ],
)
def test_the_policy_grants_each_role_its_dags_by_the_owner_prefix(
    tmp_path: Path, dag_id: str, developer: set[str], operator: set[str]
) -> None:
    granted = {"Auditors": {"DAGs": {"can_read"}}}
    dag = SimpleNamespace(dag_id=dag_id, access_control=granted, tags=["orders"])
    dag.timetable = SimpleNamespace(can_be_scheduled=False)
    _policy(tmp_path).dag_policy(dag)
    assert dag.access_control == {
        "Auditors": {"DAGs": {"can_read"}},
        DEVELOPER: {"DAGs": developer},
        OPERATOR: {"DAGs": operator},
    }


def test_the_policy_leaves_a_dag_of_no_owner_to_its_file(tmp_path: Path) -> None:
    dag = SimpleNamespace(dag_id="orders", access_control=None)
    _policy(tmp_path).dag_policy(dag)
    assert dag.access_control is None


def test_the_role_names_reach_the_policy_from_the_settings() -> None:
    settings = dataclasses.replace(SETTINGS, developer_role="Devs", prod_operator_role="Ops_PROD")
    written = json.loads(policy.generated_files(settings)[policy.SETTINGS_FILE])
    assert (written["developer_role"], written["prod_operator_role"]) == ("Devs", "Ops_PROD")


@pytest.mark.parametrize(
    ("policy_name", "role"),
    [("DeveloperLogin", DEVELOPER), ("ProdOperatorLogin", OPERATOR)],
)
def test_each_login_policy_logs_in_as_its_own_role_only(policy_name: str, role: str) -> None:
    """iam/airflow-roles.yaml as CloudFormation fills it. MWAA's API is not in the IAM
    endpoint the deploy roles' tests use, so what AWS would decide is read off the policy."""
    template = yaml.safe_load((SETTINGS.root / "iam" / "airflow-roles.yaml").read_text())
    values = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": ACCOUNT}
    values |= {name: p.get("Default") for name, p in template["Parameters"].items()}
    document = template["Resources"][policy_name]["Properties"]["PolicyDocument"]
    allowed = {
        (action, statement["Resource"])
        for statement in filled(document, values)["Statement"]
        for action in _as_list(statement["Action"])
    }
    arn = f"arn:aws:airflow:eu-west-1:{ACCOUNT}"
    assert allowed == {
        ("airflow:GetEnvironment", f"{arn}:environment/{SETTINGS.mwaa_environment}"),
        ("airflow:CreateWebLoginToken", f"{arn}:role/{SETTINGS.mwaa_environment}/{role}"),
        ("airflow:InvokeRestApi", f"{arn}:role/{SETTINGS.mwaa_environment}/{role}"),
    }
    assert all(s["Effect"] == "Allow" for s in document["Statement"])


def _as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]
