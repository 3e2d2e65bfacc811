"""startup.sh, checked as MWAA runs it: before every Airflow component starts, in bash, for at
most five minutes, keeping the environment variables it leaves set for Airflow's processes,
except those MWAA reserves for itself.

The check: bash's own syntax check; no export of a reserved variable; then a run of the script
in a clean environment under a time limit shorter than MWAA's, with a report of the variables
it leaves set; nothing the script starts outlives the check.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mwaa_deploy import config

# MWAA stops a startup script after five minutes (STARTUP_SCRIPT_MAX_EXECUTION_TIME).
MWAA_LIMIT_SECONDS = 300
# The variables MWAA sets for itself and puts back over whatever the script sets, from
# aws/amazon-mwaa-docker-images, images/airflow/<version>/python/mwaa/config/:
# setup_environment.py `_is_protected_os_environ` (every MWAA__ variable and the names
# below), environ.py `get_essential_environ`, airflow.py `get_essential_airflow_config`.
# (PYTHONPATH is protected there too, but MWAA's documentation lets a startup script set
# it: not refused here.)
RESERVED_PREFIXES = ("MWAA__", "AIRFLOW__METRICS__")
RESERVED = frozenset(
    {
        # setup_environment.py
        "AIRFLOW_ENV_ID", "AIRFLOW_ENV_NAME", "AIRFLOW_HOME", "AIRFLOW_TASK_REVISION_ID",
        "AIRFLOW_VERSION", "AIRFLOW__AWS_MWAA__REDIRECT_URL", "JWT_PUBLIC_KEY",
        "AIRFLOW__WEBSERVER__BASE_URL", "AWS_DEFAULT_REGION", "AWS_REGION",
        "CUSTOMER_ACCOUNT_ID", "ECS_AGENT_URI", "ECS_CONTAINER_METADATA_URI",
        "ECS_CONTAINER_METADATA_URI_V4", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_EXECUTION_ENV", "PYTHONUNBUFFERED", "WATCHTOWER_VERSION",
        "USE_NON_CRITICAL_LOGGING",
        # environ.py
        "MWAA_AIRFLOW_COMPONENT", "MWAA_COMMAND",
        # airflow.py
        "AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS",
        "AIRFLOW__CELERY__WORKER_ENABLE_REMOTE_CONTROL",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE", "AIRFLOW__CORE__LOAD_EXAMPLES",
        "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS",
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR", "AIRFLOW__WEBSERVER__CONFIG_FILE",
        "AIRFLOW__WEBSERVER__COOKIE_SECURE", "AIRFLOW__WEBSERVER__SECRET_KEY",
        "AIRFLOW__API__AUTH_BACKENDS",
    }
)  # fmt: skip
# bash sets these itself in any run; they say nothing about the script.
BASH_OWN = frozenset({"PWD", "OLDPWD", "SHLVL", "_"})
EXPORT = re.compile(r"^\s*(?:export|declare\s+-\w*x\w*|typeset\s+-\w*x\w*)\s+(.*)$")
NAME = re.compile(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)(?==|\s|$)")
# prctl's option (linux/prctl.h) that makes a process adopt its descendants' orphans.
PR_SET_CHILD_SUBREAPER = 36
# How long the processes the script leaves running may take to die once killed.
STOP_SECONDS = 5.0
# The PATH of a fresh MWAA container, as far as the script is concerned.
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)  # what stops a deploy
    notes: list[str] = field(default_factory=list)  # what the run found, for the reader


def is_reserved(name: str) -> bool:
    return name in RESERVED or name.startswith(RESERVED_PREFIXES)


def report(path: Path, settings: config.Settings) -> Report:
    """Check startup.sh at `path` as MWAA runs it."""
    shown = str(config.shown(path))
    result = Report()
    syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    if syntax.returncode:
        result.problems += [
            line.replace(str(path), shown) for line in syntax.stderr.splitlines() if line.strip()
        ] or [f"{shown}: bash -n failed"]
        return result  # a script bash cannot parse is not run
    exported = reserved_exports(path.read_text(encoding="utf-8", errors="replace"))
    result.problems += [
        f"{shown}:{number}: exports {name}, which MWAA reserves for itself (and sets back over"
        " the script's value); remove it, or use a name of your own"
        for number, name in exported
    ]
    _run(path, shown, settings, result, {name for _, name in exported})
    return result


def reserved_exports(text: str) -> list[tuple[int, str]]:
    """(line, name) of every reserved variable an export (or declare -x) line names."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if match := EXPORT.match(line.split(" #")[0]):
            words = re.sub(r"=(\"[^\"]*\"|'[^']*'|\S*)", "=", match[1])
            found += [(number, name) for name in NAME.findall(words) if is_reserved(name)]
    return found


