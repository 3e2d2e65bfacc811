"""Instance-wide files: requirements.txt, plugins.zip and startup.sh, shared by DEV and PROD.

One bad line in them takes the whole MWAA environment down for 10-30 minutes, so they are
checked before they go anywhere: requirements resolved by pip as MWAA installs them, against
MWAA's own constraint files (mwaa_constraints.py) for MWAA's Python and platform, startup.sh
run as MWAA runs it (startup.py), plugins/ packed the same way every time. Uploading them and
updating the environment is mwaa_environment.py's work.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mwaa_deploy import config, mwaa_constraints, startup
from mwaa_deploy.exceptions import CheckError, ConstraintsError
from mwaa_deploy.stamp import is_source_name

REQUIREMENTS = "requirements.txt"
PLUGINS = "plugins.zip"
STARTUP = "startup.sh"
INSTANCE_KEYS = (REQUIREMENTS, PLUGINS, STARTUP)

# The constraints line requirements.txt begins with, as MWAA's documentation asks.
CONSTRAINTS_URL = (
    "https://raw.githubusercontent.com/apache/airflow/"
    "constraints-{airflow}/constraints-{python}.txt"
)
# MWAA runs Amazon Linux 2023 on x86_64 (glibc 2.34): wheels for manylinux 2.34 and older.
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(34, 4, -1)]
PLATFORM_NAME = "Linux x86_64"
# MWAA installs these itself; a requirement on them would replace the Airflow it runs.
AIRFLOW_ITSELF = {"apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk"}
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
# A pinned time and mode for every file in plugins.zip: same sources, same bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


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


def requirements_problems(text: str, path: str, settings: config.Settings) -> list[str]:
    """Every problem in requirements.txt, in line order: what a reader can see (syntax,
    the constraints line, Airflow itself, a change to a pin MWAA enforces), and what pip
    finds when it resolves the other lines as MWAA will, against MWAA's constraint files
    for this environment, whatever the constraints line says."""
    lines = logical_lines(text)
    by_line = {
        line.number: problem for line in lines if (problem := _line_problem(line, path, settings))
    }
    constraints_lines = [line for line in lines if _option(line)[0] == "--constraint"]
    found: list[tuple[int | None, str]] = [*by_line.items()]
    found += _constraints_line_problems(constraints_lines, path, settings)
    try:
        constraints = mwaa_constraints.files(settings)
    except ConstraintsError as error:
        found.append((None, str(error)))
    else:
        essential = mwaa_constraints.pins(constraints[1:])
        for line in lines:
            if line.number not in by_line and (
                problem := _essential_problem(line, essential, path)
            ):
                by_line[line.number] = problem
                found.append((line.number, problem))
        rest = [
            line for line in lines if line.number not in by_line and line not in constraints_lines
        ]
        found += _resolution_problems(rest, constraints, path, settings)
    # In the order a reader fixes them, top to bottom; what pip tied to no line comes last.
    found.sort(key=lambda problem: (problem[0] is None, problem[0] or 0))
    return [problem for _, problem in found]


def _essential_problem(line: Line, essential: dict[str, str], path: str) -> str | None:
    """A requirement that asks for another version of a package MWAA pins for itself."""
    if _option(line)[0] is not None:
        return None
    requirement = Requirement(line.text.split(" --hash")[0])
    name = canonicalize_name(requirement.name)
    if name not in essential or name in AIRFLOW_ITSELF:
        return None
    if requirement.specifier.contains(essential[name], prereleases=True):
        return None
    return (
        f"{path}:{line.number}: `{line.text}` conflicts with MWAA's essential pin"
        f" {requirement.name}=={essential[name]}: MWAA does not let requirements.txt change"
        f" {requirement.name}; remove the version, or the line"
    )


def _option(line: Line) -> tuple[str | None, str]:
    """For a pip option line, the option (by its long name, when MWAA takes it) and its
    value; for a requirement, (None, "")."""
    if not line.text.startswith("-"):
        return None, ""
    name, value = re.match(r"(\S+?)(?:[=\s]\s*(.*))?$", line.text).groups(default="")
    return OPTIONS_WITH_VALUE.get(name, name), value.strip("\"'")


def _line_problem(line: Line, path: str, settings: config.Settings) -> str | None:
    where = f"{path}:{line.number}"
    option, _ = _option(line)
    if option is not None:
        if option in OPTIONS_WITH_VALUE.values() or option in OPTIONS_ALONE:
            return None
        allowed = sorted({*OPTIONS_WITH_VALUE.values(), *OPTIONS_ALONE})
        return (
            f"{where}: `{option}` is not a pip option for MWAA's requirements.txt;"
            f" it takes {', '.join(allowed)}"
        )
    try:
        name = requirement_name(line.text)
    except InvalidRequirement as error:
        reason = str(error).splitlines()[0]  # the rest draws a caret under the text
        return (
            f"{where}: `{line.text}` is not a requirement: {reason}; write a package name and,"
            " if need be, a version, as in pandas or pandas>=2.1"
        )
    if name in AIRFLOW_ITSELF:
        return (
            f"{where}: `{line.text}` would replace the Airflow MWAA runs"
            f" ({settings.airflow_version}); remove it: the constraints line pins Airflow"
        )
    return None


def _constraints_line_problems(
    constraints: list[Line], path: str, settings: config.Settings
) -> list[tuple[int | None, str]]:
    """Exactly one constraints line, for this environment's Airflow and Python."""
    expected = constraints_url(settings)
    fix = f'--constraint "{expected}"'
    if not constraints:
        return [(1, f"{path}:1: no constraints line; make the first line {fix}")]
    problems: list[tuple[int | None, str]] = [
        (line.number, f"{path}:{line.number}: a second constraints line; keep only {fix}")
        for line in constraints[1:]
    ]
    number, url = constraints[0].number, _option(constraints[0])[1]
    if url != expected:
        found = re.search(r"constraints-([^/]+)/constraints-([\d.]+)\.txt$", url)
        said = f"Airflow {found[1]} on Python {found[2]}" if found else f"`{url}`"
        problems.append(
            (
                number,
                f"{path}:{number}: the constraints are for {said}, but this environment runs"
                f" Airflow {settings.airflow_version} on Python {settings.python_version};"
                f" write {fix}",
            )
        )
    return problems


