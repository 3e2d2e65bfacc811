"""tools.lock: the exact versions of the tools this project installs that MWAA does not run.

MWAA's constraint files pin what MWAA runs (Airflow, the providers, boto3, ...). They do not
pin the tools that only tests, linters and deploys use (pytest, ruff, moto, pip, ...), so
without a lock a new release of one of them could turn every pull request red overnight.
`make install` installs them at the lock's versions: over Airflow's own pins of its test
tools, never over a pin of what MWAA runs. `make lock` resolves them afresh, at the newest
versions pyproject.toml allows, and writes the lock: a reviewed change, as Renovate's
updates are.

Standard library only, as local_venv's first step.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from mwaa_deploy import config
from mwaa_deploy.exceptions import InstallError
from mwaa_deploy.local import local_venv
from mwaa_deploy.local.find_python import interpreter

HEADER = (
    "# The exact versions of the tools this project installs that MWAA does not run, and of\n"
    "# the deploy's own (which need no MWAA constraint file). Written by `make lock`, which\n"
    "# resolves them afresh; edit pyproject.toml's dependency groups, not this file.\n"
)


def refresh(settings: config.Settings, uv: str) -> Path:
    """Resolve the dev group afresh in a scratch venv, as make install does without a lock,
    and write the versions of everything the deploy group needs or only the tools need."""
    with tempfile.TemporaryDirectory(prefix="tools-lock-") as scratch:
        venv = Path(scratch) / "venv"
        python = interpreter(settings.python_version, uv)
        made = subprocess.run(
            [uv, "venv", "--quiet", "--python", python, str(venv)],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode:
            raise InstallError(f"cannot make a scratch venv to lock in: {made.stderr.strip()}")
        python = str(venv / "bin" / "python")
        held = local_venv.install(settings, uv, python, "dev", locked=False)
        assert held is not None  # the dev group always reports what it installed
        deploy = local_venv.installed(python, local_venv.groups(settings.root)["deploy"])
    locked = {
        name: version
        for name, version in held.versions.items()
        if name in deploy.runtime or name not in held.runtime
    }
    # The uv that wrote the lock is the one make installs where uv is not on PATH.
    locked[local_venv.UV] = _version(uv)
    path = settings.root / local_venv.TOOLS_LOCK
    path.write_text(HEADER + "".join(f"{n}=={v}\n" for n, v in sorted(locked.items())))
    return path


def _version(uv: str) -> str:
    """uv's version, from `uv --version` ("uv 0.13.9 (...)")."""
    said = subprocess.run([uv, "--version"], capture_output=True, text=True, check=False)
    if said.returncode or len(said.stdout.split()) < 2:
        raise InstallError(f"cannot read the version of {uv}: {said.stderr.strip()}")
    return said.stdout.split()[1]
