"""The local venv, built with MWAA's pins: what `make test` and `make airflow-local` run is
what MWAA runs.

Two steps, both with uv. First what MWAA runs (Airflow, the providers, the deploy's own
packages), installed against MWAA's two constraint files, so every package they need has
MWAA's version. Then the dev-only tools (pytest, ruff, ...), installed with every package of
the first step held where it is: a tool may bring packages of its own, never move a pin; a
tool that cannot fit is named, and MWAA's pins are kept.

`python -m mwaa_deploy.local.local_venv REQUIREMENT...`, run by a venv's own Python, prints what is
installed there as JSON (used for venvs other than the running one).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mwaa_deploy import config
from mwaa_deploy.exceptions import InstallError
from mwaa_deploy.instance import mwaa_constraints

RUNTIME_GROUPS = ("deploy", "airflow")
# How many times a dev install lets go of the test pins uv names as in a dev tool's way.
RELEASE_ROUNDS = 10
PINNED = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==")
DEV_GROUP = "dev"
TOOLS_LOCK, UV = "tools.lock", "uv"  # uv's line: for the Makefile, which installs it per user


def locked_tools(root: Path) -> dict[str, str]:
    """tools.lock (tools_lock.py writes it), uv's line aside: name -> version; {} without one."""
    pins = mwaa_constraints.pins([root / TOOLS_LOCK]) if (root / TOOLS_LOCK).is_file() else {}
    return {name: version for name, version in pins.items() if name != UV}


def groups(root: Path) -> dict[str, list[str]]:
    """pyproject.toml's dependency groups, each with its included groups spelled out."""
    with open(root / "pyproject.toml", "rb") as file:
        table = tomllib.load(file).get("dependency-groups", {})

    def spelled(name: str) -> list[str]:
        out: list[str] = []
        for entry in table.get(name, []):
            out += spelled(entry["include-group"]) if isinstance(entry, dict) else [entry]
        return out

    return {name: spelled(name) for name in table}


def runtime_requirements(root: Path) -> list[str]:
    """What MWAA runs, as this project's venv installs it."""
    found = groups(root)
    return [r for name in RUNTIME_GROUPS for r in found.get(name, [])]


def dev_tools(root: Path) -> list[str]:
    """The dev group's own entries: the tools MWAA does not run."""
    runtime = set(runtime_requirements(root))
    return [r for r in groups(root).get(DEV_GROUP, []) if r not in runtime]


def name_of(requirement: str) -> str:
    return mwaa_constraints.canonical(
        re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0]
    )


@dataclass(frozen=True)
class Installed:
    versions: dict[str, str]  # every package in the venv: canonical name -> version
    runtime: frozenset[str]  # those the runtime requirements need, directly or not


