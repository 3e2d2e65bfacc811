"""`make upgrade-check TO=<version>`: MWAA's supported path from the current version. The
whole check on baked projects (scratch venv, DAGs, ruff) is in tests/test_mwaa_parity.py."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import threading
from pathlib import Path

import pytest

from mwaa_deploy.__main__ import main
from mwaa_deploy.commands import environment
from mwaa_deploy.exceptions import DeployError
from mwaa_deploy.local import upgrade_check
from mwaa_deploy.local.upgrade_check import MWAA_VERSIONS, mwaa_path
from tests.deploy_tool.helpers import SETTINGS
from tests.helpers import TEMPLATE


def test_the_versions_mwaa_offers_are_the_templates_choices() -> None:
    choices = json.loads((TEMPLATE / "cookiecutter.json").read_text())["airflow_version"]
    assert list(MWAA_VERSIONS) == choices


@pytest.mark.parametrize(
    ("current", "target", "blocker"),
    [
        pytest.param(
            "2.10.3",
            "3.3.1",
            "MWAA has no in-place upgrade from 2.10.3 to Airflow 3: upgrade to 2.11.2 first"
            " (make upgrade-check TO=2.11.2), then to 3.3.1",
            id="2.10-to-3",
        ),
        pytest.param(
            "3.3.1",
            "3.0.6",
            "MWAA does not downgrade an environment in place (3.3.1 to 3.0.6); a new"
            " environment would be needed",
            id="downgrade",
        ),
        pytest.param(
            "2.11.2",
            "3.1.0",
            "MWAA does not offer Airflow 3.1.0; it offers 3.3.1, 3.2.1, 3.0.6, 2.11.2, 2.10.3",
            id="not-offered",
        ),
    ],
)
def test_paths_mwaa_does_not_take_are_blockers(current: str, target: str, blocker: str) -> None:
    assert mwaa_path(current, target) == ([blocker], [])


@pytest.mark.parametrize(
    ("current", "target"), [("2.10.3", "2.11.2"), ("2.11.2", "3.3.1"), ("3.0.6", "3.3.1")]
)
def test_paths_mwaa_takes_in_place_are_notes(current: str, target: str) -> None:
    blockers, notes = mwaa_path(current, target)
    assert blockers == [] and notes[0].startswith(f"MWAA upgrades {current} to {target} in place")


def test_without_a_target_version_it_names_the_versions_mwaa_offers_beyond_this_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["upgrade-check"]) == 0  # the defaults bake MWAA's newest
    assert capsys.readouterr().out.startswith(
        f"This project runs Airflow {MWAA_VERSIONS[0]}, the newest MWAA offers here"
    )
    older = dataclasses.replace(SETTINGS, airflow_version="3.0.6")
    with pytest.raises(DeployError) as refused:
        environment.upgrade_check(older, None, "uv", None)
    assert str(refused.value) == (
        "say which Airflow version to check the upgrade to: MWAA offers 3.2.1, 3.3.1 beyond"
        " this project's 3.0.6, such as make upgrade-check TO=3.2.1"
    )


def test_a_second_check_of_the_same_scratch_venv_waits_for_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = tmp_path / "scratch"
    order: list[str] = []

    def second_check() -> None:
        with upgrade_check.scratch_venv(venv):
            order.append("second")

    with upgrade_check.scratch_venv(venv):
        second = threading.Thread(target=second_check)
        second.start()
        second.join(0.5)
        assert second.is_alive() and order == []
        order.append("first done")
    second.join(5)
    assert order == ["first done", "second"]
    assert f"  waiting for another upgrade-check using {venv}..." in capsys.readouterr().out


def test_integrity_tests_that_cannot_start_on_the_target_say_why(tmp_path: Path) -> None:
    venv = tmp_path / "no-pytest"
    subprocess.run(["uv", "venv", "--quiet", str(venv)], check=True)
    (blocker,) = upgrade_check.dag_blockers(SETTINGS, venv)
    assert blocker.startswith("the DAG integrity tests fail on the target: ")
    assert blocker.endswith("No module named pytest")


def test_a_downgrade_is_refused_without_building_a_scratch_venv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = tmp_path / "scratch"
    assert upgrade_check.run(SETTINGS, "3.0.6", "uv", venv) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"Upgrade check: Airflow {SETTINGS.airflow_version} to 3.0.6 on MWAA",
        "MWAA's upgrade path: BLOCKED",
        f"  blocker: MWAA does not downgrade an environment in place ({SETTINGS.airflow_version}"
        " to 3.0.6); a new environment would be needed",
        "Upgrade to 3.0.6 blocked: 1 blocker(s) above.",
    ]
    assert not venv.exists()
