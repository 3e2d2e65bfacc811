"""Build the baked projects' venvs, one per tested Airflow version, before the tests run.

`make test` runs this first, so that the slow part shows its progress (uv's own) instead of
running silently inside a test. A venv that is up to date costs a few seconds.

Each venv gets its bytecode written once here: where PYTHONDONTWRITEBYTECODE is set (as in
many CI containers), every test's Python would otherwise compile Airflow's modules again,
about 2.5 s of each baked `make test`.

    python -m tests.baked_venvs
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import NEWEST, OLDEST, VENVS, bake, user_environment


def build(version: str) -> subprocess.Popen[bytes]:
    """Install the venv of `version`; its bytecode is compiled in the background, while the
    next venv installs (compiling keeps the cores busy, installing mostly the disk)."""
    venv = VENVS / f"airflow-{version}"
    print(f"Airflow {version}: {venv} (make install of a baked project, with uv)", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        project = bake(Path(scratch), airflow_version=version)
        done = subprocess.run(
            ["make", "install", f"VENV={venv}"], cwd=project, env=user_environment(), check=False
        )
    if done.returncode:
        sys.exit(f"Airflow {version}: make install failed (exit {done.returncode})")
    print(f"Airflow {version}: installed in {time.monotonic() - started:.0f} s", flush=True)
    return compiling_bytecode(venv)


def compiling_bytecode(venv: Path) -> subprocess.Popen[bytes]:
    """The venv's modules being compiled: a few seconds when none changed since the last time."""
    # Not checked, and quiet: a package may ship a file no import reaches that does not
    # compile, or warns (a template, an old Python's test); imports need only the rest.
    python = venv / "bin" / "python"
    return subprocess.Popen(
        [python, "-W", "ignore", "-m", "compileall", "-qq", "-j", "0", venv / "lib"]
    )


if __name__ == "__main__":
    started = time.monotonic()
    compiles = [build(airflow_version) for airflow_version in (NEWEST, OLDEST)]
    for compiled in compiles:
        compiled.wait()
    print(f"Both venvs ready, bytecode compiled, in {time.monotonic() - started:.0f} s", flush=True)
