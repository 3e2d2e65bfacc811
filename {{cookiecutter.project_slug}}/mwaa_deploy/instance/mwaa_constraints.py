"""MWAA's own pins for an Airflow version: the two files its image installs with.

MWAA's images (github.com/aws/amazon-mwaa-docker-images, `images/airflow/<version>/etc/`)
install every environment with `airflow_constraints.txt` (Airflow's constraints for that
version and MWAA's Python) and `mwaa_essential_constraints.txt` (pins a requirements.txt
cannot change: Airflow, Flask-AppBuilder, Celery, ...). The project holds its own Airflow
version's in `mwaa-constraints/<version>/`, so install, check-requirements and CI need no
network. Another version's (an upgrade check's) are read from a pinned commit of that
repository and cached once per machine. `mwaa_constraints` (MWAA_CONSTRAINTS) names a
folder laid out the same way to use instead of both, for machines that cannot reach GitHub.

Standard library only: `make install` runs this in a venv with nothing installed yet.
"""

from __future__ import annotations

import os
import re
import urllib.parse
import urllib.request
from pathlib import Path

from mwaa_deploy import config
from mwaa_deploy.exceptions import ConstraintsError

REPOSITORY = "aws/amazon-mwaa-docker-images"
# The commit of MWAA's images the pins are read from; move it when MWAA ships new images.
COMMIT = "9d2bebb5c7858e27a1c6afb20b7827840217e3a0"
URL = "https://raw.githubusercontent.com/{repository}/{commit}/images/airflow/{airflow}/etc/{name}"
AIRFLOW_CONSTRAINTS = "airflow_constraints.txt"
ESSENTIAL_CONSTRAINTS = "mwaa_essential_constraints.txt"
FILES = (AIRFLOW_CONSTRAINTS, ESSENTIAL_CONSTRAINTS)
# The project's own copies, laid out <version>/<file>.
SHIPPED = "mwaa-constraints"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def files(settings: config.Settings, airflow_version: str | None = None) -> list[Path]:
    """MWAA's two constraint files for `airflow_version` (default: the environment's),
    from the folder the setting names, else the project's copies, else from the cache,
    downloaded once."""
    version = airflow_version or settings.airflow_version
    shipped = settings.root / SHIPPED / version
    if not settings.mwaa_constraints and all((shipped / name).is_file() for name in FILES):
        return [shipped / name for name in FILES]
    if settings.mwaa_constraints:
        folder = settings.root / Path(settings.mwaa_constraints).expanduser() / version
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise ConstraintsError(
                f"{config.shown(folder)}: no {' or '.join(missing)} there, where MWAA_CONSTRAINTS"
                f" (or mwaa_constraints in pyproject.toml) says MWAA's constraints for Airflow"
                f" {version} are; copy them from {_source(version)}"
            )
        return [folder / name for name in FILES]
    folder = cache_folder() / COMMIT / version
    for name in FILES:
        if not (folder / name).is_file():
            _download(version, name, folder)
    return [folder / name for name in FILES]


def cache_folder() -> Path:
    """Where downloaded constraints are kept: the user's cache, as XDG says."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mwaa-deploy" / "mwaa-constraints"


def _source(version: str) -> str:
    return f"github.com/{REPOSITORY}/tree/{COMMIT}/images/airflow/{version}/etc"


def _download(version: str, name: str, folder: Path) -> None:
    url = URL.format(repository=REPOSITORY, commit=COMMIT, airflow=version, name=name)
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            content = answer.read()
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        host = urllib.parse.urlsplit(url).netloc
        raise ConstraintsError(
            f"cannot download MWAA's constraints for Airflow {version} from {host} ({reason});"
            f" copy images/airflow/{version}/etc of {REPOSITORY} at {COMMIT[:12]} into"
            f" <folder>/{version}/ and set MWAA_CONSTRAINTS=<folder>"
        ) from None
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.{os.getpid()}"
    partial.write_bytes(content)
    partial.replace(folder / name)  # whole or not at all, even with two downloads at once


def pins(paths: list[Path]) -> dict[str, str]:
    """Canonical package name -> the version the files pin it to (`name==version` lines)."""
    found: dict[str, str] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if match := PIN.match(line.strip()):
                found[canonical(match[1])] = match[2]
    return found


def essential_pins(settings: config.Settings, airflow_version: str | None = None) -> dict[str, str]:
    """The pins MWAA does not let requirements.txt change."""
    return pins([files(settings, airflow_version)[1]])


def canonical(name: str) -> str:
    """A package name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()
