"""Packages that publish only a source distribution, MWAA's pins (docopt==0.6.2 in every
constraints file) and a file's own requirements (sgmllib3k): check-requirements resolves
them as MWAA does online, building what pip can build;
pack-wheels builds a pure-Python wheel of them (platform-independent) or says there is no
wheel for MWAA's platform at that pin.

pip downloads and builds for real (docopt's sdist, from pip's cache after the first run).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from mwaa_deploy.__main__ import main
from tests.deploy_tool.helpers import CONSTRAINTS_LINE

SDIST_ONLY = f"{CONSTRAINTS_LINE}\nsix\ndocopt\n"


def test_check_requirements_passes_a_package_whose_mwaa_pin_is_a_pure_python_sdist(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project(requirements=SDIST_ONLY)
    assert main(["check-requirements"]) == 0, capsys.readouterr().err


def test_pack_wheels_builds_a_pure_python_wheel_of_a_pin_published_as_an_sdist(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(requirements=SDIST_ONLY)
    assert main(["pack-wheels"]) == 0, capsys.readouterr().err
    with zipfile.ZipFile(root / "build" / "offline" / "plugins.zip") as archive:
        assert "wheels/docopt-0.6.2-py2.py3-none-any.whl" in archive.namelist()


def test_check_requirements_passes_a_requirement_published_as_a_pure_python_sdist_alone(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """sgmllib3k, which feedparser needs, is no pin of MWAA's and has no wheel."""
    project(requirements=f"{CONSTRAINTS_LINE}\nsgmllib3k\n")
    assert main(["check-requirements"]) == 0, capsys.readouterr().err


def test_a_requirement_whose_sdist_builds_only_this_machines_wheel_says_so(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """crcmod publishes an sdist alone, with a C extension: its wheel here is for this
    machine, which MWAA's need not be."""
    project(requirements=f"{CONSTRAINTS_LINE}\ncrcmod\n")
    assert main(["check-requirements"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "bucket_contents/requirements.txt:2: no wheel for Linux x86_64 / cp312 of `crcmod`, and"
        " its sdist builds a wheel for this machine only, not a pure-Python one: build its"
        " wheel on Linux x86_64 with Python 3.12 (pip wheel crcmod) into a folder a"
        " --find-links line names, or leave the package out"
    )
