"""Instance-wide files (DESIGN: requirements.txt, plugins.zip and startup.sh are shared by DEV
and PROD, so they are checked before they reach the bucket): `make check-requirements`, and
plugins.zip packed the same way every time.

pip resolves for real, against MWAA's own constraint files (the tests' copies of them).
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import threading
import zipfile
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pytest

from mwaa_deploy.__main__ import main
from mwaa_deploy.instance import instance_files, mwaa_constraints
from tests.deploy_tool.helpers import CONSTRAINTS_LINE, CONSTRAINTS_URL, SETTINGS
from tests.helpers import MWAA_CONSTRAINTS

MWAA = f"MWAA (Linux x86_64, Python {SETTINGS.python_version})"
NO_WHEEL = f"no wheel for Linux x86_64 / cp{SETTINGS.python_version.replace('.', '')}"


def check_fails(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`make check-requirements`: it must exit non-zero; the problems it printed."""
    assert main(["check-requirements"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "Check failed: nothing was uploaded."
    return lines[:-1]


# -- check-requirements: what a reader could see -------------------------------------------------

OTHER_AIRFLOW = CONSTRAINTS_LINE.replace(f"-{SETTINGS.airflow_version}/", "-2.9.0/")
OTHER_PYTHON = CONSTRAINTS_LINE.replace(f"-{SETTINGS.python_version}.txt", "-3.10.txt")
WRITE = f"write {CONSTRAINTS_LINE}"
RUNS = (
    f"this environment runs Airflow {SETTINGS.airflow_version} on Python {SETTINGS.python_version}"
)


def pinned(package: str) -> str:
    """The version MWAA's constraints for this Airflow pin `package` to."""
    constraints = (
        MWAA_CONSTRAINTS / SETTINGS.airflow_version / "airflow_constraints.txt"
    ).read_text()
    return next(
        line.split("==")[1] for line in constraints.splitlines() if line.startswith(f"{package}==")
    )


@pytest.mark.parametrize(
    ("requirements", "problem"),
    [
        pytest.param(
            "six\n",
            f"bucket_contents/requirements.txt:1: no constraints line; make the first line"
            f" {CONSTRAINTS_LINE}",
            id="no-constraints-line",
        ),
        pytest.param(
            f"{OTHER_AIRFLOW}\nsix\n",
            "bucket_contents/requirements.txt:1: the constraints are for Airflow 2.9.0 on"
            f" Python {SETTINGS.python_version}, but {RUNS}; {WRITE}",
            id="constraints-of-another-airflow",
        ),
        pytest.param(
            f"{OTHER_PYTHON}\nsix\n",
            "bucket_contents/requirements.txt:1: the constraints are for Airflow"
            f" {SETTINGS.airflow_version} on Python 3.10, but {RUNS}; {WRITE}",
            id="constraints-of-another-python",
        ),
        pytest.param(
            f"{CONSTRAINTS_LINE}\nsix\n-c {CONSTRAINTS_URL}\n",
            "bucket_contents/requirements.txt:3: a second constraints line; keep only"
            f" {CONSTRAINTS_LINE}",
            id="two-constraints-lines",
        ),
        pytest.param(
            f"{CONSTRAINTS_LINE}\napache-airflow==2.9.0\n",
            "bucket_contents/requirements.txt:2: `apache-airflow==2.9.0` would replace the"
            f" Airflow MWAA runs ({SETTINGS.airflow_version}); remove it: the constraints line"
            " pins Airflow",
            id="airflow-itself",
        ),
        pytest.param(
            f"{CONSTRAINTS_LINE}\n\nsix >=\n",
            # The reason is packaging's, in its words.
            "bucket_contents/requirements.txt:3: `six >=` is not a requirement: Expected",
            id="not-a-requirement",
        ),
        pytest.param(
            f"{CONSTRAINTS_LINE}\n--upgrade\nsix\n",
            "bucket_contents/requirements.txt:2: `--upgrade` is not a pip option for MWAA's"
            " requirements.txt; it takes --constraint, --extra-index-url, --find-links,"
            " --index-url, --no-binary, --no-index, --only-binary, --pre, --prefer-binary,"
            " --require-hashes, --trusted-host",
            id="unknown-option",
        ),
    ],
)
def test_requirements_wrong_on_their_face_are_refused_by_line(
    project: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    requirements: str,
    problem: str,
) -> None:
    project(requirements=requirements)
    [found] = check_fails(capsys)
    assert found.startswith(problem)


# -- check-requirements: what only pip can tell ---------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        pytest.param(
            "apache-airflow-providers-dbt-clod",
            f"{NO_WHEEL} of `apache-airflow-providers-dbt-clod`, and no source distribution to"
            " build one from: check the name, or leave the package out",
            id="misspelled-package",
        ),
        pytest.param(
            "cowsay==99.0",
            f"no version matching `cowsay==99.0` installs on {MWAA}; the newest that does is",
            id="version-that-does-not-exist",
        ),
        pytest.param(
            "boto3==1.0.0",
            f"`boto3==1.0.0` conflicts: MWAA's constraints pin boto3=={pinned('boto3')}",
            id="pin-against-the-constraints",
        ),
        pytest.param(
            "pywin32",
            f"{NO_WHEEL} of `pywin32`, and no source distribution to build one from: check"
            " the name, or leave the package out",
            id="windows-only-package",
        ),
    ],
)
def test_requirements_pip_cannot_install_on_mwaa_are_refused_by_line(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str], line: str, problem: str
) -> None:
    project(requirements=f"{CONSTRAINTS_LINE}\n# added by the data team\n{line}\n")
    [found] = check_fails(capsys)
    assert found.startswith(f"bucket_contents/requirements.txt:3: {problem}")


