"""A requirements file as pip reads it, and as pip resolves it for MWAA: its logical lines
and options, a dry run for MWAA's Python and platform against MWAA's constraint files, and
what pip's output says went wrong, one line a problem (instance_files.py decides what is a
problem of the file).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mwaa_deploy import config
from mwaa_deploy.instance import sdist_pins
from mwaa_deploy.instance.resolved_requirements import recent_pass_or

# MWAA runs Amazon Linux 2023 on x86_64 (glibc 2.34): wheels for manylinux 2.34 and older.
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(34, 4, -1)]


PLATFORM_NAME = "Linux x86_64"


# The pip options a requirements file may hold, and what each takes.
OPTIONS_WITH_VALUE = {
    "-c": "--constraint",
    "--constraint": "--constraint",
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--trusted-host": "--trusted-host",
    "--only-binary": "--only-binary",
    "--no-binary": "--no-binary",
}


OPTIONS_ALONE = {"--no-index", "--pre", "--prefer-binary", "--require-hashes"}


# pip's warning before its last try of a request it could not send: a connection refused,
# a host name that does not resolve, a timeout. Earlier tries say a higher `total`.
LAST_TRY = re.compile(
    r"Retrying \(Retry\(total=0\b.*?after connection broken by '(\w+)\((.*)\)': \S+$", re.M
)


DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Line:
    number: int  # where the logical line starts, 1-based
    text: str  # without comment, continuation joined


def logical_lines(text: str) -> list[Line]:
    """The lines pip reads: comments dropped, backslash continuations joined."""
    lines: list[Line] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        raw = re.sub(r"(^|\s)#.*$", "", raw)
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        joined, pending = (pending + raw).strip(), ""
        if joined:
            lines.append(Line(start, joined))
    if pending.strip():
        lines.append(Line(start, pending.strip()))
    return lines


def option_of(line: Line) -> tuple[str | None, str]:
    """For a pip option line, the option (by its long name, when MWAA takes it) and its
    value; for a requirement, (None, "")."""
    if not line.text.startswith("-"):
        return None, ""
    name, value = re.match(r"(\S+?)(?:[=\s]\s*(.*))?$", line.text).groups(default="")
    return OPTIONS_WITH_VALUE.get(name, name), value.strip("\"'")


def resolution_problems(
    lines: list[Line],
    constraints: list[Path],
    path: str,
    settings: config.Settings,
    download: Path | None = None,
    offline: bool = False,
) -> list[tuple[int | None, str]]:
    """What pip finds when it resolves `lines` for MWAA. pip stops at the first problem, so
    the lines it names are set aside and the rest resolved again, until pip can install
    them or names no line of the file. With `download`, pip saves the wheels there; with
    `offline`, it installs as MWAA on a private network: no index, nor this machine's
    pip configuration. Online, a pin or requirement published as an sdist alone is built,
    as MWAA builds it (sdist_pins.py)."""
    with tempfile.TemporaryDirectory() as built:
        return _resolution_problems(lines, constraints, path, settings, download, offline, built)


def _resolution_problems(
    lines: list[Line],
    constraints: list[Path],
    path: str,
    settings: config.Settings,
    download: Path | None,
    offline: bool,
    built: str,
) -> list[tuple[int | None, str]]:
    found: list[tuple[int | None, str]] = []
    why_not: dict[str, str | None] = {}  # sdists built (None) or why not
    while True:
        pip = recent_pass_or(_pip_dry_run, lines, constraints, settings, download, offline, built)
        if pip.returncode == 0:
            return found
        unreachable = unreachable_indexes(pip.stdout)
        if unreachable:
            # pip then finds no version of anything; blaming each line would mislead.
            indexes = "index" if len(unreachable) == 1 else "indexes"
            return [
                *found,
                (
                    None,
                    f"{path}: pip cannot reach the package {indexes} {', '.join(unreachable)},"
                    " so the requirements could not be checked; check the network, and the"
                    " index that PIP_INDEX_URL, pip's configuration or an --index-url line names",
                ),
            ]
        at = {
            requirement_name(line.text): line.number for line in lines if option_of(line)[0] is None
        }
        sdists, pinned = ([], set()) if offline else sdist_pins.without_wheels(pip.stdout)
        # Each built once: a wheel pip still cannot use is not built again and again.
        new = {s: sdist_pins.build_pure_wheel(s, Path(built)) for s in sdists if s not in why_not}
        why_not |= new
        if None in new.values():
            continue
        python = settings.python_version
        explained = [
            (requirement_name(s), sdist_pins.no_wheel(s, why, PLATFORM_NAME, python, s in pinned))
            for s in sdists
            if (why := why_not[s])
        ] or explain_pip_failure(pip.stdout, python)
        if not explained:
            tail = pip.stdout[-2000:]
            return [
                *found,
                (None, f"{path}: pip cannot install it on MWAA (exit {pip.returncode}):\n{tail}"),
            ]
        for name, reason in explained:
            number = at.get(name)
            found.append((number, f"{path}:{number}: {reason}" if number else f"{path}: {reason}"))
        culprits = {at[name] for name, _ in explained if name in at}
        if not culprits:
            return found
        lines = [line for line in lines if line.number not in culprits]


def _pip_dry_run(
    lines: list[Line],
    constraints: list[Path],
    settings: config.Settings,
    download: Path | None = None,
    offline: bool = False,
    built: str = "",
) -> subprocess.CompletedProcess[str]:
    """pip's dry run of `lines` as MWAA installs them: its Python, its platform, wheels only,
    against MWAA's `constraints` files.

    Airflow itself is already installed on MWAA, with its dependencies: pip is given it as
    a wheel that stands for that installation (see `installed_airflow_wheel`), so it checks
    what the file adds, not how Airflow was built (some of its dependencies ship no wheels).
    """
    python = settings.python_version
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "requirements.txt"
        copy.write_text(
            "".join(
                f"{line}\n"
                for line in [
                    *(f'--constraint "{file}"' for file in constraints),
                    *(line.text for line in lines),
                ]
            )
        )
        installed_airflow_wheel(settings.airflow_version, Path(scratch))
        action = (
            ["download", "--dest", str(download)]
            if download
            else ["install", "--dry-run", "--ignore-installed"]
        )
        command = [
            sys.executable, "-m", "pip", *action, *mwaa_target(python),
            *(["--no-index"] if offline else []), "--find-links", scratch,
            *(["--find-links", built] if built else []), "-r", str(copy),
        ]  # fmt: skip
        environment = None
        if offline:
            # pip's variables and configuration files of this machine (an index, a folder of
            # wheels) are not on MWAA: os.devnull makes pip read no configuration file.
            environment = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
            environment["PIP_CONFIG_FILE"] = os.devnull
        return subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            env=environment,
        )


def mwaa_target(python: str) -> list[str]:
    """pip's options that make it choose wheels for MWAA, whatever machine it runs on: MWAA's
    Python (`python`, such as 3.12), its platform, wheels only; and no questions, no bars."""
    return [
        "--no-input", "--progress-bar", "off", "--disable-pip-version-check",
        "--python-version", python, "--implementation", "cp",
        "--abi", f"cp{python.replace('.', '')}", "--abi", "abi3", "--abi", "none",
        *(f"--platform={platform}" for platform in PLATFORMS),
        "--only-binary=:all:",
    ]  # fmt: skip


def installed_airflow_wheel(version: str, folder: Path) -> None:
    """Write a wheel of metadata alone that stands for the Airflow installed on MWAA.

    Its version, `<version>+mwaa`, satisfies `apache-airflow==<version>` and sorts above
    the real release, so pip takes it and does not reinstall Airflow's dependencies.
    """
    name, local_version = "apache_airflow", f"{version}+mwaa"
    info = f"{name}-{local_version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: apache-airflow\nVersion: {local_version}\n"
    files = {
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(folder / f"{name}-{local_version}-py3-none-any.whl", "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)


def unreachable_indexes(output: str) -> list[str]:
    """Each package index pip gave up on, `<url> (<why>)`, from pip's output."""
    listed = re.search(r"^Looking in indexes: (.+)$", output, re.M)
    indexes = listed[1].split(", ") if listed else []
    found: dict[str, str] = {}
    for error, detail in LAST_TRY.findall(output):
        address = re.search(r"(HTTPS?)Connection\(host='([^']+)', port=(\d+)\)", detail)
        if not address:
            continue
        scheme, host, port = address[1].lower(), address[2], int(address[3])
        shown = host if DEFAULT_PORTS[scheme] == port else f"{host}:{port}"
        url = next(
            (index for index in indexes if _host_and_port(index) == (host, port)),
            f"{scheme}://{shown}",
        )
        reason = re.search(r"\[Errno -?\d+\] ([^)\"']+)", detail)
        found.setdefault(url, reason[1].strip() if reason else error)
    return [f"{url} ({reason})" for url, reason in found.items()]


