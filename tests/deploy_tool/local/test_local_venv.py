"""make install (DESIGN: the local venv is built with MWAA's pins on MWAA's Python): what
MWAA runs gets MWAA's versions, and a dev-only tool never moves one. Real uv, real venvs,
small projects (a package or two in place of Airflow) so that each test takes seconds."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mwaa_deploy import config
from mwaa_deploy.exceptions import InstallError
from mwaa_deploy.instance import mwaa_constraints
from mwaa_deploy.local import find_python, local_venv, tools_lock
from tests.deploy_tool.helpers import SETTINGS
from tests.helpers import MWAA_CONSTRAINTS

UV = shutil.which("uv") or "uv"
OLDEST = "2.10.3"  # its constraints pin ruff 0.5.5 and PyYAML 6.0.2


def small_project(root: Path, runtime: list[str], dev: list[str]) -> config.Settings:
    """A project of Airflow 2.10.3 whose "airflow" group is `runtime`, with a venv on
    MWAA's Python for it."""
    root.mkdir()
    pyproject = (SETTINGS.root / "pyproject.toml").read_text()
    table = pyproject[pyproject.index("[tool.mwaa_deploy]") :]
    table = table.replace(f'"{SETTINGS.airflow_version}"', f'"{OLDEST}"')
    table = table.replace(f'"{SETTINGS.python_version}"', '"3.11"')
    groups = [
        "[dependency-groups]",
        'deploy = ["packaging"]',
        f"airflow = {json.dumps(runtime)}",
        'dev = [{include-group = "deploy"}, {include-group = "airflow"}, '
        + ", ".join(map(json.dumps, dev))
        + "]",
    ]
    (root / "pyproject.toml").write_text("\n".join(groups) + "\n\n" + table)
    python = find_python.interpreter("3.11", UV)
    subprocess.run([UV, "venv", "--quiet", "--python", python, str(root / ".venv")], check=True)
    return config.load(root)


@pytest.fixture
def pins() -> dict[str, str]:
    return mwaa_constraints.pins(
        [MWAA_CONSTRAINTS / OLDEST / name for name in mwaa_constraints.FILES]
    )


