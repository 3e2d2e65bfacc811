"""MWAA's Python on this machine, wherever the usual managers keep it, for this project only.

MWAA runs each Airflow version on one Python (3.12 from Airflow 2.11 on). uv looks on PATH
and among its own managed Pythons, but pyenv's shims answer only for the versions pyenv has
selected: a Python 3.12 that `pyenv install 3.12` put in its versions folder stays out of
sight until someone selects it, and selecting it globally changes every other project's
Python. So this looks in pyenv's versions folder too, and hands uv the interpreter's own
path: the venv runs it, nothing else does.

    python3 -m mwaa_deploy.local.find_python --uv UV --airflow 3.3.1 3.12 .venv

makes the venv (`make install` and every target that needs .venv run this first). Where the
Python is nowhere, uv may still download it; if that fails too, uv's own error is shown,
then one line: the Pythons found, and the command that installs MWAA's with the manager
this machine has.

Standard library only, and no syntax newer than the oldest python3 it may run on: it runs
before .venv exists, on whatever python3 the machine has.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)$")
ASK_VERSION = "import sys; print('%d.%d.%d' % sys.version_info[:3])"


def _version_of(python: Path) -> str | None:
    """The version `python` says it is; None where it does not run (a pyenv shim of a
    version pyenv has not selected exits with an error)."""
    try:
        ran = subprocess.run(
            [str(python), "-c", ASK_VERSION], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = ran.stdout.strip()
    return answer if ran.returncode == 0 and VERSION.match(answer) else None


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _on_path(named: str = "python3.[0-9]*") -> list[tuple[str, Path]]:
    """Each python3.N on PATH that runs, first one of each name only, as a shell finds it;
    of the names `named` (a glob pattern) matches."""
    found, seen = [], set()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        for python in sorted(Path(folder or ".").glob(named)):
            if python.name in seen or not re.fullmatch(r"python3\.\d+", python.name):
                continue
            if not (python.is_file() and os.access(python, os.X_OK)):
                continue  # a folder, or no program: a shell looks further along PATH too
            seen.add(python.name)
            version = _version_of(python)
            if version:
                found.append((version, python))
    return found


def pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def _managed(folder: Path, pattern: str) -> list[tuple[str, Path]]:
    """(version, interpreter) of the CPythons a manager keeps in `folder`, one a folder
    named by its version as `pattern` (a regular expression) spells it."""
    found = []
    for home in sorted(folder.glob("*")) if folder.is_dir() else []:
        named = re.fullmatch(pattern, home.name)
        if named:
            major_minor = ".".join(named.group(1).split(".")[:2])
            python = home / "bin" / f"python{major_minor}"
            if python.is_file():
                found.append((named.group(1), python))
    return found


def _uv_folder(uv: str) -> Path | None:
    """Where uv keeps the Pythons it installed, as uv says (its settings decide)."""
    try:
        ran = subprocess.run([uv, "python", "dir"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(ran.stdout.strip()) if ran.returncode == 0 and ran.stdout.strip() else None


def candidates(uv: str, named: str = "python3.[0-9]*") -> list[tuple[str, str, Path]]:
    """(where, version, interpreter) of every CPython found: PATH (of the names `named`
    matches), pyenv's versions folder, uv's managed Pythons, in that order."""
    found = [("on PATH", version, python) for version, python in _on_path(named)]
    found += [
        ("in pyenv", version, python)
        for version, python in _managed(pyenv_root() / "versions", r"(\d+\.\d+\.\d+)")
    ]
    uv_folder = _uv_folder(uv)
    if uv_folder is not None:
        found += [
            ("from uv", version, python)
            for version, python in _managed(uv_folder, r"cpython-(\d+\.\d+\.\d+)-.*")
        ]
    return found


def find(wanted: str, uv: str) -> Path | None:
    """The interpreter of Python `wanted` (such as 3.12) to build the venv with: the first
    place that has it, its newest patch release there, as it runs. On PATH only the python3.N
    of its name is asked: a pyenv shim of a version pyenv has not selected answers through a
    chain of shell scripts, and PATH often holds one of every version."""
    found = candidates(uv, named=f"python{wanted}")
    for place in ("on PATH", "in pyenv", "from uv"):
        matching = [
            (version, python)
            for where, version, python in found
            if where == place and version.startswith(f"{wanted}.")
        ]
        for version, python in sorted(matching, key=lambda pair: _key(pair[0]), reverse=True):
            if place == "on PATH" or _version_of(python) == version:
                return python
    return None


def interpreter(wanted: str, uv: str) -> str:
    """What to give `uv venv --python` for Python `wanted`: the interpreter found here, or
    the version, for uv to look again and perhaps download."""
    return str(find(wanted, uv) or wanted)


def install_command(wanted: str) -> str:
    """How to install Python `wanted` with the manager this machine has."""
    if shutil.which("pyenv") or (pyenv_root() / "versions").is_dir():
        return f"pyenv install {wanted}"
    if shutil.which("uv"):
        return f"uv python install {wanted}"
    if shutil.which("brew"):
        return f"brew install python@{wanted}"
    if shutil.which("apt-get") and _apt_has(f"python{wanted}"):
        return f"sudo apt-get install python{wanted}"
    if shutil.which("dnf"):
        return f"sudo dnf install python{wanted}"
    return f"install Python {wanted} from python.org"


def _apt_has(package: str) -> bool:
    """Whether apt can install `package`: Debian 12 and Ubuntu 22.04 have no python3.12."""
    try:
        policy = subprocess.run(
            ["apt-cache", "policy", package], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Candidate:" in policy.stdout and "Candidate: (none)" not in policy.stdout


def not_found(wanted: str, airflow: str, found: list[tuple[str, str, Path]]) -> str:
    """The one line that says MWAA's Python is nowhere here, and how to install it."""
    places: dict[str, list[str]] = {}
    for where, version, _ in found:
        if version not in places.setdefault(where, []):
            places[where].append(version)
    seen = "; ".join(
        f"{', '.join(sorted(versions, key=_key))} {where}" for where, versions in places.items()
    )
    command = install_command(wanted)
    how = command if command.startswith("install ") else f"install it: {command}"
    return (
        f"Python {wanted}, which MWAA runs Airflow {airflow} on, is not on this machine"
        f" (found: {seen or 'no other Python'}) and uv could not download it (above);"
        f" {how}, then run the same make command again"
    )


def make_venv(wanted: str, airflow: str, venv: str, uv: str) -> int:
    """Make `venv` on Python `wanted`; 0, or 1 with uv's error and the line that says why."""
    python = find(wanted, uv)
    # Not found here: uv looks again, and may download it (its managed Pythons).
    made = subprocess.run(
        [uv, "venv", "--quiet", "--python", str(python or wanted), venv],
        stderr=subprocess.PIPE,
        text=True,
    )
    if made.returncode == 0:
        return 0
    sys.stderr.write(made.stderr)
    if python is None:
        print(not_found(wanted, airflow, candidates(uv)), file=sys.stderr)
    else:
        print(f"uv cannot make {venv} with {python} (above)", file=sys.stderr)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uv", default="uv", help="the uv to make the venv with")
    parser.add_argument("--airflow", required=True, help="the Airflow version MWAA runs")
    parser.add_argument("python", help="MWAA's Python for it, such as 3.12")
    parser.add_argument("venv", help="the venv to make")
    arguments = parser.parse_args()
    return make_venv(arguments.python, arguments.airflow, arguments.venv, arguments.uv)


if __name__ == "__main__":
    sys.exit(main())