def _host_and_port(url: str) -> tuple[str | None, int | None]:
    parts = urlsplit(url)
    return parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme)


def explain_pip_failure(output: str, python: str) -> list[tuple[str | None, str]]:
    """pip's errors, each with the requirement it is about (canonical name), when it says."""
    return [*_not_found(output, python), *_conflicts(output)]


def _not_found(output: str, python: str) -> list[tuple[str | None, str]]:
    """Requirements pip found no installable version of."""
    target = f"MWAA ({PLATFORM_NAME}, Python {python})"
    problems: list[tuple[str | None, str]] = []
    for spec, versions in re.findall(
        r"Could not find a version that satisfies the requirement (.+?) \(from versions: (.*?)\)",
        output,
    ):
        if versions == "none":
            reason = (
                f"no distribution of `{spec}` installs on {target}: check the name, or it"
                " publishes no wheel for that platform"
            )
        else:
            reason = (
                f"no version matching `{spec}` installs on {target};"
                f" the newest that does is {versions.split(', ')[-1]}"
            )
        # A dependency's own requirement reads `name>=1 (from parent==2)`.
        problems.append((_name_or_none(spec.split(" (from ")[0]), reason))
    return problems


def _conflicts(output: str) -> list[tuple[str | None, str]]:
    """Requirements that contradict the constraints, or each other."""
    causes = re.search(r"The conflict is caused by:\n((?:    .+\n)+)", output)
    if not causes:
        return []
    lines = [cause.strip() for cause in causes[1].splitlines()]
    pinned = [
        c.removeprefix("The user requested (constraint) ") for c in lines if "(constraint)" in c
    ]
    requested = [
        c.removeprefix("The user requested ")
        for c in lines
        if c.startswith("The user requested ") and "(constraint)" not in c
    ]
    if not requested:
        return [(None, "the requirements conflict: " + "; ".join(lines))]
    problems: list[tuple[str | None, str]] = []
    for spec in requested:
        if pinned:
            reason = (
                f"`{spec}` conflicts: MWAA's constraints pin {', '.join(pinned)};"
                " leave the version out and the constraints choose it"
            )
        else:
            others = "; ".join(c for c in lines if c != f"The user requested {spec}")
            reason = f"`{spec}` conflicts: {others}; change the versions so they agree"
        problems.append((_name_or_none(spec), reason))
    return problems


def requirement_name(spec: str) -> str:
    """The canonical name of a requirement (`Pandas>=2 --hash=...`: pandas);
    InvalidRequirement if `spec` is none."""
    return canonicalize_name(Requirement(spec.split(" --hash")[0]).name)


def _name_or_none(spec: str) -> str | None:
    try:
        return requirement_name(spec)
    except InvalidRequirement:
        return None