def test_every_problem_is_reported_in_one_run(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project(
        requirements=(
            f"{OTHER_AIRFLOW}\n"
            "six\n"
            "six >=\n"
            "apache-airflow-providers-dbt-clod\n"
            "cowsay==99.0\n"
            "apache-airflow==2.9.0\n"
            "boto3==1.0.0\n"
            "--upgrade\n"
            "celery==5.3.0\n"
        ),
        startup='#!/usr/bin/env bash\nif [ -n "$X" ]; then\n',
    )
    expected = [
        ("requirements.txt:1", "the constraints are for Airflow 2.9.0"),
        ("requirements.txt:3", "`six >=` is not a requirement"),
        ("requirements.txt:4", f"{NO_WHEEL} of `apache-airflow-providers-dbt-clod`"),
        ("requirements.txt:5", "no version matching `cowsay==99.0`"),
        ("requirements.txt:6", "`apache-airflow==2.9.0` would replace the Airflow MWAA runs"),
        ("requirements.txt:7", "`boto3==1.0.0` conflicts"),
        ("requirements.txt:8", "`--upgrade` is not a pip option"),
        ("requirements.txt:9", "MWAA does not let requirements.txt change celery"),
        ("startup.sh", "syntax error"),
    ]
    found = check_fails(capsys)
    assert len(found) == len(expected), found
    for line, (where, what) in zip(found, expected, strict=True):
        assert line.startswith(f"bucket_contents/{where}: ") and what in line, line


def closed_port() -> int:
    """A port on loopback that nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_package_index_is_one_line_that_names_it(
    project: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = f"http://127.0.0.1:{closed_port()}/simple"
    for name in [name for name in os.environ if name.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no index but this one
    monkeypatch.setenv("PIP_INDEX_URL", index)
    monkeypatch.setenv("PIP_RETRIES", "1")  # pip's own retries, fewer for a quicker test
    project(requirements=f"{CONSTRAINTS_LINE}\nsix\ncowsay\n")
    assert check_fails(capsys) == [
        f"bucket_contents/requirements.txt: pip cannot reach the package index {index}"
        " (Connection refused), so the requirements could not be checked; check the network,"
        " and the index that PIP_INDEX_URL, pip's configuration or an --index-url line names"
    ]


def essential(package: str) -> str:
    """The version MWAA's essential constraints for this Airflow pin `package` to."""
    folder = MWAA_CONSTRAINTS / SETTINGS.airflow_version
    return mwaa_constraints.pins([folder / "mwaa_essential_constraints.txt"])[package]


# fluent-logger: pinned by MWAA's essential constraints alone, not by Airflow's.
@pytest.mark.parametrize(
    "line", ["celery==5.3.0", "celery<5", "Flask-AppBuilder>=99", "fluent-logger==0.10.0"]
)
def test_a_line_that_changes_an_essential_pin_is_refused_naming_the_line_and_the_pin(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str], line: str
) -> None:
    project(requirements=f"{CONSTRAINTS_LINE}\nsix\n{line}\n")
    name = line.split("=")[0].split("<")[0].split(">")[0]
    pin = f"{name}=={essential(mwaa_constraints.canonical(name))}"
    assert check_fails(capsys) == [
        f"bucket_contents/requirements.txt:3: `{line}` conflicts with MWAA's essential pin {pin}:"
        f" MWAA does not let requirements.txt change {name}; remove the version, or the line"
    ]


