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


def requirements_without_wheels(output: str) -> list[str]:
    """From pip's output, the requirements it found no distribution of at all for MWAA's
    platform: published as an sdist alone, perhaps (or no such package)."""
    return NO_VERSION.findall(output)


def build_pure_wheel(requirement: str, folder: Path) -> bool:
    """Build `requirement` from its sdist into `folder`; whether pip could and the wheel is
    pure Python (any platform). A wheel for this machine only is not kept."""
    before = set(folder.glob("*.whl"))
    subprocess.run(
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
        check=False,
    )
    pure = False
    for wheel in set(folder.glob("*.whl")) - before:
        if all(
            tag.platform == "any" and tag.abi == "none"
            for tag in parse_wheel_filename(wheel.name)[3]
        ):
            pure = True
        else:
            wheel.unlink()
    return pure


def no_wheel(name: str, version: str, platform: str, python: str) -> str:
    """Why pip cannot install a pin it could not build a pure wheel of, and what to do."""
    return (
        f"no wheel for {platform} / cp{python.replace('.', '')} at MWAA's pin"
        f" {name}=={version}, and its sdist builds no pure-Python wheel here: build its"
        f" wheel on {platform} with Python {python} (pip wheel {name}=={version}) into a"
        " folder a --find-links line names, or leave the package out"
    )
