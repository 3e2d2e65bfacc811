"""MWAA's Python, found where the usual managers keep it and selected for .venv alone
(local/find_python.py, which `make` runs before .venv exists). Real interpreters, linked
into made-up PATH, pyenv and uv folders; real uv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mwaa_deploy.local import find_python
from tests.helpers import NEWEST, VENVS

UV = shutil.which("uv") or "uv"
# A Python 3.12 (MWAA's for the newest Airflow): the one its baked venv runs.
PYTHON_312 = Path(os.path.realpath(VENVS / f"airflow-{NEWEST}" / "bin" / "python"))
# Another Python, as a machine has besides: the one running these tests (3.11).
OTHER = Path(os.path.realpath(sys.executable))


def version_of(python: Path) -> str:
    said = subprocess.run(
        [str(python), "-c", find_python.ASK_VERSION], capture_output=True, text=True, check=True
    )
    return said.stdout.strip()


def linked(folder: Path, name: str, python: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).symlink_to(python)
    return folder / name


def script(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"#!/bin/sh\n{text}\n")
    (folder / name).chmod(0o755)


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine with another Python on PATH, beside pyenv's shim of a Python 3.12 that
    pyenv has not selected; no Python in pyenv's or uv's folders yet, and no downloads."""
    other = version_of(OTHER)
    minor = ".".join(other.split(".")[:2])
    bin_folder = tmp_path / "bin"
    linked(bin_folder, f"python{minor}", OTHER)
    # What pyenv's shim answers for a version it has installed but not selected.
    refusal = "echo 'pyenv: python3.12: command not found' >&2; exit 127"
    script(tmp_path / "shims", "python3.12", refusal)
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_folder), str(tmp_path / "shims")]))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "uv-pythons"))
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    monkeypatch.delenv("PYENV_VERSION", raising=False)
    return tmp_path


def test_mwaas_python_in_pyenvs_versions_is_found_though_pyenv_has_not_selected_it(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = version_of(PYTHON_312)
    python = linked(machine / "pyenv" / "versions" / version / "bin", "python3.12", PYTHON_312)
    monkeypatch.setenv("PYENV_ROOT", str(machine / "pyenv"))

    assert find_python.find("3.12", UV) == python


def test_mwaas_python_among_uvs_own_pythons_is_found(machine: Path) -> None:
    version = version_of(PYTHON_312)
    home = machine / "uv-pythons" / f"cpython-{version}-linux-x86_64-gnu" / "bin"
    python = linked(home, "python3.12", PYTHON_312)

    assert find_python.find("3.12", UV) == python


def test_mwaas_python_on_path_comes_before_the_managers_folders(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = version_of(PYTHON_312)
    linked(machine / "pyenv" / "versions" / version / "bin", "python3.12", PYTHON_312)
    monkeypatch.setenv("PYENV_ROOT", str(machine / "pyenv"))
    on_path = linked(machine / "first", "python3.12", PYTHON_312)
    monkeypatch.setenv("PATH", os.pathsep.join([str(machine / "first"), os.environ["PATH"]]))

    assert find_python.find("3.12", UV) == on_path


def test_of_the_pythons_on_path_only_the_one_of_mwaas_version_is_asked(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asking a Python its version runs it, and pyenv's shim of a version it has not
    selected is a chain of shell scripts: the other versions on PATH are left alone."""
    asked = machine / "asked"
    for minor in ("3.9", "3.10", "3.13"):
        script(machine / "shims", f"python{minor}", f"echo {minor} >> {asked}; exit 127")
    on_path = linked(machine / "first", "python3.12", PYTHON_312)
    monkeypatch.setenv("PATH", os.pathsep.join([str(machine / "first"), os.environ["PATH"]]))

    assert find_python.find("3.12", UV) == on_path
    assert not asked.exists()


def test_a_folder_on_path_named_as_mwaas_python_does_not_hide_the_python_after_it(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (machine / "first" / "python3.12").mkdir(parents=True)
    on_path = linked(machine / "then", "python3.12", PYTHON_312)
    folders = [str(machine / "first"), str(machine / "then"), os.environ["PATH"]]
    monkeypatch.setenv("PATH", os.pathsep.join(folders))

    assert find_python.find("3.12", UV) == on_path


def test_the_venv_runs_the_python_found_and_nothing_is_selected_beyond_it(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = version_of(PYTHON_312)
    linked(machine / "pyenv" / "versions" / version / "bin", "python3.12", PYTHON_312)
    monkeypatch.setenv("PYENV_ROOT", str(machine / "pyenv"))
    before = dict(os.environ)

    assert find_python.make_venv("3.12", NEWEST, str(machine / ".venv"), UV) == 0

    assert version_of(machine / ".venv" / "bin" / "python") == version
    assert dict(os.environ) == before and not (machine / ".python-version").exists()


@pytest.mark.parametrize(
    ("manager", "advice"),
    [
        ("pyenv", "install it: pyenv install 3.12"),
        ("uv", "install it: uv python install 3.12"),
        ("brew", "install it: brew install python@3.12"),
        ("", "install Python 3.12 from python.org"),
    ],
)
def test_without_mwaas_python_uvs_error_then_one_line_the_pythons_found_and_the_install_command(
    machine: Path,
    manager: str,
    advice: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = version_of(OTHER)
    found = f"{other} on PATH"
    if manager == "pyenv":
        minor = ".".join(other.split(".")[:2])
        linked(machine / "pyenv" / "versions" / other / "bin", f"python{minor}", OTHER)
        monkeypatch.setenv("PYENV_ROOT", str(machine / "pyenv"))
        found += f"; {other} in pyenv"
    elif manager:
        script(machine / "bin", manager, "exit 0")

    assert find_python.make_venv("3.12", NEWEST, str(machine / ".venv"), UV) == 1

    said = capsys.readouterr().err.splitlines()
    assert said[0].startswith("error: ") and len(said) > 1, said  # uv's own, first
    assert said[-1] == (
        f"Python 3.12, which MWAA runs Airflow {NEWEST} on, is not on this machine"
        f" (found: {found}) and uv could not download it (above); {advice}, then run the"
        " same make command again"
    )


@pytest.mark.parametrize(
    ("policy", "advice"),
    [
        ("python3.12:\n  Installed: (none)\n  Candidate: 3.12.3-1\n", "sudo apt-get install"),
        ("", "install Python 3.12 from python.org"),  # Debian 12, Ubuntu 22.04: no such package
    ],
)
def test_apt_is_advised_only_where_it_has_mwaas_python(
    machine: Path,
    policy: str,
    advice: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    script(machine / "bin", "apt-get", "exit 0")
    script(machine / "bin", "apt-cache", f"printf '{policy}'")

    assert find_python.make_venv("3.12", NEWEST, str(machine / ".venv"), UV) == 1

    assert advice in capsys.readouterr().err.splitlines()[-1]
