"""`make upgrade-check TO=<version>`: what stands between this project and another Airflow
on MWAA, in one report, before anything on MWAA changes.

- MWAA's path from the current version (a version it offers; no downgrade; from Airflow 2
  to 3 only from 2.11).
- requirements.txt resolved against the target's MWAA pins, as check-requirements does.
- A scratch venv for the target, built with its MWAA pins (cheap with uv's cache), where
  both builds of the DAGs load with the integrity rules (tests/test_dag_integrity.py).
- Crossing from Airflow 2 to 3: ruff's Airflow 3 migration rules (AIR3) on the DAGs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

from mwaa_deploy import config
from mwaa_deploy.exceptions import DeployError
from mwaa_deploy.instance import instance_files, mwaa_constraints
from mwaa_deploy.local import find_python, local_venv
from mwaa_deploy.settings_rules import mwaa_python

# The Airflow versions MWAA offers (and this template bakes), newest first.
MWAA_VERSIONS = ("3.3.1", "3.2.1", "3.0.6", "2.11.2", "2.10.3")
# From Airflow 2, MWAA upgrades to 3 in place from this minor version only.
MAJOR_UPGRADE_FROM = (2, 11)
# ruff's Airflow 3 rules: removed (AIR301) and moved to a provider (AIR302) break on 3;
# the others suggest what Airflow 3 deprecates.
BLOCKING_RULES = ("AIR301", "AIR302")
INTEGRITY_TESTS = "tests/test_dag_integrity.py"
# Held in the scratch venv while a check builds and uses it: a second check of the same
# venv waits rather than reinstalling it under the first one's tests.
VENV_LOCK = ".upgrade-check.lock"


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def newer_than(version: str, current: str) -> bool:
    return _key(version) > _key(current)


def mwaa_path(current: str, target: str) -> tuple[list[str], list[str]]:
    """MWAA's supported path from `current` to `target`: (blockers, notes)."""
    if target not in MWAA_VERSIONS:
        offered = ", ".join(MWAA_VERSIONS)
        return [f"MWAA does not offer Airflow {target}; it offers {offered}"], []
    if target == current:
        return [], [f"this environment already runs Airflow {target}: nothing to upgrade"]
    if _key(target) < _key(current):
        return [
            f"MWAA does not downgrade an environment in place ({current} to {target});"
            " a new environment would be needed"
        ], []
    crossing = _key(target)[0] > _key(current)[0]
    if crossing and _key(current)[:2] < MAJOR_UPGRADE_FROM:
        via = next(v for v in MWAA_VERSIONS if _key(v)[:2] == MAJOR_UPGRADE_FROM)
        return [
            f"MWAA has no in-place upgrade from {current} to Airflow {_key(target)[0]}:"
            f" upgrade to {via} first (make upgrade-check TO={via}), then to {target}"
        ], []
    return [], [
        f"MWAA upgrades {current} to {target} in place (UpdateEnvironment with"
        f" AirflowVersion={target}); the environment is unavailable while it updates"
    ]


def target_settings(settings: config.Settings, target: str) -> config.Settings:
    python = mwaa_python(target)
    return dataclasses.replace(settings, airflow_version=target, python_version=python)


def requirements_blockers(settings: config.Settings, target: str) -> tuple[list[str], list[str]]:
    """requirements.txt as check-requirements would find it on the target, its constraints
    line already moved to the target's: (blockers, notes)."""
    path = settings.sources / instance_files.REQUIREMENTS
    if not path.is_file():
        return [], []
    upgraded = target_settings(settings, target)
    old, new = instance_files.constraints_url(settings), instance_files.constraints_url(upgraded)
    text = path.read_text(encoding="utf-8")
    notes = []
    if old in text:
        number = 1 + text[: text.index(old)].count("\n")
        notes.append(f'{config.shown(path)}:{number}: on upgrading, write --constraint "{new}"')
    blockers = instance_files.requirements_problems(
        text.replace(old, new), str(config.shown(path)), upgraded
    )
    return blockers, notes


def target_runtime(settings: config.Settings, target: str) -> list[str]:
    """What MWAA would run on the target: the project's run-time requirements with Airflow
    at the target and every other version left to the target's pins."""
    names = [
        requirement
        if local_venv.name_of(requirement) == "apache-airflow"
        else re.split(r"[<>=!~;]", requirement, maxsplit=1)[0].strip()
        for requirement in local_venv.runtime_requirements(settings.root)
    ]
    return [f"apache-airflow=={target}" if r.startswith("apache-airflow==") else r for r in names]


