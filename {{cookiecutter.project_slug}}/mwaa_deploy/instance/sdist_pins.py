"""Packages that publish no wheel for MWAA's platform, only a source distribution: MWAA's
own pins (docopt 0.6.2 in every constraints file) and a file's requirements alike
(sgmllib3k, which feedparser needs).

pip resolves for MWAA's platform with wheels only (pip_requirements.mwaa_target), so it
reads such a pin as a conflict, and such a requirement as one with no version at all. MWAA
online builds the sdist when it installs; a pure-Python wheel built from it here is the
same on every platform, so pip is given one to resolve with, and pack-wheels packs it. A
package whose sdist builds no pure wheel here is named, with what to do.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

# pip's note, after a conflict, on the packages of it it found nothing for on the platform.
UNAVAILABLE = re.compile(
    r"some packages in these conflicts have no matching distributions available for your"
    r" environment:\n((?:    .+\n?)+)"
)
CAUSES = re.compile(r"The conflict is caused by:\n((?:    .+\n)+)")
# A dependency's requirement reads `name>=1 (from parent==2)`.
NO_VERSION = re.compile(
    r"satisfies the requirement (.+?)(?: \(from [^()]*\))? \(from versions: none\)"
)
PINNED = "The user requested (constraint) "


def pins_without_wheels(output: str) -> list[tuple[str, str]]:
    """From pip's output, MWAA's exact pins (name, version) that every other cause of the
    conflict accepts, of packages pip found no distribution of for MWAA's platform: a wheel
    of them is all the resolution lacks."""
    unavailable = UNAVAILABLE.search(output)
    causes = CAUSES.search(output)
    if not unavailable or not causes:
        return []
    names = {canonicalize_name(name.strip()) for name in unavailable[1].splitlines()}
    pins: dict[str, str] = {}
    wanted: list[Requirement] = []
    for cause in (line.strip() for line in causes[1].splitlines()):
        pinned = cause.startswith(PINNED)
        spec = cause.removeprefix(PINNED if pinned else "The user requested ")
        try:  # a dependency's cause reads `parent 1.0 depends on name>=2`
            requirement = Requirement(spec.split(" depends on ")[-1])
        except InvalidRequirement:
            return []
        exact = [s.version for s in requirement.specifier if s.operator == "=="]
        if pinned and len(exact) == 1:
            pins[canonicalize_name(requirement.name)] = exact[0]
        else:
            wanted.append(requirement)
    accepted = {
        name: version
        for name, version in pins.items()
        if name in names
        and all(
            want.specifier.contains(version, prereleases=True)
            for want in wanted
            if canonicalize_name(want.name) == name
        )
    }
    return sorted(accepted.items())


def without_wheels(output: str) -> tuple[list[str], set[str]]:
    """From pip's output, what it lacks a wheel of for MWAA's platform: MWAA's pins
    (name==version) and the requirements it found no distribution of at all (published as
    an sdist alone, perhaps, or no such package); and which of them are MWAA's pins."""
    pins = [f"{name}=={version}" for name, version in pins_without_wheels(output)]
    return pins + NO_VERSION.findall(output), set(pins)


def build_pure_wheel(requirement: str, folder: Path) -> str | None:
    """Build `requirement` from its sdist into `folder`: None where pip did and the wheel is
    pure Python (any platform), else why not. A wheel for this machine only is not kept."""
    before = set(folder.glob("*.whl"))
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-binary=:all:",
            "--no-input",
            "--progress-bar",
            "off",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(folder),
            requirement,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=False,
    )
    built = set(folder.glob("*.whl")) - before
    for wheel in built:
        if all(
            t.platform == "any" and t.abi == "none" for t in parse_wheel_filename(wheel.name)[3]
        ):
            return None
        wheel.unlink()
    if built:
        return "its sdist builds a wheel for this machine only, not a pure-Python one"
    if "No matching distribution found" in pip.stderr:
        return NO_SDIST
    return "its sdist does not build here"


NO_SDIST = "no source distribution to build one from"


def no_wheel(requirement: str, why: str, platform: str, python: str, pinned: bool) -> str:
    """Why pip cannot install a requirement (a pin of MWAA's) it found no wheel of for MWAA's
    platform, `why` it could not build a pure one, and what to do."""
    of = "at MWAA's pin" if pinned else "of"
    where = f"no wheel for {platform} / cp{python.replace('.', '')} {of} `{requirement}`"
    if why == NO_SDIST:  # a misspelled name reads the same
        return f"{where}, and {why}: check the name, or leave the package out"
    return (
        f"{where}, and {why}: build its wheel on {platform} with Python {python} (pip wheel"
        f" {requirement}) into a folder a --find-links line names, or leave the package out"
    )
