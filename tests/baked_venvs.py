"""Build the baked projects' venvs, one per tested Airflow version, before the tests run.

`make test` runs this first, so that the slow part shows its progress (uv's own) instead of
running silently inside a test. A venv that is up to date costs a second.

    python -m tests.baked_venvs
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import NEWEST, OLDEST, VENVS, bake, user_environment


def build(version: str) -> None:
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
    print(f"Airflow {version}: ready in {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    for airflow_version in (NEWEST, OLDEST):
        build(airflow_version)