def _run(
    path: Path, shown: str, settings: config.Settings, result: Report, reported: set[str]
) -> None:
    limit = settings.startup_time_limit_seconds
    with tempfile.TemporaryDirectory(prefix="startup-check-") as scratch:
        home, out = Path(scratch) / "home", Path(scratch) / "env"
        home.mkdir()
        # A clean environment, as on a fresh MWAA container, plus what MWAA gives it.
        clean = {
            "PATH": CLEAN_PATH,
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW_VERSION": settings.airflow_version,
            "MWAA_AIRFLOW_COMPONENT": "worker",
        }
        if settings.offline_wheels:
            # An environment that installs from plugins.zip reaches no index: neither does
            # a pip the script runs here.
            clean["PIP_NO_INDEX"] = "1"
        env = shutil.which("env", path=CLEAN_PATH)
        if env is None:
            result.problems.append(f"{shown}: cannot be run here: no `env` in {CLEAN_PATH}")
            return
        with open(Path(scratch) / "output", "w+b") as output:
            started = time.monotonic()
            with _stopping_its_orphans() as left_running:
                process = subprocess.Popen(
                    ["bash", "-c", _wrapper(path.resolve(), out, env)],
                    cwd=home,
                    env=clean,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, stopped as one below
                )
                try:
                    status = process.wait(timeout=limit)
                except subprocess.TimeoutExpired:
                    status = None
                finally:
                    # What it left running in the background would outlive the check.
                    _stop_group(process.pid)
                    process.wait()
            if left_running:
                result.problems.append(
                    f"{shown}: left processes running that did not stop within"
                    f" {STOP_SECONDS:g} s of being killed ({', '.join(map(str, left_running))});"
                    " stop them, and start nothing that outlives the script"
                )
            if status is None:
                result.problems.append(
                    f"{shown}: still running after {limit:g} s here, so it was stopped; MWAA"
                    f" stops it after {MWAA_LIMIT_SECONDS // 60} minutes and every Airflow"
                    " component waits for it: make it quicker (install from a wheel or the"
                    " plugins.zip, not a build), or raise startup_time_limit_seconds in"
                    " pyproject.toml if it is slower here than on MWAA"
                )
                return
            took = time.monotonic() - started
            output.seek(0)
            said = output.read().decode(errors="replace").strip().splitlines()
        left = _environment(out)
    if left is None:
        result.problems.append(
            f"{shown}: the check cannot see what it leaves set for Airflow: it replaced the"
            " check's EXIT trap (`trap ... EXIT`) and then exited, or ran `exec`; end it"
            " without `exit` or `exec`, or without a trap on EXIT"
        )
        return
    result.notes.append(f"{shown} ran in {took:.1f} s here (MWAA allows {MWAA_LIMIT_SECONDS} s)")
    if status:
        last = f"; its last line: {said[-1]}" if said else ""
        result.notes.append(
            f"{shown} exited with status {status} here (a machine unlike MWAA's may be why){last}"
        )
    changed = sorted(
        name for name, value in left.items() if name not in BASH_OWN and clean.get(name) != value
    )
    for name in changed:
        if is_reserved(name) and name not in reported:
            result.problems.append(
                f"{shown}: sets {name}, which MWAA reserves for itself (and sets back over the"
                " script's value); remove it, or use a name of your own"
            )
    leaves = ", ".join(changed) if changed else "none"
    result.notes.append(f"{shown} leaves these variables set for Airflow's processes: {leaves}")


