"""Instance-wide files: requirements.txt, plugins.zip and startup.sh, shared by DEV and PROD.

One bad line in them takes the whole MWAA environment down for 10-30 minutes, so they are
checked first: requirements resolved by pip against Airflow's constraints for MWAA's Python
and platform, startup.sh parsed by bash, plugins/ packed the same way every time. Only the
files whose content changed are uploaded, and one UpdateEnvironment call applies exactly
their new object versions.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mwaa_deploy import DeployError
from mwaa_deploy.config import Settings
from mwaa_deploy.sync import Bucket, OwnershipError

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from mwaa_deploy.s3 import S3Bucket

REQUIREMENTS = "requirements.txt"
PLUGINS = "plugins.zip"
STARTUP = "startup.sh"
INSTANCE_KEYS = (REQUIREMENTS, PLUGINS, STARTUP)

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
# A pinned time and mode for every file in plugins.zip: same sources, same bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class CheckError(DeployError):
    """Instance-wide files that must not reach the bucket; `problems` says where and why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join([*problems, "Check failed: nothing was uploaded."]))
        self.problems = problems


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


def requirements_problems(text: str, path: str, settings: Settings) -> list[str]:
    """Every problem in requirements.txt, in line order: what a reader can see (syntax,
    the constraints line, Airflow itself), and what pip finds when it resolves the other
    lines as MWAA will, against the constraints this environment needs, whatever the
    constraints line says."""
    lines = logical_lines(text)
    by_line = {
        line.number: problem for line in lines if (problem := _line_problem(line, path, settings))
    }
    constraints_lines = [line for line in lines if _option(line)[0] == "--constraint"]
    found: list[tuple[int | None, str]] = [*by_line.items()]
    found += _constraints_line_problems(constraints_lines, path, settings)
    where = f"{path}:{constraints_lines[0].number if constraints_lines else 1}"
    try:
        constraints = read_constraints(settings, where)
    except CheckError as error:
        found += [(None, problem) for problem in error.problems]
    else:
        rest = [
            line for line in lines if line.number not in by_line and line not in constraints_lines
        ]
        found += _resolution_problems(rest, constraints, path, settings)
    # In the order a reader fixes them, top to bottom; what pip tied to no line comes last.
    found.sort(key=lambda problem: (problem[0] is None, problem[0] or 0))
    return [problem for _, problem in found]


def _option(line: Line) -> tuple[str | None, str]:
    """For a pip option line, the option (by its long name, when MWAA takes it) and its
    value; for a requirement, (None, "")."""
    if not line.text.startswith("-"):
        return None, ""
    name, value = re.match(r"(\S+?)(?:[=\s]\s*(.*))?$", line.text).groups(default="")
    return OPTIONS_WITH_VALUE.get(name, name), value.strip("\"'")


