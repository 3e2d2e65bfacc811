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
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mwaa_deploy import config
from mwaa_deploy.exceptions import CheckError, ConstraintsError
from mwaa_deploy.instance import mwaa_constraints, policy, startup, wheels
from mwaa_deploy.instance.pip_requirements import (
    OPTIONS_ALONE,
    OPTIONS_WITH_VALUE,
    Line,
    logical_lines,
    option_of,
    requirement_name,
    resolution_problems,
)
from mwaa_deploy.stamping.stamp import is_source_name

REQUIREMENTS = "requirements.txt"
PLUGINS = "plugins.zip"
STARTUP = "startup.sh"
INSTANCE_KEYS = (REQUIREMENTS, PLUGINS, STARTUP)

# The constraints line requirements.txt begins with, as MWAA's documentation asks.
CONSTRAINTS_URL = (
    "https://raw.githubusercontent.com/apache/airflow/"
    "constraints-{airflow}/constraints-{python}.txt"
)
# MWAA installs these itself; a requirement on them would replace the Airflow it runs.
AIRFLOW_ITSELF = {"apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk"}
# A pinned time and mode for every file in plugins.zip: same sources, same bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def requirements_problems(text: str, path: str, settings: config.Settings) -> list[str]:
    """Every problem in requirements.txt, in line order: what a reader can see (syntax,
    the constraints line, Airflow itself, a change to a pin MWAA enforces), and what pip
    finds when it resolves the other lines as MWAA will, against MWAA's constraint files
    for this environment, whatever the constraints line says."""
    lines = logical_lines(text)
    by_line = {
        line.number: problem for line in lines if (problem := _line_problem(line, path, settings))
    }
    constraints_lines = [line for line in lines if option_of(line)[0] == "--constraint"]
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
        found += resolution_problems(rest, constraints, path, settings)
    # In the order a reader fixes them, top to bottom; what pip tied to no line comes last.
    found.sort(key=lambda problem: (problem[0] is None, problem[0] or 0))
    return [problem for _, problem in found]


def _essential_problem(line: Line, essential: dict[str, str], path: str) -> str | None:
    """A requirement that asks for another version of a package MWAA pins for itself."""
    if option_of(line)[0] is not None:
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


def _line_problem(line: Line, path: str, settings: config.Settings) -> str | None:
    where = f"{path}:{line.number}"
    option, _ = option_of(line)
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
    number, url = constraints[0].number, option_of(constraints[0])[1]
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


def constraints_url(settings: config.Settings) -> str:
    """Where Airflow publishes the constraints of this environment's Airflow and Python."""
    return CONSTRAINTS_URL.format(airflow=settings.airflow_version, python=settings.python_version)


def plugins_zip(folder: Path, generated: dict[str, bytes] | None = None) -> bytes:
    """`plugins/` as a zip whose bytes depend on the files' paths and content alone, with
    the `generated` files (path -> bytes) beside them.

    Stored, not deflated: compressed bytes can differ between zlib builds, and a different
    plugins.zip is a new object version and a 10-30 minute environment update.
    """
    files = {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and all(is_source_name(part) for part in p.relative_to(folder).parts)
    } | (generated or {})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in sorted(files.items()):
            entry = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            entry.external_attr = 0o644 << 16
            entry.create_system = 3  # Unix, wherever it is built
            archive.writestr(entry, data)
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
    # In any case: on a filesystem that ignores case (macOS's), wheels/ and Wheels/ are one.
    own_wheels = next(
        (p for p in _entries(sources / "plugins") if p.name.casefold() == wheels.FOLDER), None
    )
    if settings.offline_wheels and REQUIREMENTS in files and own_wheels is not None:
        problems.append(
            f"{config.shown(own_wheels)}: plugins.zip holds the packed wheels there; move"
            " your files to another folder of plugins/"
        )
    if problems:
        raise CheckError(problems)
    generated = policy.generated_files(settings)
    if settings.offline_wheels and REQUIREMENTS in files:
        shown = str(shown_sources / REQUIREMENTS)
        packed = wheels.pack(settings, files[REQUIREMENTS].decode(), shown)
        files[REQUIREMENTS] = packed.requirements
        files[PLUGINS] = plugins_zip(sources / "plugins", generated | packed.files)
        if problems := wheels.offline_problems(
            settings, packed.requirements, files[PLUGINS], shown
        ):
            raise CheckError(problems)
    elif (sources / "plugins").is_dir():
        files[PLUGINS] = plugins_zip(sources / "plugins", generated)
    return files


def write_plugins(settings: config.Settings, folder: Path) -> Path:
    """Fill `folder` with plugins.zip unpacked, as MWAA unpacks it, replacing what was
    there, for a local Airflow to load (AIRFLOW__CORE__PLUGINS_FOLDER). Empty where the
    project has no plugins/."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sources = settings.sources / "plugins"
    if sources.is_dir():
        packed = plugins_zip(sources, policy.generated_files(settings))
        with zipfile.ZipFile(io.BytesIO(packed)) as archive:
            archive.extractall(folder)
    return folder


def _entries(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []
