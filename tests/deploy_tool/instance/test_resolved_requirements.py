"""check-requirements run again and again on an unchanged requirements.txt (and each deploy of
it) does not ask pip to resolve it again for a while: a pass is remembered by all that pip was
given; a failure, a change to any of it, or an hour, and pip resolves it again.

pip resolves for real; the tests count its runs.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mwaa_deploy.__main__ import main
from mwaa_deploy.instance import pip_requirements, resolved_requirements
from tests.deploy_tool.helpers import CONSTRAINTS_LINE, SETTINGS
from tests.helpers import MWAA_CONSTRAINTS

REQUIREMENTS = f"{CONSTRAINTS_LINE}\nsix\n"


@pytest.fixture
def pip_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The requirement lines of each pip resolution from now on, the cache of passes empty."""
    monkeypatch.setattr(resolved_requirements, "folder", lambda: tmp_path / "resolved")
    runs: list[list[str]] = []
    dry_run = pip_requirements._pip_dry_run

    def counted(lines: list[pip_requirements.Line], *args: Any) -> Any:
        runs.append([line.text for line in lines])
        return dry_run(lines, *args)

    monkeypatch.setattr(pip_requirements, "_pip_dry_run", counted)
    return runs


def check(requirements: str) -> int:
    """`make check-requirements` on the project, its requirements.txt now `requirements`."""
    Path("bucket_contents/requirements.txt").write_text(requirements)
    return main(["check-requirements"])


def test_check_requirements_again_on_an_unchanged_file_asks_pip_once(
    project: Callable[..., Path], pip_runs: list[list[str]]
) -> None:
    project(requirements=REQUIREMENTS)
    assert (check(REQUIREMENTS), check(REQUIREMENTS), check(REQUIREMENTS)) == (0, 0, 0)
    assert pip_runs == [["six"]]


def change(what: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Change one thing pip is given: a line, MWAA's constraints, pip's settings."""
    if what == "a-requirement":
        Path("bucket_contents/requirements.txt").write_text(f"{REQUIREMENTS}cowsay\n")
    elif what == "mwaa-constraints":
        copy = tmp_path / "constraints"
        shutil.copytree(MWAA_CONSTRAINTS, copy)
        monkeypatch.setenv("MWAA_CONSTRAINTS", str(copy))
        pins = copy / SETTINGS.airflow_version / "airflow_constraints.txt"
        pins.write_text(pins.read_text() + "# MWAA moved a pin\n")
    elif what == "a-pip-variable":
        monkeypatch.setenv("PIP_TIMEOUT", "61")
    else:  # pip's configuration file, named by PIP_CONFIG_FILE from the start, says more
        configuration = Path(os.environ["PIP_CONFIG_FILE"])
        configuration.write_text(configuration.read_text() + "timeout = 61\n")


@pytest.mark.parametrize(
    "what", ["a-requirement", "mwaa-constraints", "a-pip-variable", "pips-configuration-file"]
)
def test_a_change_to_what_pip_is_given_is_resolved_again(
    project: Callable[..., Path],
    pip_runs: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    what: str,
) -> None:
    configuration = tmp_path / "pip.conf"
    configuration.write_text("[global]\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(configuration))
    project(requirements=REQUIREMENTS)
    assert check(REQUIREMENTS) == 0
    change(what, monkeypatch, tmp_path)
    assert main(["check-requirements"]) == 0
    assert len(pip_runs) == 2


def test_a_failure_is_resolved_again_every_time(
    project: Callable[..., Path],
    pip_runs: list[list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    failing = f"{REQUIREMENTS}cowsay==99.0\n"
    project(requirements=failing)
    assert (check(failing), check(failing)) == (1, 1)
    assert "no version matching `cowsay==99.0`" in capsys.readouterr().err
    assert [run for run in pip_runs if "cowsay==99.0" in run] == [["six", "cowsay==99.0"]] * 2


def test_a_pass_older_than_an_hour_is_resolved_again(
    project: Callable[..., Path], pip_runs: list[list[str]], tmp_path: Path
) -> None:
    project(requirements=REQUIREMENTS)
    assert check(REQUIREMENTS) == 0
    long_ago = time.time() - 3601
    for remembered in (tmp_path / "resolved").iterdir():
        os.utime(remembered, (long_ago, long_ago))
    assert check(REQUIREMENTS) == 0
    assert pip_runs == [["six"]] * 2


def test_a_file_that_reads_a_folder_is_resolved_every_time(
    project: Callable[..., Path], pip_runs: list[list[str]], tmp_path: Path
) -> None:
    """A folder of wheels, or a package's own folder, may change at any moment."""
    (tmp_path / "wheels").mkdir()
    requirements = f"{REQUIREMENTS}--find-links {tmp_path / 'wheels'}\n"
    project(requirements=requirements)
    assert (check(requirements), check(requirements)) == (0, 0)
    assert len(pip_runs) == 2