def _line_problem(line: Line, path: str, settings: Settings) -> str | None:
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
        name = _requirement_name(line)
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
    constraints: list[Line], path: str, settings: Settings
) -> list[tuple[int | None, str]]:
    """Exactly one constraints line, for this environment's Airflow and Python."""
    expected = CONSTRAINTS_URL.format(
        airflow=settings.airflow_version, python=settings.python_version
    )
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
    lines: list[Line], constraints: bytes, path: str, settings: Settings
) -> list[tuple[int | None, str]]:
    """What pip finds when it resolves `lines` for MWAA. pip stops at the first problem, so
    the lines it names are set aside and the rest resolved again, until pip can install
    them or names no line of the file."""
    found: list[tuple[int | None, str]] = []
    while True:
        pip = _pip_dry_run(lines, constraints, settings)
        if pip.returncode == 0:
            return found
        at = {_requirement_name(line): line.number for line in lines if _option(line)[0] is None}
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
    lines: list[Line], constraints: bytes, settings: Settings
) -> subprocess.CompletedProcess[str]:
    """pip's dry run of `lines` as MWAA installs them: its Python, its platform, wheels only,
    against `constraints`.

    Airflow itself is already installed on MWAA, with its dependencies: pip is given it as
    a wheel that stands for that installation (see `installed_airflow_wheel`), so it checks
    what the file adds, not how Airflow was built (some of its dependencies ship no wheels).
    """
    python = settings.python_version
    with tempfile.TemporaryDirectory() as scratch:
        local_constraints = Path(scratch) / "constraints.txt"
        local_constraints.write_bytes(constraints)
        copy = Path(scratch) / REQUIREMENTS
        copy.write_text(
            "".join(
                f"{line}\n"
                for line in [f'--constraint "{local_constraints}"', *(line.text for line in lines)]
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


def installed_airflow_wheel(version: str, folder: Path) -> Path:
    """A wheel of metadata alone that stands for the Airflow installed on MWAA.

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
    wheel = folder / f"{name}-{local_version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def read_constraints(settings: Settings, where: str) -> bytes:
    """Airflow's constraints for this version and Python: the local copy if set, else the URL.

    Read before pip runs, so that a network problem is one clear line, not pip's retries.
    """
    url = CONSTRAINTS_URL.format(airflow=settings.airflow_version, python=settings.python_version)
    if settings.constraints_file:
        try:
            return (settings.root / Path(settings.constraints_file).expanduser()).read_bytes()
        except OSError as error:
            raise CheckError(
                [
                    f"{settings.constraints_file}: cannot read the constraints file that"
                    " CONSTRAINTS_FILE (or constraints_file in pyproject.toml) names:"
                    f" {error.strerror}; save {url} there, or point CONSTRAINTS_FILE at your"
                    " copy of it"
                ]
            ) from error
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.read()
    except (OSError, ValueError) as error:
        raise CheckError(
            [
                f"{where}: cannot download Airflow's constraints from {url}"
                f" ({getattr(error, 'reason', error)}); download that file where GitHub can be"
                " reached, then set CONSTRAINTS_FILE=<its path> (or constraints_file in"
                " pyproject.toml) and run this again"
            ]
        ) from error


def explain_pip_failure(output: str, python: str) -> list[tuple[str | None, str]]:
    """pip's errors, each with the requirement it is about (canonical name), when it says."""
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
        problems.append((_name_of(spec.split(" (from ")[0]), reason))
    causes = re.search(r"The conflict is caused by:\n((?:    .+\n)+)", output)
    if causes:
        lines = [cause.strip() for cause in causes[1].splitlines()]
        pinned = [
            c.removeprefix("The user requested (constraint) ") for c in lines if "(constraint)" in c
        ]
        requested = [
            c.removeprefix("The user requested ")
            for c in lines
            if c.startswith("The user requested ") and "(constraint)" not in c
        ]
        for spec in requested:
            if pinned:
                reason = (
                    f"`{spec}` conflicts: Airflow's constraints pin {', '.join(pinned)};"
                    " leave the version out and the constraints choose it"
                )
            else:
                others = "; ".join(c for c in lines if c != f"The user requested {spec}")
                reason = f"`{spec}` conflicts: {others}; change the versions so they agree"
            problems.append((_name_of(spec), reason))
        if not requested:
            problems.append((None, "the requirements conflict: " + "; ".join(lines)))
    return problems


def _requirement_name(line: Line) -> str:
    """The canonical name of the requirement on a line; InvalidRequirement if it is none."""
    return canonicalize_name(Requirement(line.text.split(" --hash")[0]).name)


def _name_of(spec: str) -> str | None:
    try:
        return canonicalize_name(Requirement(spec).name)
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
        if p.is_file()
        and not any(
            part.startswith(".") or part == "__pycache__" for part in p.relative_to(folder).parts
        )
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for file in files:
            entry = zipfile.ZipInfo(file.relative_to(folder).as_posix(), date_time=ZIP_TIME)
            entry.external_attr = 0o644 << 16
            entry.create_system = 3  # Unix, wherever it is built
            archive.writestr(entry, file.read_bytes())
    return buffer.getvalue()


def check_startup(path: Path, shown: str) -> list[str]:
    """bash's own syntax check of startup.sh, which MWAA runs on every container start."""
    check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    return [
        line.replace(str(path), shown) for line in check.stderr.splitlines() if line.strip()
    ] or ([f"{shown}: bash -n failed"] if check.returncode else [])


def build(settings: Settings, shown_sources: Path) -> dict[str, bytes]:
    """The instance-wide files to deploy, every one checked; raise CheckError on any problem."""
    sources = settings.sources
    files: dict[str, bytes] = {}
    problems: list[str] = []
    requirements = sources / REQUIREMENTS
    if requirements.is_file():
        text = requirements.read_text(encoding="utf-8")
        problems += requirements_problems(text, str(shown_sources / REQUIREMENTS), settings)
        files[REQUIREMENTS] = requirements.read_bytes()
    startup = sources / STARTUP
    if startup.is_file():
        problems += check_startup(startup, str(shown_sources / STARTUP))
        files[STARTUP] = startup.read_bytes()
    if problems:
        raise CheckError(problems)
    if (sources / "plugins").is_dir():
        files[PLUGINS] = plugins_zip(sources / "plugins")
    return files


class UpdateError(DeployError):
    """The environment could not take the new files; the message says where to look."""


# The UpdateEnvironment fields that name each file and its object version.
FIELDS = {REQUIREMENTS: "Requirements", PLUGINS: "Plugins", STARTUP: "StartupScript"}
# Statuses an update passes through before it settles.
SETTLING = {"UPDATING", "ROLLING_BACK", "PENDING", "CREATING_SNAPSHOT"}
POLL_SECONDS = 30
PROGRESS_EVERY = 300  # seconds between "still UPDATING" lines
GIVE_UP_AFTER = 3600  # seconds; updates take 10-30 minutes


def changed_files(
    files: dict[str, bytes], running: Callable[[str], bytes | None]
) -> dict[str, bytes]:
    """The files whose content differs from what the environment runs (`running(key)`)."""
    return {key: body for key, body in files.items() if running(_instance_key(key)) != body}


def write_local(bucket: Bucket, files: dict[str, bytes]) -> None:
    """Put the files into a bucket with no MWAA environment behind it (the local bucket)."""
    for key, body in files.items():
        bucket.put(_instance_key(key), body)


def running_versions(mwaa: BaseClient, name: str, bucket_name: str) -> dict[str, str]:
    """The object version of each instance-wide file the environment runs now.

    Refuses, before anything is uploaded, unless the environment is AVAILABLE (an update
    cannot start during another) and reads `bucket_name` (else the files would go to one
    bucket and the update to an environment that reads another).
    """
    environment = _describe(mwaa, name, "cannot read the MWAA environment")
    if environment["Status"] != "AVAILABLE":
        raise UpdateError(
            f"the MWAA environment {name} is {environment['Status']}; run this again once it"
            " is AVAILABLE"
        )
    reads = environment.get("SourceBucketArn", "").rpartition(":")[2]
    if reads != bucket_name:
        raise UpdateError(
            f"the MWAA environment {name} reads s3://{reads}, not s3://{bucket_name}:"
            " check MWAA_ENVIRONMENT and S3_BUCKET"
        )
    return {
        key: environment[f"{field}S3ObjectVersion"]
        for key, field in FIELDS.items()
        if environment.get(f"{field}S3Path") == key and environment.get(f"{field}S3ObjectVersion")
    }


def upload(bucket: S3Bucket, files: dict[str, bytes]) -> dict[str, str]:
    """Upload each file; return the object version S3 gave it."""
    return {key: bucket.put_versioned(_instance_key(key), body) for key, body in files.items()}


def update_environment(mwaa: BaseClient, name: str, versions: dict[str, str]) -> None:
    """Point the environment at the new object versions and follow the update to its end.

    Workers are replaced gracefully: tasks already running, of DEV and PROD, finish first.
    """
    request = {"Name": name, "WorkerReplacementStrategy": "GRACEFUL"}
    for key, version in versions.items():
        request[f"{FIELDS[key]}S3Path"] = key
        request[f"{FIELDS[key]}S3ObjectVersion"] = version
    try:
        mwaa.update_environment(**request)
    except (BotoCoreError, ClientError) as error:
        raise UpdateError(f"MWAA refused to update {name}: {error}") from error
    print(f"Updating {name} with {', '.join(versions)}; this takes 10-30 minutes.")
    started = time.monotonic()
    status, last_said = "UPDATING", started
    while status in SETTLING:
        time.sleep(POLL_SECONDS)
        environment = _describe(mwaa, name, "the update started, but cannot follow it")
        now = time.monotonic()
        minutes = (now - started) / 60
        if environment["Status"] != status or now - last_said >= PROGRESS_EVERY:
            status, last_said = environment["Status"], now
            print(f"  {status} after {minutes:.0f} min")
        if status in SETTLING and now - started >= GIVE_UP_AFTER:
            raise UpdateError(
                f"{name} is still {status} after {minutes:.0f} minutes; follow it in the"
                " MWAA console, and do not start another update until it is AVAILABLE"
            )
    last = environment.get("LastUpdate", {})
    if status == "AVAILABLE" and last.get("Status") != "FAILED":
        print(f"{name} is AVAILABLE, running the new {', '.join(versions)}.")
        return
    error = last.get("Error", {})
    raise UpdateError(
        f"the update of {name} failed ({error.get('ErrorCode', status)}:"
        f" {error.get('ErrorMessage', 'no message')}); MWAA rolled back to the previous files."
        f" Look in CloudWatch, log groups airflow-{name}-Worker and airflow-{name}-Scheduler"
        " (the requirements_install_* streams, and the startup script's), and on the"
        " environment's page in the MWAA console"
    )


def _describe(mwaa: BaseClient, name: str, doing: str) -> dict:
    try:
        return mwaa.get_environment(Name=name)["Environment"]
    except (BotoCoreError, ClientError) as error:
        raise UpdateError(f"{doing} {name}: {error}") from error


def _instance_key(key: str) -> str:
    if key not in INSTANCE_KEYS:
        raise OwnershipError(f"refusing to touch {key!r}: instance-wide files are {INSTANCE_KEYS}")
    return key
