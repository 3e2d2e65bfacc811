"""Requirements pip resolved for MWAA lately, remembered by all that pip was given, so that
check-requirements run again and again on an unchanged requirements.txt (and each deploy of
it) does not wait seconds for pip to read the index again.

A pass alone is remembered: a failure is resolved again, for pip to say it in its words.
A pass counts for PASS_KEPT, as the index may publish or yank a release meanwhile. A file
that reads a folder (--find-links, a package's own path or URL) is resolved every time: the
folder may change at any moment.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mwaa_deploy.config import Settings
    from mwaa_deploy.instance.pip_requirements import Line

# An hour: long enough for a day's edit-and-check loop, short enough that a release the
# index publishes or yanks meanwhile is soon seen.
PASS_KEPT = 3600.0  # seconds
DryRun = Callable[..., subprocess.CompletedProcess[str]]


def folder() -> Path:
    """Where passes are remembered: the user's cache, as XDG says."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mwaa-deploy" / "resolved-requirements"


def recent_pass_or(
    dry_run: DryRun,
    lines: list[Line],
    constraints: list[Path],
    settings: Settings,
    download: Path | None,
    offline: bool,
    built: str,
) -> subprocess.CompletedProcess[str]:
    """`dry_run`'s pip resolution of `lines` against `constraints` (pip_requirements.py); a
    pass of the same within PASS_KEPT stands for it. pip's download (`download`) and its
    offline install run every time: the one leaves wheels, the other reads them. `built`: a
    folder of wheels built for this resolution (sdist_pins.py), which pip reads too."""
    key = None if download or offline else _key(lines, constraints, settings, built)
    if key is None:
        return dry_run(lines, constraints, settings, download, offline, built)
    remembered = folder() / key
    try:
        if time.time() - remembered.stat().st_mtime < PASS_KEPT:
            return subprocess.CompletedProcess(["pip"], 0, "")
    except OSError:
        pass  # never passed, or not lately: ask pip
    result = dry_run(lines, constraints, settings, download, offline, built)
    if result.returncode == 0:
        try:
            remembered.parent.mkdir(parents=True, exist_ok=True)
            remembered.touch()
        except OSError:
            pass  # a cache that cannot be written costs the next run pip's time, no more
    return result


def _key(lines: list[Line], constraints: list[Path], settings: Settings, built: str) -> str | None:
    """A digest of all that pip is given, or None where it reads a folder."""
    if (built and any(Path(built).iterdir())) or any(_reads_a_folder(line.text) for line in lines):
        return None
    try:
        pip = metadata.version("pip")
    except metadata.PackageNotFoundError:
        return None  # pip's own run says what is missing
    given = {
        "python": sys.executable,
        "pip": pip,
        "target": [settings.airflow_version, settings.python_version],
        "lines": [line.text for line in lines],
        "constraints": [_digest(Path(file)) for file in constraints],
        "variables": sorted((k, v) for k, v in os.environ.items() if k.startswith("PIP_")),
        "configuration": [_digest(path) for path in _pip_configuration()],
    }
    return hashlib.sha256(json.dumps(given).encode()).hexdigest()


def _pip_configuration() -> list[Path]:
    """Where pip reads its configuration on Linux and macOS (pip's documentation,
    "Configuration"): a change there may change what pip resolves."""
    home, environ = Path.home(), os.environ
    return [
        *(
            Path(d) / "pip" / "pip.conf"
            for d in environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
        ),
        Path("/etc/pip.conf"),
        Path(sys.prefix) / "pip.conf",
        home / ".pip" / "pip.conf",
        Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf",
        home / "Library" / "Application Support" / "pip" / "pip.conf",
        Path(environ.get("PIP_CONFIG_FILE", os.devnull)),
    ]


def _reads_a_folder(text: str) -> bool:
    """Whether a line makes pip read a folder or a URL: --find-links, `name @ url`, a path."""
    return text.startswith(("-f", "--find-links")) or "@" in text or text.startswith((".", "/"))


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""  # no such file: pip reads none there either
