"""Refresh the tools.lock that a bake of each Airflow version gets: bake it, run the baked
project's `make lock` (the newest tools its pyproject.toml allows, beside MWAA's pins for
that version), keep the result in templates/tools-lock/<version>.lock.

`make lock` runs this after locking the template's own requirements-dev.txt; review the
diff as any other change.

    python -m tests.tools_locks
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.helpers import AIRFLOW_VERSIONS, TEMPLATE, bake, user_environment

LOCKS = TEMPLATE / "templates" / "tools-lock"


def refresh(version: str) -> None:
    print(f"Airflow {version}: make lock in a bake", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        project = bake(Path(scratch), airflow_version=version)
        done = subprocess.run(["make", "lock"], cwd=project, env=user_environment(), check=False)
        if done.returncode:
            sys.exit(f"Airflow {version}: make lock failed (exit {done.returncode})")
        shutil.copyfile(project / "tools.lock", LOCKS / f"{version}.lock")


if __name__ == "__main__":
    for airflow_version in AIRFLOW_VERSIONS:
        refresh(airflow_version)