def installed(python: str, requirements: list[str]) -> Installed:
    """What the venv of `python` holds, and which of it `requirements` need."""
    if Path(python).absolute().parent.parent.resolve() == Path(sys.prefix).resolve():
        return state(requirements)
    done = subprocess.run(
        [python, "-m", "mwaa_deploy.local.local_venv", *requirements],
        cwd=config.PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise InstallError(f"cannot read what {python} has installed: {done.stderr.strip()}")
    answer = json.loads(done.stdout)
    return Installed(answer["versions"], frozenset(answer["runtime"]))


def state(requirements: list[str]) -> Installed:
    """What this interpreter has installed, and which of it `requirements` need."""
    from importlib import metadata

    from packaging.requirements import Requirement

    versions: dict[str, str] = {}
    requires: dict[str, list[str]] = {}
    for distribution in metadata.distributions():
        read = distribution.metadata  # once: each of its properties parses the file again
        name = mwaa_constraints.canonical(read["Name"])
        versions[name] = read["Version"]
        requires[name] = read.get_all("Requires-Dist") or distribution.requires or []
    needed: set[str] = set()
    seen: set[tuple[str, str]] = set()
    pending = [(Requirement(r), "") for r in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = mwaa_constraints.canonical(requirement.name)
        if name not in versions:
            continue
        needed.add(name)
        for wanted in {"", *requirement.extras}:
            if (name, wanted) not in seen:
                seen.add((name, wanted))
                pending += [(Requirement(text), wanted) for text in requires[name]]
    return Installed(versions, frozenset(needed))


def install(
    settings: config.Settings,
    uv: str,
    python: str,
    group: str,
    airflow_version: str | None = None,
    runtime: list[str] | None = None,
    locked: bool = True,
) -> Installed | None:
    """Install `group` into the venv of `python`: "deploy" as pyproject.toml asks, "dev" with
    MWAA's pins for `airflow_version` (default: the environment's), `runtime` in place of the
    project's run-time requirements (an upgrade check's); for "dev", what is then installed.
    Both take the tools at tools.lock's versions, unless not `locked` (make lock's fresh
    resolution).

    A venv that an install of the same requirements against the same pins left is not
    resolved again (the comparison with MWAA's pins still runs): a new bake, or an edit of
    pyproject.toml elsewhere than its groups, costs no resolution."""
    lock = locked_tools(settings.root) if locked else {}
    if group == "deploy":
        # The deploy's own tools run here and in CI, never on MWAA: they take no MWAA pins
        # (the dev install pins them with the rest), so a deploy never waits on GitHub.
        with tempfile.TemporaryDirectory(prefix="mwaa-pins-") as scratch:
            requirements = groups(settings.root)["deploy"]
            _uv_install(uv, python, requirements, [_pins(lock, scratch)], settings.airflow_version)
        return None
    files = mwaa_constraints.files(settings, airflow_version)
    runtime = runtime or runtime_requirements(settings.root)
    wanted = runtime
    fingerprint = hashlib.sha256(
        json.dumps(
            [wanted, dev_tools(settings.root), [f.read_bytes().decode() for f in files], lock]
        ).encode()
    ).hexdigest()
    done = Path(python).absolute().parent.parent / f".mwaa-pins-{group}"
    if done.is_file() and done.read_text() == fingerprint:
        return installed(python, runtime)
    result = _install(settings, uv, python, files, airflow_version, runtime, lock)
    done.write_text(fingerprint)
    return result


def _install(
    settings: config.Settings,
    uv: str,
    python: str,
    files: list[Path],
    airflow_version: str | None,
    runtime: list[str],
    lock: dict[str, str],
) -> Installed:
    version = airflow_version or settings.airflow_version
    _uv_install(uv, python, runtime, files, version)
    held = installed(python, runtime)
    tools = dev_tools(settings.root)
    kept = {name: held.versions[name] for name in held.runtime}
    # The lock's versions of the tools, over Airflow's own test pins; never over what MWAA
    # runs (a lock written for another Airflow version may pin boto3 otherwise).
    locked = {name: version for name, version in lock.items() if name not in kept}
    _check_lock(tools, locked)
    pins = mwaa_constraints.pins(files)
    pins = {name: version for name, version in pins.items() if name not in locked} | locked
    with tempfile.TemporaryDirectory(prefix="mwaa-pins-") as scratch:

        def attempt(
            released: set[str], only_runtime: bool = False
        ) -> subprocess.CompletedProcess[str]:
            """uv on the tools, every package of the first step held, and MWAA's pins of
            the others too, but for `released` (or all of them: `only_runtime`)."""
            others = {} if only_runtime else {n: v for n, v in pins.items() if n not in released}
            return _uv(uv, "install", python, tools, [_pins(others | kept, scratch)])

        if attempt(set()).returncode == 0:
            return installed(python, runtime)
        # Airflow's constraints pin its own test tools too (pytest, ruff, moto): a tool this
        # project asks a newer version of is let go of its own pin, never of what MWAA runs.
        conflicting = [tool for tool in tools if _conflicts(uv, python, tool, pins, kept, scratch)]
        released = {name_of(tool) for tool in conflicting} - set(kept) - set(locked)
        for tool in conflicting:
            pin = f"pin {name_of(tool)}=={pins[name_of(tool)]}" if name_of(tool) in pins else "pins"
            print(
                f"{tool} (dev group) conflicts with Airflow's own test {pin}: MWAA does not"
                " run it; installing it as the dev group asks, every pin of what MWAA runs kept"
            )
        # Then the pins uv names as in the way, one round at a time, none MWAA runs.
        for _ in range(RELEASE_ROUNDS):
            done = attempt(released)
            if done.returncode == 0:
                return installed(python, runtime)
            named = {mwaa_constraints.canonical(n) for n in PINNED.findall(done.stderr)}
            in_the_way = {n for n in named if n in pins} - set(kept) - released
            if not in_the_way:
                break
            released |= in_the_way
        if attempt(released, True).returncode == 0:
            return installed(python, runtime)
        problems = [
            f"pyproject.toml [dependency-groups] dev: `{tool}` cannot be installed beside"
            f" MWAA's pins for Airflow {version} ({_cause(failed.stderr)}); MWAA's pins"
            " are kept: loosen or remove it"
            for tool in tools
            if (
                failed := _uv(uv, "install", python, [tool], [_pins(kept, scratch)], "--dry-run")
            ).returncode
        ]
        raise InstallError("\n".join(problems) or _failed(attempt(released, True).stderr, version))


def _check_lock(tools: list[str], locked: dict[str, str]) -> None:
    """A lock that pins a tool outside the dev group's range was written before the range
    changed: say so, rather than uv's resolution failure."""
    from packaging.requirements import Requirement

    for tool in tools:
        name, wanted = name_of(tool), Requirement(tool).specifier
        if name in locked and not wanted.contains(locked[name], prereleases=True):
            raise InstallError(
                f"tools.lock pins {name}=={locked[name]}, which the dev group's `{tool}`"
                " (pyproject.toml) does not allow: run make lock"
            )


def _pins(pins: dict[str, str], scratch: str) -> Path:
    path = Path(scratch) / "pins.txt"
    path.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    return path


def _conflicts(
    uv: str, python: str, tool: str, pins: dict[str, str], kept: dict[str, str], scratch: str
) -> bool:
    """Whether `tool` alone cannot be installed with every one of MWAA's pins."""
    tried = _uv(uv, "install", python, [tool], [_pins(pins | kept, scratch)], "--dry-run")
    return tried.returncode != 0


def _uv_install(
    uv: str, python: str, requirements: list[str], files: list[Path], version: str
) -> None:
    done = _uv(uv, "install", python, requirements, files)
    if done.returncode:
        raise InstallError(_failed(done.stderr, version))


def _uv(
    uv: str, verb: str, python: str, requirements: list[str], constraints: list[Path], *more: str
) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="requirements-") as listed:
        listed.write("".join(f"{r}\n" for r in requirements))
        listed.flush()
        command = [uv, "pip", verb, "--quiet", "--python", python, "-r", listed.name, *more]
        command += [f"--constraints={file}" for file in constraints]
        try:
            return subprocess.run(command, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise InstallError(
                f"cannot run uv ({uv}): install it, or run make install, which brings its own"
            ) from None


def _cause(stderr: str) -> str:
    """uv's reason, in one line."""
    lines = [line.strip(" ╰─▶") for line in stderr.splitlines() if line.strip()]
    reason = next(
        (line for line in lines if line.startswith("Because")), lines[-1] if lines else ""
    )
    return " ".join(reason.split())


def _failed(stderr: str, version: str) -> str:
    return f"uv cannot install with MWAA's pins for Airflow {version}: {_cause(stderr)}"


@dataclass(frozen=True)
class PinsReport:
    matching: int  # packages at MWAA's version
    runtime: list[str]  # packages MWAA runs, at another version than MWAA's: wrong
    dev_only: list[str]  # dev-only tools at another version than Airflow's own test pins


def compare(held: Installed, pins: dict[str, str]) -> PinsReport:
    """Every installed package MWAA's constraints pin, against the pin."""
    matching, runtime, dev_only = 0, [], []
    for name, version in sorted(held.versions.items()):
        if name not in pins:
            continue
        if version == pins[name]:
            matching += 1
            continue
        line = f"{name} {version} here, MWAA's pin {pins[name]}"
        (runtime if name in held.runtime else dev_only).append(line)
    return PinsReport(matching, runtime, dev_only)


def pins_report(settings: config.Settings, python: str) -> tuple[PinsReport, list[str]]:
    """The comparison for the venv of `python`, and the lines that say it."""
    report = compare(
        installed(python, runtime_requirements(settings.root)),
        mwaa_constraints.pins(mwaa_constraints.files(settings)),
    )
    lines = [
        f"{report.matching} packages as MWAA pins them for Airflow {settings.airflow_version}."
    ]
    lines += [f"  differs: {line}" for line in report.runtime]
    if report.dev_only:
        lines.append(
            "Dev-only tools MWAA does not run, at other versions than Airflow's own test pins"
            " (no pin of what MWAA runs moved for them):"
        )
        lines += [f"  {line}" for line in report.dev_only]
    return report, lines


def _print_state(requirements: Iterable[str]) -> None:
    found = state(list(requirements))
    print(json.dumps({"versions": found.versions, "runtime": sorted(found.runtime)}))


if __name__ == "__main__":
    _print_state(sys.argv[1:])
