"""requirements.txt for an MWAA environment that cannot reach a package index (a private
network): its wheels packed into plugins.zip, and the file rewritten to install from there.

MWAA unpacks plugins.zip at /usr/local/airflow/plugins before it installs requirements.txt,
so, as MWAA documents for environments without internet access, the file MWAA installs
says `--no-index`, finds its wheels in that folder and its constraints in a copy there. The
wheels are downloaded for MWAA's Python and platform (pip_requirements.mwaa_target), with
MWAA's pins, whatever machine this runs on. Airflow is already installed on MWAA: it stands
in as a wheel of metadata alone, so neither it nor its own dependencies are packed.

bucket_contents/requirements.txt stays the source: what is packed and rewritten is made
from it, checked, on every run, and deployed instead of it (setting offline_wheels).
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import parse_wheel_filename

from mwaa_deploy import config
from mwaa_deploy.exceptions import CheckError
from mwaa_deploy.instance import mwaa_constraints
from mwaa_deploy.instance.pip_requirements import logical_lines, option_of, resolution_problems

# The folder of plugins.zip that holds the wheels and the constraints, and where MWAA
# unpacks plugins.zip.
FOLDER = "wheels"
MWAA_PLUGINS = "/usr/local/airflow/plugins"
# Options that reach for an index or a link, which a private network cannot follow.
ONLINE = {"--index-url", "--extra-index-url", "--find-links", "--trusted-host"}
# The local version of the wheel that stands for the Airflow installed on MWAA.
STAND_IN = "mwaa"


@dataclass(frozen=True)
class Packed:
    requirements: bytes  # the requirements.txt MWAA installs, from plugins.zip
    files: dict[str, bytes]  # what plugins.zip holds for it: path -> bytes


def constraints_path(settings: config.Settings) -> str:
    """Where plugins.zip holds Airflow's constraints for this environment's Airflow and
    Python (MWAA's airflow_constraints.txt), relative to the zip's top."""
    return f"{FOLDER}/constraints-{settings.airflow_version}-{settings.python_version}.txt"


def pack(settings: config.Settings, text: str, path: str) -> Packed:
    """The wheels MWAA needs for the requirements `text` (checked already; `path` as the
    messages name it), and the requirements.txt that installs them with no index; raise
    CheckError, one line a requirement, for what pip cannot download for MWAA."""
    lines = logical_lines(text)
    to_download = [line for line in lines if option_of(line)[0] != "--constraint"]
    constraints = mwaa_constraints.files(settings)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        problems = resolution_problems(to_download, constraints, path, settings, download=folder)
        if problems:
            raise CheckError([problem for _, problem in problems])
        wheels = {
            f"{FOLDER}/{wheel.name}": wheel.read_bytes()
            for wheel in sorted(folder.glob("*.whl"))
            if parse_wheel_filename(wheel.name)[1].local != STAND_IN
        }
    wheels[constraints_path(settings)] = constraints[0].read_bytes()
    return Packed(rewritten(text, settings).encode(), wheels)


def rewritten(text: str, settings: config.Settings) -> str:
    """`text` as MWAA installs it from plugins.zip: the constraints line names the copy
    there, the lines that reach for an index are left as comments, `--no-index` and the
    wheels' folder are added at the end, so every requirement keeps its line number."""
    physical = text.splitlines()
    for line in logical_lines(text):
        option = option_of(line)[0]
        if option == "--constraint":
            new = f'--constraint "{MWAA_PLUGINS}/{constraints_path(settings)}"'
        elif option in ONLINE:
            new = f"# installed from plugins.zip instead: {line.text}"
        else:
            continue
        first = last = line.number - 1
        while physical[last].endswith("\\") and last + 1 < len(physical):
            last += 1
        physical[first : last + 1] = [new, *[""] * (last - first)]
    return "\n".join(
        [
            *physical,
            "# Added by make pack-wheels: MWAA installs these from plugins.zip, with no index.",
            "--no-index",
            f"--find-links {MWAA_PLUGINS}/{FOLDER}",
            "",
        ]
    )


def offline_problems(
    settings: config.Settings, requirements: bytes, plugins: bytes, path: str
) -> list[str]:
    """What pip finds when it installs `requirements` as MWAA does on a private network:
    from `plugins` unpacked, with no index, against MWAA's constraint files."""
    with tempfile.TemporaryDirectory() as scratch:
        with zipfile.ZipFile(io.BytesIO(plugins)) as archive:
            archive.extractall(scratch)
        text = requirements.decode().replace(MWAA_PLUGINS, scratch)
        essential = mwaa_constraints.files(settings)[1:]
        found = resolution_problems(logical_lines(text), essential, path, settings, offline=True)
    # pip, offline, reads a wheel missing from the zip as a conflict with the pins, or as
    # no such package: the zip is what lacks it.
    return [
        f"{path}:{number}: plugins.zip lacks what this line needs, so MWAA cannot install it"
        f" with no index (pip: {problem.removeprefix(f'{path}:{number}: ')});"
        " run make pack-wheels again"
        if number
        else problem.replace(scratch, MWAA_PLUGINS)
        for number, problem in found
    ]
