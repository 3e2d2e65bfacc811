"""What `make pack-wheels` leaves in build/offline/: both files of one run, or, when it
fails, both as they were, and a last line that says so; and never a user's own
plugins/wheels/ replaced by the packed wheels.

pip downloads for real (six, from pip's cache after the first run).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mwaa_deploy.__main__ import main
from tests.deploy_tool.helpers import CONSTRAINTS_LINE

GOOD = f"{CONSTRAINTS_LINE}\nsix\n"
OFFLINE = Path("build/offline")


def held(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_failed_pack_wheels_says_it_left_the_earlier_files_as_they_were(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(requirements=GOOD)
    assert main(["pack-wheels"]) == 0
    earlier = held(root / OFFLINE)
    (root / "bucket_contents" / "requirements.txt").write_text(f"{GOOD}pywin32\n")

    assert main(["pack-wheels"]) == 1

    last = capsys.readouterr().err.splitlines()[-1]
    assert "uploaded" not in last
    assert "build/offline" in last and "earlier" in last, last
    assert held(root / OFFLINE) == earlier


def test_a_failed_first_pack_wheels_says_it_wrote_nothing(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(requirements=f"{GOOD}pywin32\n")

    assert main(["pack-wheels"]) == 1

    last = capsys.readouterr().err.splitlines()[-1]
    assert "nothing was written to build/offline" in last, last
    assert not (root / OFFLINE / "requirements.txt").exists()


def test_a_failure_writing_plugins_zip_leaves_requirements_txt_as_it_was(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(requirements=GOOD)
    (root / OFFLINE / "plugins.zip").mkdir(parents=True)  # cannot be written over
    (root / OFFLINE / "requirements.txt").write_text("earlier\n")

    assert main(["pack-wheels"]) == 1

    [line] = capsys.readouterr().err.splitlines()
    assert "build/offline/plugins.zip" in line, line
    assert (root / OFFLINE / "requirements.txt").read_text() == "earlier\n"
    assert sorted(p.name for p in (root / OFFLINE).iterdir()) == ["plugins.zip", "requirements.txt"]


def test_pack_wheels_refuses_a_plugins_wheels_folder_of_the_users_own(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(requirements=GOOD)
    own = root / "bucket_contents" / "plugins" / "wheels"
    own.mkdir(parents=True)
    (own / "mine.txt").write_text("kept\n")

    assert main(["pack-wheels"]) == 1

    [problem, _] = capsys.readouterr().err.splitlines()
    assert problem.startswith("bucket_contents/plugins/wheels: "), problem
    assert not (root / OFFLINE).exists()


@pytest.mark.parametrize("blocked", ["build is a file", "build/offline is read-only"])
def test_a_build_folder_that_cannot_be_written_is_one_line_naming_it(
    project: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    blocked: str,
) -> None:
    root = project(requirements=GOOD)
    if blocked == "build is a file":
        (root / "build").write_text("not a folder\n")
        folder = "build"
    else:
        write_bytes = Path.write_bytes

        def read_only(path: Path, body: bytes) -> int:
            if path.parent == root / OFFLINE:
                raise PermissionError(13, "Permission denied", str(path))
            return write_bytes(path, body)

        monkeypatch.setattr(Path, "write_bytes", read_only)
        folder = "build/offline"

    assert main(["pack-wheels"]) == 1

    [line] = capsys.readouterr().err.splitlines()
    assert f"{folder}" in line and "writable" in line, line
    if (root / OFFLINE).is_dir():
        assert list((root / OFFLINE).iterdir()) == []


def test_pack_wheels_refuses_a_plugins_wheels_folder_in_any_case(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(requirements=GOOD)
    own = root / "bucket_contents" / "plugins" / "Wheels"
    own.mkdir(parents=True)
    (own / "mine-1.0-py3-none-any.whl").write_text("not a wheel\n")

    assert main(["pack-wheels"]) == 1

    [problem, _] = capsys.readouterr().err.splitlines()
    assert problem.startswith("bucket_contents/plugins/Wheels: "), problem
    assert not (root / OFFLINE).exists()
