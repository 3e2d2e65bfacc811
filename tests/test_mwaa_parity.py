"""What runs locally is what MWAA runs (DESIGN): the baked venv holds MWAA's pins, a check
names any package that does not, and `make upgrade-check` reports an upgrade's blockers."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import (
    MWAA_CONSTRAINTS,
    NEWEST,
    OLDEST,
    VENVS,
    bake,
    make,
    user_environment,
)

# Packages the baked DAGs and the deploy run with on MWAA, pinned by MWAA's files.
RUN_WITH = ("apache-airflow", "apache-airflow-providers-dbt-cloud", "boto3", "pendulum")


def pins(version: str, *names: str) -> dict[str, str]:
    found = {}
    for name in names or ("airflow_constraints.txt", "mwaa_essential_constraints.txt"):
        for line in (MWAA_CONSTRAINTS / version / name).read_text().splitlines():
            if "==" in line and not line.startswith("#"):
                package, pinned = line.split("==", 1)
                found[package.strip().lower().replace("_", "-")] = pinned.strip()
    return found


def freeze(version: str) -> dict[str, str]:
    """`pip freeze` of the baked venv of `version`, through uv (the venv has no pip)."""
    python = VENVS / f"airflow-{version}" / "bin" / "python"
    listed = subprocess.run(
        [shutil.which("uv") or "uv", "pip", "freeze", "--python", str(python)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in listed.splitlines()
        if "==" in line
    }


@pytest.mark.parametrize("version", [NEWEST, OLDEST])
def test_the_baked_venv_holds_mwaas_pins(version: str, output: Path) -> None:
    installed, pinned = freeze(version), pins(version)
    assert {name: installed.get(name) for name in RUN_WITH} == {
        name: pinned[name] for name in RUN_WITH
    }
    essential = pins(version, "mwaa_essential_constraints.txt")
    assert {n: v for n, v in installed.items() if n in essential} == {
        n: essential[n] for n in installed if n in essential
    }
    project = bake(output, airflow_version=version)
    python = VENVS / f"airflow-{version}" / "bin" / "python"
    check = subprocess.run(
        [str(python), "-m", "mwaa_deploy", "check-pins"],
        cwd=project,
        env=user_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"as MWAA pins them for Airflow {version}." in check.stdout
    assert "differs:" not in check.stdout


def test_check_pins_names_a_package_mwaa_runs_at_another_version(
    output: Path, tmp_path: Path
) -> None:
    project = bake(output)
    other = shutil.copytree(MWAA_CONSTRAINTS, tmp_path / "constraints")
    constraints = other / NEWEST / "airflow_constraints.txt"
    here = freeze(NEWEST)["pendulum"]
    text = constraints.read_text()
    assert f"\npendulum=={here}\n" in text
    constraints.write_text(text.replace(f"\npendulum=={here}\n", "\npendulum==2.0.0\n"))
    python = VENVS / f"airflow-{NEWEST}" / "bin" / "python"
    check = subprocess.run(
        [str(python), "-m", "mwaa_deploy", "check-pins"],
        cwd=project,
        env=user_environment() | {"MWAA_CONSTRAINTS": str(other)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 1
    assert f"  differs: pendulum {here} here, MWAA's pin 2.0.0" in check.stdout.splitlines()
    assert check.stderr.startswith("1 package(s) MWAA runs differ from MWAA's pins here")


def upgrade_check(
    output: Path, version: str, edit: Callable[[Path], None] = lambda _: None
) -> subprocess.CompletedProcess[str]:
    """`make upgrade-check TO=<newest>` on the example project of `version` (`edit`ed). The
    checks from one version share a scratch venv, kept between runs as a user's is (from
    another version's project, a check installs what differs); never the baked venv of the
    newest, which other tests run while a check would install its own tools there."""
    project = bake(output, airflow_version=version)
    edit(project)
    scratch = str(VENVS / f"upgrade-check-from-{version}-to-{NEWEST}")
    return make(project, "upgrade-check", airflow_version=version, TO=NEWEST, UPGRADE_VENV=scratch)


def test_upgrade_check_from_2_10_says_mwaa_upgrades_to_3_from_2_11_only(output: Path) -> None:
    result = upgrade_check(output, OLDEST)
    lines = result.stdout.splitlines()
    assert result.returncode != 0, result.stdout + result.stderr  # make's 2 for the 1
    assert "MWAA's upgrade path: BLOCKED" in lines
    assert (
        f"  blocker: MWAA has no in-place upgrade from {OLDEST} to Airflow 3: upgrade to 2.11.2"
        f" first (make upgrade-check TO=2.11.2), then to {NEWEST}"
    ) in lines
    # The rest is still checked, in the same report.
    for section in ("requirements.txt", "DAG integrity on the target"):
        assert f"{section}: ok" in lines, result.stdout
    assert lines[-1] == f"Upgrade to {NEWEST} blocked: 1 blocker(s) above."


def test_upgrade_check_from_2_11_to_3_passes_the_example_with_ruffs_suggestions(
    output: Path,
) -> None:
    result = upgrade_check(output, "2.11.2")
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MWAA's upgrade path: ok" in lines
    for section in ("requirements.txt", "DAG integrity on the target"):
        assert f"{section}: ok" in lines, result.stdout
    assert "ruff's Airflow 3 migration rules (AIR3): ok" in lines
    assert any(": AIR311 `airflow.DAG`" in line for line in lines), result.stdout
    assert lines[-1] == f"Nothing blocks the upgrade to {NEWEST}."


def test_upgrade_check_blocks_a_dag_airflow_3_cannot_load(output: Path) -> None:
    """The README's example DAG, scheduled the Airflow 2 way: fine on 2.11, not on 3."""

    def add_legacy_dag(project: Path) -> None:
        guide = (project / "README.md").read_text().split("### Writing a new DAG")[1]
        example = guide.split("```python\n")[1].split("```")[0]
        legacy = example.replace("schedule=[orders],", 'schedule_interval="@daily",')
        assert legacy != example
        (project / "bucket_contents" / "dags" / "orders.py").write_text(legacy)

    result = upgrade_check(output, "2.11.2", add_legacy_dag)
    lines = result.stdout.splitlines()
    assert result.returncode != 0, result.stdout + result.stderr
    assert "MWAA's upgrade path: ok" in lines
    assert "DAG integrity on the target: BLOCKED" in lines, result.stdout
    assert any(
        line.startswith("  blocker: bucket_contents/dags/orders.py:")
        and "AIR301 `schedule_interval` is removed in Airflow 3.0" in line
        for line in lines
    ), result.stdout
    assert lines[-1].startswith(f"Upgrade to {NEWEST} blocked: ")
