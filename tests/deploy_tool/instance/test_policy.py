"""The platform's cluster policy travels with the instance-wide plugins (DESIGN: "Run time"):
packed into plugins.zip with its settings from pyproject.toml, and unpacked the same way
for every local Airflow. That Airflow applies it is tested on the real Airflow, through
the baked project's integrity tests (tests/test_platform_policy.py)."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from io import BytesIO
from pathlib import Path

from mwaa_deploy.instance import instance_files, policy
from mwaa_deploy.local import airflow_local
from tests.deploy_tool.helpers import SETTINGS

POLICY = "airflow_local_settings.py"


def test_plugins_zip_carries_the_policy_and_the_projects_settings_for_it() -> None:
    settings = dataclasses.replace(SETTINGS, prod_priority_weight=5000, dev_runs_on_schedule=True)
    packed = instance_files.checked_files(settings, say=lambda _: None)[instance_files.PLUGINS]
    archive = zipfile.ZipFile(BytesIO(packed))
    assert archive.namelist() == [POLICY, policy.SETTINGS_FILE]
    assert archive.read(POLICY) == (SETTINGS.sources / "plugins" / POLICY).read_bytes()
    assert json.loads(archive.read(policy.SETTINGS_FILE)) == {
        "dev_pool": "DEV_pool",
        "developer_role": "Developer",
        "dev_runs_on_schedule": True,
        "environment_tag": True,
        "fails_on_purpose": "fails_on_purpose",
        "owner_pattern": "DEV|PROD|SBX_[a-z0-9]+",
        "prod": "PROD",
        "prod_priority_weight": 5000,
        "prod_operator_role": "PROD_operator",
        "prod_retries": 2,
    }


def test_a_local_airflow_loads_the_plugins_as_mwaa_unpacks_plugins_zip(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "stale.py").write_text("# a file plugins/ no longer holds\n")
    folder = instance_files.write_plugins(SETTINGS, tmp_path / "plugins")
    sources = SETTINGS.sources / "plugins"
    packed = zipfile.ZipFile(
        BytesIO(instance_files.plugins_zip(sources, policy.generated_files(SETTINGS)))
    )
    unpacked = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")}
    assert unpacked == {name: packed.read(name) for name in packed.namelist()}
    variables = airflow_local.environment(SETTINGS, 8080, tmp_path / "dags")
    assert variables["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(airflow_local.plugins_folder(SETTINGS))
