"""MWAA's constraint files (DESIGN: a baked project holds the two files for its own
version, so install and CI need no GitHub): the project's copies first, a download only
for another version, a folder the user names over both."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mwaa_deploy import config
from mwaa_deploy.exceptions import ConstraintsError
from mwaa_deploy.instance import mwaa_constraints
from tests.deploy_tool.helpers import SETTINGS
from tests.helpers import MWAA_CONSTRAINTS


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No folder named by the user, an empty cache, and GitHub at a port nobody listens on."""
    monkeypatch.delenv("MWAA_CONSTRAINTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setattr(mwaa_constraints, "URL", f"http://127.0.0.1:{port}/{{name}}")


@pytest.mark.usefixtures("offline")
def test_a_project_reads_its_own_airflow_versions_constraints_with_no_network() -> None:
    settings = config.load(SETTINGS.root)

    files = mwaa_constraints.files(settings)

    version = settings.airflow_version
    assert files == [
        SETTINGS.root / "mwaa-constraints" / version / n for n in mwaa_constraints.FILES
    ]
    assert mwaa_constraints.pins(files)["apache-airflow"] == version


@pytest.mark.usefixtures("offline")
def test_another_airflow_versions_constraints_are_downloaded_or_the_failure_says_so() -> None:
    settings = config.load(SETTINGS.root)

    with pytest.raises(
        ConstraintsError, match="cannot download MWAA's constraints for Airflow 2.10.3"
    ):
        mwaa_constraints.files(settings, "2.10.3")


def test_a_folder_the_user_names_is_read_in_place_of_the_projects_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MWAA_CONSTRAINTS", str(MWAA_CONSTRAINTS))

    files = mwaa_constraints.files(config.load(SETTINGS.root), "2.10.3")

    assert files == [MWAA_CONSTRAINTS / "2.10.3" / n for n in mwaa_constraints.FILES]