@pytest.mark.usefixtures("mwaa_constraints")
def test_what_mwaa_runs_gets_mwaas_version_and_a_newer_dev_tool_is_named(
    tmp_path: Path,
    pins: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = small_project(tmp_path / "p", ["pyyaml"], ["ruff>=0.15"])
    python = str(settings.root / ".venv" / "bin" / "python")

    held = local_venv.install(settings, UV, python, "dev")

    assert held is not None
    assert held.versions["pyyaml"] == pins["pyyaml"]  # MWAA's, not the newest
    assert "pyyaml" in held.runtime and "ruff" not in held.runtime
    said = capsys.readouterr().out
    assert (
        f"ruff>=0.15 (dev group) conflicts with Airflow's own test pin ruff=={pins['ruff']}:"
        " MWAA does not run it; installing it as the dev group asks, every pin of what MWAA"
        " runs kept"
    ) in said
    report = local_venv.compare(held, pins)
    assert report.runtime == []
    assert [line.split()[0] for line in report.dev_only] == ["ruff"]


@pytest.mark.usefixtures("mwaa_constraints")
def test_an_install_of_the_same_requirements_against_the_same_pins_is_not_resolved_again(
    tmp_path: Path, pins: dict[str, str]
) -> None:
    settings = small_project(tmp_path / "p", ["pyyaml"], [])
    python = str(settings.root / ".venv" / "bin" / "python")
    local_venv.install(settings, UV, python, "dev")

    # No uv at all: the venv is known to be what these requirements and pins give.
    again = local_venv.install(settings, "/nonexistent/uv", python, "dev")

    assert again is not None and again.versions["pyyaml"] == pins["pyyaml"]
    with pytest.raises(InstallError, match="cannot run uv"):  # another Airflow's: resolved
        local_venv.install(settings, "/nonexistent/uv", python, "dev", "2.11.2")


@pytest.mark.usefixtures("mwaa_constraints")
def test_a_dev_tool_that_would_move_a_pin_of_what_mwaa_runs_is_named_and_the_pin_kept(
    tmp_path: Path, pins: dict[str, str]
) -> None:
    settings = small_project(tmp_path / "p", ["pyyaml"], ["pyyaml<6"])
    python = str(settings.root / ".venv" / "bin" / "python")

    with pytest.raises(InstallError) as raised:
        local_venv.install(settings, UV, python, "dev")

    assert str(raised.value).startswith(
        "pyproject.toml [dependency-groups] dev: `pyyaml<6` cannot be installed beside MWAA's"
        f" pins for Airflow {OLDEST} ("
    )
    assert str(raised.value).endswith("); MWAA's pins are kept: loosen or remove it")
    held = local_venv.installed(python, ["pyyaml"])
    assert held.versions["pyyaml"] == pins["pyyaml"]


def test_the_check_names_a_package_mwaa_runs_at_another_version() -> None:
    held = local_venv.Installed(
        {"pyyaml": "6.0.1", "ruff": "0.17.6", "six": "1.17.0"}, frozenset({"pyyaml", "six"})
    )
    report = local_venv.compare(held, {"pyyaml": "6.0.2", "ruff": "0.5.5", "six": "1.17.0"})
    assert report.matching == 1
    assert report.runtime == ["pyyaml 6.0.1 here, MWAA's pin 6.0.2"]
    assert report.dev_only == ["ruff 0.17.6 here, MWAA's pin 0.5.5"]


def locked(settings: config.Settings, *pins: str) -> None:
    (settings.root / local_venv.TOOLS_LOCK).write_text("".join(f"{pin}\n" for pin in pins))


@pytest.mark.usefixtures("mwaa_constraints")
def test_the_tools_install_at_the_locks_versions_over_airflows_test_pins(
    tmp_path: Path, pins: dict[str, str]
) -> None:
    settings = small_project(tmp_path / "p", ["pyyaml"], ["ruff>=0.15"])
    locked(settings, "ruff==0.15.0", "pyyaml==6.0.1")
    python = str(settings.root / ".venv" / "bin" / "python")

    held = local_venv.install(settings, UV, python, "dev")

    assert held is not None
    assert held.versions["ruff"] == "0.15.0"  # not the newest, nor Airflow's test pin
    assert held.versions["pyyaml"] == pins["pyyaml"]  # what MWAA runs keeps MWAA's pin


@pytest.mark.usefixtures("mwaa_constraints")
def test_the_deploys_own_tools_install_at_the_locks_versions(tmp_path: Path) -> None:
    settings = small_project(tmp_path / "p", [], [])
    locked(settings, "packaging==24.0")
    python = str(settings.root / ".venv" / "bin" / "python")

    local_venv.install(settings, UV, python, "deploy")

    assert local_venv.installed(python, ["packaging"]).versions["packaging"] == "24.0"


@pytest.mark.usefixtures("mwaa_constraints")
def test_a_lock_the_dev_group_no_longer_allows_says_to_run_make_lock(tmp_path: Path) -> None:
    settings = small_project(tmp_path / "p", ["pyyaml"], ["ruff>=0.16"])
    locked(settings, "ruff==0.15.0")
    python = str(settings.root / ".venv" / "bin" / "python")

    with pytest.raises(InstallError) as raised:
        local_venv.install(settings, UV, python, "dev")

    assert str(raised.value) == (
        "tools.lock pins ruff==0.15.0, which the dev group's `ruff>=0.16` (pyproject.toml)"
        " does not allow: run make lock"
    )


@pytest.mark.usefixtures("mwaa_constraints")
def test_make_lock_writes_the_tools_and_the_deploys_own_never_what_only_airflow_needs(
    tmp_path: Path,
) -> None:
    settings = small_project(tmp_path / "p", ["pyyaml"], ["ruff>=0.15"])
    locked(settings, "ruff==0.15.0")

    path = tools_lock.refresh(settings, UV)

    lock = local_venv.locked_tools(settings.root)
    assert path == settings.root / local_venv.TOOLS_LOCK
    assert set(lock) == {"ruff", "packaging"}  # pyyaml: MWAA's pin holds it
    assert lock["ruff"] != "0.15.0"  # resolved afresh, not from the old lock


@pytest.mark.usefixtures("mwaa_constraints")
def test_make_lock_names_the_uv_that_wrote_it_which_make_installs_and_no_venv_does(
    tmp_path: Path,
) -> None:
    settings = small_project(tmp_path / "p", [], [])
    version = subprocess.run([UV, "--version"], capture_output=True, text=True).stdout.split()[1]

    path = tools_lock.refresh(settings, UV)

    assert f"\nuv=={version}\n" in path.read_text()
    assert "uv" not in local_venv.locked_tools(settings.root)