def _resolution_problems(
    lines: list[Line], constraints: list[Path], path: str, settings: config.Settings
) -> list[tuple[int | None, str]]:
    """What pip finds when it resolves `lines` for MWAA. pip stops at the first problem, so
    the lines it names are set aside and the rest resolved again, until pip can install
    them or names no line of the file."""
    found: list[tuple[int | None, str]] = []
    while True:
        pip = _pip_dry_run(lines, constraints, settings)
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
            requirement_name(line.text): line.number for line in lines if _option(line)[0] is None
        }
        explained = explain_pip_failure(pip.stdout, settings.python_version)
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
    lines: list[Line], constraints: list[Path], settings: config.Settings
) -> subprocess.CompletedProcess[str]:
    """pip's dry run of `lines` as MWAA installs them: its Python, its platform, wheels only,
    against MWAA's `constraints` files.

    Airflow itself is already installed on MWAA, with its dependencies: pip is given it as
    a wheel that stands for that installation (see `installed_airflow_wheel`), so it checks
    what the file adds, not how Airflow was built (some of its dependencies ship no wheels).
    """
    python = settings.python_version
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / REQUIREMENTS
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
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--no-input", "--progress-bar", "off", "--disable-pip-version-check",
            "--python-version", python, "--implementation", "cp",
            "--abi", f"cp{python.replace('.', '')}", "--abi", "abi3", "--abi", "none",
            *(f"--platform={platform}" for platform in PLATFORMS),
            "--only-binary=:all:", "--find-links", scratch, "-r", str(copy),
        ]  # fmt: skip
        return subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
        )


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


def constraints_url(settings: config.Settings) -> str:
    """Where Airflow publishes the constraints of this environment's Airflow and Python."""
    return CONSTRAINTS_URL.format(airflow=settings.airflow_version, python=settings.python_version)


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


def plugins_zip(folder: Path) -> bytes:
    """`plugins/` as a zip whose bytes depend on the files' paths and content alone.

    Stored, not deflated: compressed bytes can differ between zlib builds, and a different
    plugins.zip is a new object version and a 10-30 minute environment update.
    """
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and all(is_source_name(part) for part in p.relative_to(folder).parts)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for file in files:
            entry = zipfile.ZipInfo(file.relative_to(folder).as_posix(), date_time=ZIP_TIME)
            entry.external_attr = 0o644 << 16
            entry.create_system = 3  # Unix, wherever it is built
            archive.writestr(entry, file.read_bytes())
    return buffer.getvalue()


def checked_files(
    settings: config.Settings, say: Callable[[str], None] = print
) -> dict[str, bytes]:
    """The instance-wide files to deploy, every one checked; raise CheckError on any problem.

    `say` is given what the run of startup.sh found (its time, the variables it sets)."""
    sources, shown_sources = settings.sources, config.shown(settings.sources)
    files: dict[str, bytes] = {}
    problems: list[str] = []
    requirements = sources / REQUIREMENTS
    if requirements.is_file():
        text = requirements.read_text(encoding="utf-8")
        problems += requirements_problems(text, str(shown_sources / REQUIREMENTS), settings)
        files[REQUIREMENTS] = requirements.read_bytes()
    script = sources / STARTUP
    if script.is_file():
        found = startup.report(script, settings)
        for note in found.notes:
            say(note)
        problems += found.problems
        files[STARTUP] = script.read_bytes()
    if problems:
        raise CheckError(problems)
    if (sources / "plugins").is_dir():
        files[PLUGINS] = plugins_zip(sources / "plugins")
    return files
