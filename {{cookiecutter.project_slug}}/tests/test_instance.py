"""Instance-wide files (DESIGN: requirements.txt, plugins.zip and startup.sh are shared by DEV
and PROD, so they are checked before they reach the bucket and change the instance only from
the PROD path).

pip resolves for real, against a local constraints file; S3 is the local endpoint; MWAA's
control plane, which cannot run here, is botocore's Stubber, which checks every request
against the real MWAA service model.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mwaa_deploy import instance
from mwaa_deploy.__main__ import main
from tests.conftest import CONSTRAINTS_LINE, CONSTRAINTS_URL, GIT, SETTINGS, commit, new_s3_bucket
from tests.s3_endpoint import S3Endpoint

NAME = SETTINGS.mwaa_environment
MWAA = f"MWAA (Linux x86_64, Python {SETTINGS.python_version})"


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
            "no distribution of `apache-airflow-providers-dbt-clod` installs on"
            f" {MWAA}: check the name, or it publishes no wheel for that platform",
            id="misspelled-package",
        ),
        pytest.param(
            "cowsay==99.0",
            f"no version matching `cowsay==99.0` installs on {MWAA}; the newest that does is",
            id="version-that-does-not-exist",
        ),
        pytest.param(
            "boto3==1.0.0",
            "`boto3==1.0.0` conflicts: Airflow's constraints pin"
            f" boto3=={importlib.metadata.version('boto3')}",
            id="pin-against-the-constraints",
        ),
        pytest.param(
            "pywin32",
            f"no distribution of `pywin32` installs on {MWAA}: check the name, or it publishes"
            " no wheel for that platform",
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
        ),
        startup='#!/usr/bin/env bash\nif [ -n "$X" ]; then\n',
    )
    expected = [
        ("requirements.txt:1", "the constraints are for Airflow 2.9.0"),
        ("requirements.txt:3", "`six >=` is not a requirement"),
        ("requirements.txt:4", "no distribution of `apache-airflow-providers-dbt-clod`"),
        ("requirements.txt:5", "no version matching `cowsay==99.0`"),
        ("requirements.txt:6", "`apache-airflow==2.9.0` would replace the Airflow MWAA runs"),
        ("requirements.txt:7", "`boto3==1.0.0` conflicts"),
        ("requirements.txt:8", "`--upgrade` is not a pip option"),
        ("startup.sh", "syntax error"),
    ]
    found = check_fails(capsys)
    assert len(found) == len(expected), found
    for line, (where, what) in zip(found, expected, strict=True):
        assert line.startswith(f"bucket_contents/{where}: ") and what in line, line


def test_the_baked_requirements_resolve_for_mwaa(
    constraints_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CONSTRAINTS_FILE", str(constraints_file))
    monkeypatch.chdir(SETTINGS.root)
    assert main(["check-requirements"]) == 0
    assert "Checked for MWAA: requirements.txt." in capsys.readouterr().out.splitlines()


def test_unreachable_constraints_are_one_line_that_says_what_to_do(
    project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A port nobody listens on, in place of GitHub.
    monkeypatch.setattr(instance, "CONSTRAINTS_URL", "http://127.0.0.1:9/{airflow}/{python}.txt")
    url = f"http://127.0.0.1:9/{SETTINGS.airflow_version}/{SETTINGS.python_version}.txt"
    project(requirements=f'--constraint "{url}"\nsix\n')
    monkeypatch.delenv("CONSTRAINTS_FILE")
    [line] = check_fails(capsys)
    assert line.startswith(
        f"bucket_contents/requirements.txt:1: cannot download Airflow's constraints from {url} ("
    )
    assert line.endswith(
        "); download that file where GitHub can be reached, then set CONSTRAINTS_FILE=<its path>"
        " (or constraints_file in pyproject.toml) and run this again"
    )


@pytest.mark.parametrize("path", ["constraints.txt", "~/Downloads/constraints.txt"])
def test_offline_the_constraints_file_setting_stands_in_for_the_download(
    project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    constraints_file: Path,
    tmp_path: Path,
    path: str,
) -> None:
    monkeypatch.setattr(instance, "CONSTRAINTS_URL", "http://127.0.0.1:9/{airflow}/{python}.txt")
    url = f"http://127.0.0.1:9/{SETTINGS.airflow_version}/{SETTINGS.python_version}.txt"
    root = project(requirements=f'--constraint "{url}"\nsix\n')
    monkeypatch.delenv("CONSTRAINTS_FILE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    # Relative to the project, wherever the command runs; ~ is the user's home.
    saved = root / path if path[0] != "~" else tmp_path / "home" / path[2:]
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_bytes(constraints_file.read_bytes())
    pyproject = root / "pyproject.toml"
    setting = 'constraints_file = ""'
    assert setting in pyproject.read_text()
    pyproject.write_text(pyproject.read_text().replace(setting, f'constraints_file = "{path}"'))
    monkeypatch.chdir(root / "bucket_contents")

    assert main(["check-requirements"]) == 0, capsys.readouterr().err


def test_a_constraints_file_that_cannot_be_read_says_what_to_do(
    project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project()
    monkeypatch.setenv("CONSTRAINTS_FILE", "downloads/constraints.txt")
    assert check_fails(capsys) == [
        "downloads/constraints.txt: cannot read the constraints file that CONSTRAINTS_FILE"
        " (or constraints_file in pyproject.toml) names: No such file or directory; save"
        f" {CONSTRAINTS_URL} there, or point CONSTRAINTS_FILE at your copy of it"
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

    packed = instance.plugins_zip(first)
    assert instance.plugins_zip(second) == packed
    archive = zipfile.ZipFile(BytesIO(packed))
    assert archive.namelist() == sorted(files)
    assert archive.read("hooks/slack.py") == b"URL = 1\n"
    (second / "hooks" / "slack.py").write_text("URL = 2\n")
    assert instance.plugins_zip(second) != packed


# -- deploy-requirements ------------------------------------------------------------------------


class Mwaa:
    """The MWAA API as the deploy sees it: answers queued by the test, requests recorded."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.client = boto3.client("mwaa", region_name=SETTINGS.aws_region)
        self.stubber = Stubber(self.client)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.client.meta.events.register("provide-client-params.mwaa.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.requests.append((model.name, dict(params)))

    def answers(
        self,
        *statuses: str,
        running: dict[str, str] | None = None,
        bucket: str = "",
        last_update: dict[str, Any] | None = None,
    ) -> None:
        """GetEnvironment answers, one per status, for an environment running `running`."""
        for status in statuses:
            environment: dict[str, Any] = {
                "Name": NAME,
                "Status": status,
                "SourceBucketArn": f"arn:aws:s3:::{bucket or self.bucket}",
            }
            for key, version in (running or {}).items():
                environment[f"{instance.FIELDS[key]}S3Path"] = key
                environment[f"{instance.FIELDS[key]}S3ObjectVersion"] = version
            if last_update:
                environment["LastUpdate"] = last_update
            self.stubber.add_response(
                "get_environment", {"Environment": environment}, {"Name": NAME}
            )

    def accepts_update(self) -> None:
        arn = f"arn:aws:airflow:{SETTINGS.aws_region}:123456789012:environment/{NAME}"
        self.stubber.add_response("update_environment", {"Arn": arn})

    def takes_an_update(self, running: dict[str, str] | None = None) -> None:
        """An AVAILABLE environment, running `running`, that takes one update and settles."""
        self.answers("AVAILABLE", running=running)
        self.accepts_update()
        self.answers("AVAILABLE", last_update={"Status": "SUCCESS"})

    def updates(self) -> list[dict[str, Any]]:
        return [params for name, params in self.requests if name == "UpdateEnvironment"]


@pytest.fixture
def mwaa(aws: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mwaa]:
    """A versioned bucket named by S3_BUCKET, and the MWAA environment that reads it."""
    mwaa = Mwaa(new_s3_bucket())
    monkeypatch.setenv("S3_BUCKET", mwaa.bucket)
    monkeypatch.setattr("mwaa_deploy.__main__.mwaa_client", lambda settings: mwaa.client)
    monkeypatch.setattr(instance, "POLL_SECONDS", 0)
    with mwaa.stubber:
        yield mwaa
        mwaa.stubber.assert_no_pending_responses()


def latest_versions(bucket: str) -> dict[str, str]:
    answer = boto3.client("s3").list_object_versions(Bucket=bucket)
    return {v["Key"]: v["VersionId"] for v in answer.get("Versions", []) if v["IsLatest"]}


def deploy_requirements(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["deploy-requirements", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_deploy_requirements_uploads_the_files_and_updates_the_environment_with_their_versions(
    project: Callable[..., Path], mwaa: Mwaa, capsys: pytest.CaptureFixture[str]
) -> None:
    project()
    mwaa.answers("AVAILABLE")
    mwaa.accepts_update()
    mwaa.answers("UPDATING", "UPDATING", "AVAILABLE", last_update={"Status": "SUCCESS"})

    code, out, err = deploy_requirements(capsys)

    assert (code, err) == (0, "")
    versions = latest_versions(mwaa.bucket)
    assert sorted(versions) == ["plugins.zip", "requirements.txt", "startup.sh"]
    assert mwaa.updates() == [
        {
            "Name": NAME,
            "WorkerReplacementStrategy": "GRACEFUL",
            "RequirementsS3Path": "requirements.txt",
            "RequirementsS3ObjectVersion": versions["requirements.txt"],
            "StartupScriptS3Path": "startup.sh",
            "StartupScriptS3ObjectVersion": versions["startup.sh"],
            "PluginsS3Path": "plugins.zip",
            "PluginsS3ObjectVersion": versions["plugins.zip"],
        }
    ]
    assert "  AVAILABLE after 0 min" in out.splitlines()
    assert out.splitlines()[-1] == (
        f"{NAME} is AVAILABLE, running the new requirements.txt, startup.sh, plugins.zip."
    )


def test_unchanged_instance_files_make_no_upload_and_no_update_call(
    project: Callable[..., Path], mwaa: Mwaa, aws: S3Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project()
    mwaa.takes_an_update()
    assert deploy_requirements(capsys)[0] == 0
    running = latest_versions(mwaa.bucket)
    # A fresh clone: every file has a new modification time.
    for path in (root / "bucket_contents").rglob("*"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    aws.reset()

    mwaa.answers("AVAILABLE", running=running)
    code, out, _ = deploy_requirements(capsys)

    assert code == 0
    assert (
        f"{NAME} already runs these instance-wide files: no upload, no update." in out.splitlines()
    )
    assert aws.count(["put"]) == 0
    assert len(mwaa.updates()) == 1


def test_only_the_changed_file_is_uploaded_and_named_in_the_update(
    project: Callable[..., Path], mwaa: Mwaa, aws: S3Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project()
    mwaa.takes_an_update()
    assert deploy_requirements(capsys)[0] == 0
    running = latest_versions(mwaa.bucket)
    (root / "bucket_contents" / "startup.sh").write_text("#!/usr/bin/env bash\nexport X=2\n")
    commit(root)
    aws.reset()

    mwaa.takes_an_update(running)
    assert deploy_requirements(capsys)[0] == 0

    assert aws.count(["put"]) == 1
    assert mwaa.updates()[-1] == {
        "Name": NAME,
        "WorkerReplacementStrategy": "GRACEFUL",
        "StartupScriptS3Path": "startup.sh",
        "StartupScriptS3ObjectVersion": latest_versions(mwaa.bucket)["startup.sh"],
    }


def test_files_uploaded_by_a_failed_update_are_applied_by_the_next_run(
    project: Callable[..., Path], mwaa: Mwaa, capsys: pytest.CaptureFixture[str]
) -> None:
    project()
    mwaa.answers("AVAILABLE")
    mwaa.stubber.add_client_error("update_environment", "ValidationException", "bad request")
    code, _, err = deploy_requirements(capsys)
    assert code == 1 and f"MWAA refused to update {NAME}" in err

    # The bucket holds the new files now, but the environment still runs none of them.
    mwaa.takes_an_update()
    assert deploy_requirements(capsys)[0] == 0
    assert set(mwaa.updates()[-1]) > {"RequirementsS3ObjectVersion", "PluginsS3ObjectVersion"}


@pytest.mark.parametrize("settled", ["AVAILABLE", "UPDATE_FAILED"])
def test_a_failed_update_reports_the_rollback_and_where_to_look(
    project: Callable[..., Path], mwaa: Mwaa, capsys: pytest.CaptureFixture[str], settled: str
) -> None:
    project()
    failed = {
        "Status": "FAILED",
        "Error": {"ErrorCode": "INCORRECT_CONFIGURATION", "ErrorMessage": "pip install failed"},
    }
    mwaa.answers("AVAILABLE")
    mwaa.accepts_update()
    mwaa.answers("UPDATING", "ROLLING_BACK", settled, last_update=failed)

    code, out, err = deploy_requirements(capsys)

    assert code == 1
    assert "  ROLLING_BACK after 0 min" in out.splitlines()
    assert err.startswith(
        f"the update of {NAME} failed (INCORRECT_CONFIGURATION: pip install failed); MWAA rolled"
        " back to the previous files."
    )
    assert f"log groups airflow-{NAME}-Worker and airflow-{NAME}-Scheduler" in err


def test_an_update_that_does_not_settle_is_given_up_with_advice(
    project: Callable[..., Path],
    mwaa: Mwaa,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project()
    monkeypatch.setattr(instance, "GIVE_UP_AFTER", 0)
    mwaa.answers("AVAILABLE")
    mwaa.accepts_update()
    mwaa.answers("UPDATING")
    code, _, err = deploy_requirements(capsys)
    assert code == 1
    assert err == (
        f"{NAME} is still UPDATING after 0 minutes; follow it in the MWAA console, and do not"
        " start another update until it is AVAILABLE\n"
    )


@pytest.mark.parametrize(
    ("status", "bucket", "refusal"),
    [
        ("UPDATING", "", f"the MWAA environment {NAME} is UPDATING; run this again once it is"),
        ("AVAILABLE", "someone-elses-bucket", f"the MWAA environment {NAME} reads"),
    ],
    ids=["environment-busy", "environment-reads-another-bucket"],
)
def test_deploy_requirements_refuses_before_uploading_when_the_environment_cannot_take_it(
    project: Callable[..., Path],
    mwaa: Mwaa,
    aws: S3Endpoint,
    capsys: pytest.CaptureFixture[str],
    status: str,
    bucket: str,
    refusal: str,
) -> None:
    project()
    mwaa.answers(status, bucket=bucket)
    code, _, err = deploy_requirements(capsys)
    assert code == 1 and err.startswith(refusal)
    assert aws.count(["put"]) == 0 and mwaa.updates() == []


def test_a_failed_check_uploads_nothing_and_calls_no_mwaa(
    project: Callable[..., Path], mwaa: Mwaa, aws: S3Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    project(requirements=f"{CONSTRAINTS_LINE}\napache-airflow-providers-dbt-clod\n")
    code, _, err = deploy_requirements(capsys)
    assert code == 1 and err.endswith("Check failed: nothing was uploaded.\n")
    assert aws.count(["put"]) == 0 and mwaa.requests == []


@pytest.mark.parametrize(
    "off_path", ["other-branch", "detached-head", "uncommitted-change", "not-a-clone"]
)
def test_deploy_requirements_refuses_off_the_prod_path_unless_forced(
    project: Callable[..., Path],
    mwaa: Mwaa,
    aws: S3Endpoint,
    capsys: pytest.CaptureFixture[str],
    off_path: str,
) -> None:
    root = project()
    if off_path == "other-branch":
        subprocess.run([*GIT, "switch", "--quiet", "-c", "story/x"], cwd=root, check=True)
        said = f"deploy-requirements runs from {SETTINGS.default_branch}, not from story/x"
    elif off_path == "detached-head":
        subprocess.run([*GIT, "switch", "--quiet", "--detach"], cwd=root, check=True)
        said = f"deploy-requirements runs from {SETTINGS.default_branch}, not from a detached HEAD"
    elif off_path == "uncommitted-change":
        (root / "bucket_contents" / "startup.sh").write_text("#!/usr/bin/env bash\n")
        said = "deploy-requirements runs from committed code, and 1 file(s) have uncommitted"
    else:
        subprocess.run(["rm", "-rf", str(root / ".git")], check=True)
        said = f"deploy-requirements runs from a git checkout of {SETTINGS.default_branch}"

    code, _, err = deploy_requirements(capsys)
    assert code == 1 and err.startswith(said)
    assert "`make deploy-requirements FORCE=1`" in err
    assert aws.count(["put"]) == 0 and mwaa.requests == []

    mwaa.takes_an_update()
    assert deploy_requirements(capsys, "--force")[0] == 0


def test_on_github_actions_the_branch_is_the_one_the_workflow_runs_for(
    project: Callable[..., Path],
    mwaa: Mwaa,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = project()
    # Actions checks out a detached commit.
    subprocess.run([*GIT, "switch", "--quiet", "--detach"], cwd=root, check=True)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REF_TYPE", "branch")
    monkeypatch.setenv("GITHUB_REF_NAME", "story/x")
    code, _, err = deploy_requirements(capsys)
    assert code == 1 and "not from story/x" in err

    monkeypatch.setenv("GITHUB_REF_NAME", SETTINGS.default_branch)
    mwaa.takes_an_update()
    assert deploy_requirements(capsys)[0] == 0


def test_with_the_local_bucket_deploy_requirements_writes_the_files_there(
    project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("S3_BUCKET", "")
    root = project()
    code, out, _ = deploy_requirements(capsys)
    assert code == 0
    assert (
        "requirements.txt, startup.sh, plugins.zip written to local bucket local_bucket;"
        " no MWAA environment to update."
    ) in out.splitlines()
    bucket = root / "local_bucket"
    assert (bucket / "requirements.txt").read_bytes() == (
        root / "bucket_contents" / "requirements.txt"
    ).read_bytes()
    assert zipfile.ZipFile(bucket / "plugins.zip").namelist() == [
        "operators/__init__.py",
        "operators/notify.py",
    ]
    assert (
        "nothing written to local bucket local_bucket; no MWAA environment to update."
    ) in deploy_requirements(capsys)[1].splitlines()