def test_an_essential_package_at_mwaas_own_version_passes(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project(requirements=f"{CONSTRAINTS_LINE}\ncelery=={essential('celery')}\nkombu\n")
    assert main(["check-requirements"]) == 0, capsys.readouterr().err


@pytest.mark.usefixtures("mwaa_constraints")
def test_the_baked_requirements_resolve_for_mwaa(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(SETTINGS.root)
    assert main(["check-requirements"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "Checked for MWAA: requirements.txt, plugins.zip." in out


class Publisher:
    """MWAA's constraint files served over real HTTP on loopback, laid out as in MWAA's
    images repository at the pinned commit; counts what was asked."""

    def __init__(self, root: Path) -> None:
        for version in (SETTINGS.airflow_version,):
            etc = root / "images" / "airflow" / version / "etc"
            shutil.copytree(MWAA_CONSTRAINTS / version, etc, ignore=shutil.ignore_patterns("*.md"))
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[misc]

            def log_message(self, *_: object) -> None:
                requests.append(self.path)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{port}/images/airflow/{{airflow}}/etc/{{name}}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def downloading(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    """A project that names no copies of MWAA's files, with an empty download cache."""
    root = project()
    monkeypatch.delenv("MWAA_CONSTRAINTS")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return root


def test_mwaas_constraints_are_downloaded_once_then_read_from_the_cache(
    downloading: Path,  # noqa: ARG001 - for its effect
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    publisher = Publisher(tmp_path / "published")
    monkeypatch.setattr(mwaa_constraints, "URL", publisher.url)
    try:
        assert main(["check-requirements"]) == 0, capsys.readouterr().err
    finally:
        publisher.stop()
    assert len(publisher.requests) == 2  # the two files, once
    cached = tmp_path / "cache/mwaa-deploy/mwaa-constraints" / mwaa_constraints.COMMIT
    assert sorted(p.name for p in (cached / SETTINGS.airflow_version).iterdir()) == sorted(
        mwaa_constraints.FILES
    )
    # GitHub gone: the cache answers.
    assert main(["check-requirements"]) == 0, capsys.readouterr().err


def test_the_real_address_is_mwaas_images_at_the_pinned_commit() -> None:
    url = mwaa_constraints.URL.format(
        repository=mwaa_constraints.REPOSITORY,
        commit=mwaa_constraints.COMMIT,
        airflow="3.3.1",
        name="mwaa_essential_constraints.txt",
    )
    readme = (MWAA_CONSTRAINTS / "README.md").read_text()
    assert url == (
        "https://raw.githubusercontent.com/aws/amazon-mwaa-docker-images/"
        f"{mwaa_constraints.COMMIT}/images/airflow/3.3.1/etc/mwaa_essential_constraints.txt"
    )
    assert mwaa_constraints.COMMIT in readme.replace("\n", " ")  # the tests' copies' commit


def test_unreachable_constraints_are_one_line_that_names_the_override(
    downloading: Path,  # noqa: ARG001 - for its effect
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A port nobody listens on, in place of GitHub.
    monkeypatch.setattr(mwaa_constraints, "URL", "http://127.0.0.1:9/{airflow}/{name}")
    [line] = check_fails(capsys)
    version = SETTINGS.airflow_version
    assert line.startswith(
        f"cannot download MWAA's constraints for Airflow {version} from 127.0.0.1:9 ("
    )
    assert line.endswith(
        f"); copy images/airflow/{version}/etc of {mwaa_constraints.REPOSITORY} at"
        f" {mwaa_constraints.COMMIT[:12]} into <folder>/{version}/ and set"
        " MWAA_CONSTRAINTS=<folder>"
    )
    assert len(line) < 250  # one line a terminal shows whole


@pytest.mark.parametrize("path", ["mwaa-constraints", "~/Downloads/mwaa-constraints"])
def test_offline_the_mwaa_constraints_setting_stands_in_for_the_download(
    downloading: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    path: str,
) -> None:
    monkeypatch.setattr(mwaa_constraints, "URL", "http://127.0.0.1:9/{airflow}/{name}")
    root = downloading
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    # Relative to the project, wherever the command runs; ~ is the user's home.
    saved = root / path if path[0] != "~" else tmp_path / "home" / path[2:]
    shutil.copytree(MWAA_CONSTRAINTS, saved)
    pyproject = root / "pyproject.toml"
    setting = 'mwaa_constraints = ""'
    assert setting in pyproject.read_text()
    pyproject.write_text(pyproject.read_text().replace(setting, f'mwaa_constraints = "{path}"'))
    monkeypatch.chdir(root / "bucket_contents")

    assert main(["check-requirements"]) == 0, capsys.readouterr().err


def test_a_constraints_folder_without_the_files_says_what_to_do(
    project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project()
    monkeypatch.setenv("MWAA_CONSTRAINTS", "downloads")
    version = SETTINGS.airflow_version
    assert check_fails(capsys) == [
        f"downloads/{version}: no airflow_constraints.txt or mwaa_essential_constraints.txt"
        " there, where MWAA_CONSTRAINTS (or mwaa_constraints in pyproject.toml) says MWAA's"
        f" constraints for Airflow {version} are; copy them from"
        f" github.com/aws/amazon-mwaa-docker-images/tree/{mwaa_constraints.COMMIT}/images/"
        f"airflow/{version}/etc"
    ]


def test_a_startup_script_bash_cannot_parse_is_refused(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project(startup='#!/usr/bin/env bash\nif [ -n "$X" ]; then\n  echo x\n')
    assert check_fails(capsys) == [
        "bucket_contents/startup.sh: line 4: syntax error: unexpected end of file"
    ]


# -- plugins.zip --------------------------------------------------------------------------------


def test_plugins_zip_has_the_same_bytes_for_the_same_sources(tmp_path: Path) -> None:
    files = {"hooks/__init__.py": "", "hooks/slack.py": "URL = 1\n", "README.md": "plugins\n"}
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, order in ((first, files), (second, dict(reversed(files.items())))):
        for name, text in order.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
    # A fresh clone: other times, other file modes, and a Python cache beside the code.
    for path in second.rglob("*"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    (second / "hooks" / "slack.py").chmod(0o755)
    (second / "hooks" / "__pycache__").mkdir()
    (second / "hooks" / "__pycache__" / "slack.cpython-312.pyc").write_bytes(b"\x00")
    (second / ".DS_Store").write_bytes(b"\x00")

    packed = instance_files.plugins_zip(first)
    assert instance_files.plugins_zip(second) == packed
    archive = zipfile.ZipFile(BytesIO(packed))
    assert archive.namelist() == sorted(files)
    assert archive.read("hooks/slack.py") == b"URL = 1\n"
    (second / "hooks" / "slack.py").write_text("URL = 2\n")
    assert instance_files.plugins_zip(second) != packed