def _wrapper(script: Path, dump: Path, env: str) -> str:
    """Bash that sources `script` as MWAA does, then writes the environment it leaves to
    `dump`: when the script returns, and from an EXIT trap if it exits. `env` is called by
    the absolute path found before the script runs, and both paths are written into the
    command, so nothing the script does to PATH, its variables or its functions moves them.
    `>|` writes over the first dump even under the script's `set -o noclobber`."""
    write = f"{shlex.quote(env)} -0 >| {shlex.quote(str(dump))}"
    return f"trap {shlex.quote(write)} EXIT\nsource {shlex.quote(str(script))}\n{write}\n"


def _stop_group(group: int) -> None:
    """Kill every process left in the script's process group."""
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass  # nothing of it is left


@contextlib.contextmanager
def _stopping_its_orphans() -> Iterator[list[int]]:
    """Where the system lets it, adopt the orphans of what runs in the block and kill them,
    with their descendants, when it ends; the list it gives holds then the pids of those
    that would not die."""
    adopting, before = _adopt_orphans(True), _children()
    left_running: list[int] = []
    try:
        yield left_running
    finally:
        if adopting:
            left_running += _stop_adopted(before)
            _adopt_orphans(False)


def _adopt_orphans(on: bool) -> bool:
    """Make this process the one the orphans of its descendants are re-parented to (Linux's
    child subreaper), or stop that; whether the system did. A process the script starts in
    a session of its own (setsid, a daemon's double fork) leaves its process group, so the
    group's kill misses it, but it stays this process's descendant, to be found and killed."""
    if sys.platform != "linux":
        return False  # there, the process group's kill is all there is
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0


def _stop_adopted(known: set[int]) -> list[int]:
    """Kill the processes re-parented to this one since `known` were its children, and
    their descendants, reaping them, until none is left; the pids of those still running
    after STOP_SECONDS."""
    deadline = time.monotonic() + STOP_SECONDS
    while True:
        table = _processes()
        adopted = {pid for pid, (parent, _) in table.items() if parent == os.getpid()} - known
        for pid in adopted:  # a zombie is gone but for this
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        alive = [pid for pid in _descendants(adopted, table) if table[pid][1] != "Z"]
        if not alive or time.monotonic() >= deadline:
            return sorted(alive)
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def _children() -> set[int]:
    return {pid for pid, (parent, _) in _processes().items() if parent == os.getpid()}


def _descendants(roots: set[int], table: dict[int, tuple[int, str]]) -> set[int]:
    found, new = set(roots), set(roots)
    while new:
        new = {pid for pid, (parent, _) in table.items() if parent in new} - found
        found |= new
    return found


def _processes() -> dict[int, tuple[int, str]]:
    """Each process's parent and state, from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (name) state ppid ...": the name may hold spaces and parentheses.
            state, parent = stat.read_text().rpartition(")")[2].split()[:2]
        except (OSError, ValueError):
            continue  # gone meanwhile
        table[int(stat.parent.name)] = (int(parent), state)
    return table


def _environment(dump: Path) -> dict[str, str] | None:
    """The environment `env -0` wrote; None if nothing was written."""
    if not dump.is_file():
        return None
    # A script's `umask 777` leaves the dump unreadable, even to its owner.
    dump.chmod(0o600)
    pairs = (entry.split("=", 1) for entry in dump.read_bytes().decode().split("\0") if entry)
    return {name: value for name, value in pairs}