def build_venv(settings: config.Settings, target: str, uv: str, venv: Path) -> list[str]:
    """The scratch venv for the target, with its MWAA pins; the blockers found."""
    python = mwaa_python(target)
    found = find_python.interpreter(python, uv)
    made = subprocess.run(
        [uv, "venv", "--quiet", "--allow-existing", "--python", found, str(venv)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode:
        return [f"cannot make a venv on Python {python} for Airflow {target}: {made.stderr}"]
    interpreter = str(venv / "bin" / "python")
    try:
        held = local_venv.install(
            settings, uv, interpreter, "dev", target, target_runtime(settings, target)
        )
    except DeployError as error:
        return str(error).splitlines()
    pins = mwaa_constraints.pins(mwaa_constraints.files(settings, target))
    assert held is not None
    return [f"{line} in the scratch venv" for line in local_venv.compare(held, pins).runtime]


def dag_blockers(settings: config.Settings, venv: Path) -> list[str]:
    """Both builds of the DAGs loaded in the target's Airflow, with the integrity rules."""
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--no-header", "-rf", INTEGRITY_TESTS],
        cwd=settings.root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if run.returncode == 0:
        return []
    failed = [line for line in run.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    said = (run.stdout + run.stderr).strip()[-1500:] or f"pytest exited {run.returncode}"
    return failed or [f"the DAG integrity tests fail on the target: {said}"]


def migration_rules(settings: config.Settings, venv: Path) -> tuple[list[str], list[str]]:
    """ruff's Airflow 3 migration rules on the DAGs: (blockers, suggestions)."""
    dags = settings.sources / "dags"
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "ruff", "check", "--isolated", "--preview",
         "--select", "AIR3", "--output-format", "json", "--no-fix", "--exit-zero", str(dags)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        found = json.loads(run.stdout)
    except json.JSONDecodeError:
        return [f"ruff could not check the DAGs: {run.stderr.strip() or run.stdout[-500:]}"], []
    blocking, suggested = [], []
    for finding in found:
        where = f"{config.shown(Path(finding['filename']))}:{finding['location']['row']}"
        line = f"{where}: {finding['code']} {finding['message']}"
        (blocking if finding["code"] in BLOCKING_RULES else suggested).append(line)
    return blocking, suggested


def _shown(path: Path) -> Path:
    """A folder in a message: from here if it is below here, else in full."""
    return config.shown(path) if path.absolute().is_relative_to(Path.cwd()) else path.absolute()


@contextlib.contextmanager
def scratch_venv(venv: Path) -> Iterator[None]:
    """The scratch venv for this check alone, waiting for another check that holds it."""
    venv.mkdir(parents=True, exist_ok=True)
    with open(venv / VENV_LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"  waiting for another upgrade-check using {_shown(venv)}...", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run(settings: config.Settings, target: str, uv: str, venv: Path) -> int:
    """Check the upgrade to `target` and print one report; 1 if anything blocks it."""
    current = settings.airflow_version
    print(f"Upgrade check: Airflow {current} to {target} on MWAA")
    sections: list[tuple[str, list[str], list[str]]] = []
    blockers, notes = mwaa_path(current, target)
    sections.append(("MWAA's upgrade path", blockers, notes))
    # A downgrade or a version MWAA lacks is refused above: no venv is worth building for it.
    if target in MWAA_VERSIONS and newer_than(target, current):
        print(f"  resolving requirements.txt against MWAA's pins for {target}...", flush=True)
        sections.append(("requirements.txt", *requirements_blockers(settings, target)))
        with scratch_venv(venv):
            print(f"  building {_shown(venv)} with MWAA's pins for {target}...", flush=True)
            venv_blockers = build_venv(settings, target, uv, venv)
            sections.append((f"scratch venv {_shown(venv)}", venv_blockers, []))
            if not venv_blockers:
                print(f"  loading both builds of the DAGs in Airflow {target}...", flush=True)
                sections.append(("DAG integrity on the target", dag_blockers(settings, venv), []))
                if _key(target)[0] > _key(current)[0]:
                    sections.append(
                        (
                            "ruff's Airflow 3 migration rules (AIR3)",
                            *migration_rules(settings, venv),
                        )
                    )
    total = 0
    for title, found, said in sections:
        total += len(found)
        print(f"{title}: {'BLOCKED' if found else 'ok'}")
        print("".join(f"  blocker: {line}\n" for line in found), end="")
        print("".join(f"  note: {line}\n" for line in said), end="")
    if total:
        print(f"Upgrade to {target} blocked: {total} blocker(s) above.")
        return 1
    print(f"Nothing blocks the upgrade to {target}.")
    return 0
