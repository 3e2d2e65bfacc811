"""`make deploy-requirements` (DESIGN: the instance-wide files change the instance only from
the PROD path, only when their content changed, and the MWAA update is followed to its end).

S3 is the local endpoint; MWAA's control plane is the stand-in (mwaa_local.py), which the
SDK reaches through AWS_ENDPOINT_URL_MWAA as it reaches AWS, and which keeps what the
environment runs between calls. What MWAA itself would do wrong (refuse an update, fail
one) the tests ask of it.
"""

from __future__ import annotations

import os
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from mwaa_deploy.instance import mwaa_environment
from mwaa_deploy.local.mwaa_local import MwaaLocal
from mwaa_deploy.owners import INSTANCE_RECORD
from tests.deploy_tool.helpers import CONSTRAINTS_LINE, GIT, SETTINGS, commit
from tests.deploy_tool.instance.conftest import DeployRequirements
from tests.deploy_tool.s3_endpoint import S3Endpoint

NAME = SETTINGS.mwaa_environment


# -- deploy-requirements ------------------------------------------------------------------------


def latest_versions(bucket: str) -> dict[str, str]:
    """The instance-wide files' latest versions; their history's record left out."""
    answer = boto3.client("s3").list_object_versions(Bucket=bucket)
    return {
        v["Key"]: v["VersionId"]
        for v in answer.get("Versions", [])
        if v["IsLatest"] and v["Key"] != INSTANCE_RECORD
    }


# `make deploy-requirements ARGS`: its exit status, stdout and stderr.
def test_deploy_requirements_uploads_the_files_and_updates_the_environment_with_their_versions(
    project: Callable[..., Path], mwaa: MwaaLocal, deploy_requirements: DeployRequirements
) -> None:
    project()

    code, out, err = deploy_requirements()

    assert (code, err) == (0, "")
    versions = latest_versions(mwaa.environment.bucket)
    assert sorted(versions) == ["plugins.zip", "requirements.txt", "startup.sh"]
    assert mwaa.environment.updates == [
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


# A project whose instance-wide files the environment runs, and their object versions.
Deployed = tuple[Path, dict[str, str]]


@pytest.fixture
def deployed(
    project: Callable[..., Path], mwaa: MwaaLocal, deploy_requirements: DeployRequirements
) -> Deployed:
    root = project()
    assert deploy_requirements()[0] == 0
    return root, latest_versions(mwaa.environment.bucket)


def test_unchanged_instance_files_make_no_upload_and_no_update_call(
    deployed: Deployed, mwaa: MwaaLocal, aws: S3Endpoint, deploy_requirements: DeployRequirements
) -> None:
    root, _ = deployed
    # A fresh clone: every file has a new modification time.
    for path in (root / "bucket_contents").rglob("*"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    aws.reset()

    code, out, _ = deploy_requirements()

    assert code == 0
    assert (
        f"{NAME} already runs these instance-wide files: no upload, no update." in out.splitlines()
    )
    assert aws.count(["put"]) == 0
    assert len(mwaa.environment.updates) == 1


def test_only_the_changed_file_is_uploaded_and_named_in_the_update(
    deployed: Deployed, mwaa: MwaaLocal, aws: S3Endpoint, deploy_requirements: DeployRequirements
) -> None:
    root, _ = deployed
    (root / "bucket_contents" / "startup.sh").write_text("#!/usr/bin/env bash\nexport X=2\n")
    commit(root)
    aws.reset()

    assert deploy_requirements()[0] == 0

    assert aws.count(["put"]) == 2  # the file, then the run's record
    assert mwaa.environment.updates[-1] == {
        "Name": NAME,
        "WorkerReplacementStrategy": "GRACEFUL",
        "StartupScriptS3Path": "startup.sh",
        "StartupScriptS3ObjectVersion": latest_versions(mwaa.environment.bucket)["startup.sh"],
    }


def test_files_uploaded_by_a_refused_update_are_applied_by_the_next_run(
    project: Callable[..., Path], mwaa: MwaaLocal, deploy_requirements: DeployRequirements
) -> None:
    project()
    mwaa.environment.refuse_next_update("bad request")
    code, _, err = deploy_requirements()
    assert code == 1 and f"MWAA refused to update {NAME}" in err
    assert "(ValidationException) when calling the UpdateEnvironment operation: bad request" in err

    # The bucket holds the new files now, but the environment still runs none of them.
    assert deploy_requirements()[0] == 0
    assert set(mwaa.environment.updates[-1]) > {
        "RequirementsS3ObjectVersion",
        "PluginsS3ObjectVersion",
    }


@pytest.mark.parametrize("settled", ["AVAILABLE", "UPDATE_FAILED"])
def test_a_failed_update_reports_the_rollback_and_where_to_look(
    project: Callable[..., Path],
    mwaa: MwaaLocal,
    deploy_requirements: DeployRequirements,
    settled: str,
) -> None:
    project()
    mwaa.environment.fail_next_update("INCORRECT_CONFIGURATION", "pip install failed", settled)

    code, out, err = deploy_requirements()

    assert code == 1
    assert "  ROLLING_BACK after 0 min" in out.splitlines()
    assert err.startswith(
        f"the update of {NAME} failed (INCORRECT_CONFIGURATION: pip install failed); MWAA rolled"
        " back to the previous files."
    )
    assert f"log groups airflow-{NAME}-Worker and airflow-{NAME}-Scheduler" in err


def test_an_update_that_does_not_settle_is_given_up_with_advice(
    project: Callable[..., Path],
    mwaa: MwaaLocal,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
    monkeypatch: pytest.MonkeyPatch,
    deploy_requirements: DeployRequirements,
) -> None:
    project()
    monkeypatch.setattr(mwaa_environment, "GIVE_UP_AFTER", 0)
    code, _, err = deploy_requirements()
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
    mwaa: MwaaLocal,
    aws: S3Endpoint,
    deploy_requirements: DeployRequirements,
    status: str,
    bucket: str,
    refusal: str,
) -> None:
    project()
    mwaa.environment.status = status
    mwaa.environment.bucket = bucket or mwaa.environment.bucket
    code, _, err = deploy_requirements()
    assert code == 1 and err.startswith(refusal)
    assert aws.count(["put"]) == 0 and mwaa.environment.updates == []


def test_deploy_requirements_to_s3_with_no_environment_named_says_what_to_set(
    project: Callable[..., Path],
    mwaa: MwaaLocal,
    aws: S3Endpoint,
    deploy_requirements: DeployRequirements,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project()
    monkeypatch.setenv("MWAA_ENVIRONMENT", "")

    code, _, err = deploy_requirements()

    assert code == 1
    [line] = err.splitlines()
    assert "MWAA_ENVIRONMENT is empty" in line and "Parameter validation" not in line, line
    assert aws.count(["put"]) == 0 and mwaa.environment.updates == []


def test_a_failed_check_uploads_nothing_and_calls_no_mwaa(
    project: Callable[..., Path],
    mwaa: MwaaLocal,
    aws: S3Endpoint,
    deploy_requirements: DeployRequirements,
) -> None:
    project(requirements=f"{CONSTRAINTS_LINE}\napache-airflow-providers-dbt-clod\n")
    code, _, err = deploy_requirements()
    assert code == 1 and err.endswith("Check failed: nothing was uploaded.\n")
    assert aws.count(["put"]) == 0 and mwaa.calls == []


@pytest.mark.parametrize(
    "off_path", ["other-branch", "detached-head", "uncommitted-change", "not-a-clone"]
)
def test_deploy_requirements_refuses_off_the_prod_path_unless_forced(
    project: Callable[..., Path],
    mwaa: MwaaLocal,
    aws: S3Endpoint,
    deploy_requirements: DeployRequirements,
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

    code, _, err = deploy_requirements()
    assert code == 1 and err.startswith(said)
    assert "`make deploy-requirements FORCE=1`" in err
    assert aws.count(["put"]) == 0 and mwaa.calls == []

    assert deploy_requirements("--force")[0] == 0


def test_on_github_actions_the_branch_is_the_one_the_workflow_runs_for(
    project: Callable[..., Path],
    mwaa: MwaaLocal,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
    monkeypatch: pytest.MonkeyPatch,
    deploy_requirements: DeployRequirements,
) -> None:
    root = project()
    # Actions checks out a detached commit.
    subprocess.run([*GIT, "switch", "--quiet", "--detach"], cwd=root, check=True)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REF_TYPE", "branch")
    monkeypatch.setenv("GITHUB_REF_NAME", "story/x")
    code, _, err = deploy_requirements()
    assert code == 1 and "not from story/x" in err

    monkeypatch.setenv("GITHUB_REF_NAME", SETTINGS.default_branch)
    assert deploy_requirements()[0] == 0


def test_with_the_local_bucket_deploy_requirements_writes_the_files_there(
    project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    deploy_requirements: DeployRequirements,
) -> None:
    monkeypatch.setenv("S3_BUCKET", "")
    root = project()
    code, out, _ = deploy_requirements()
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
        "mwaa_policy.json",
        "operators/__init__.py",
        "operators/notify.py",
    ]
    assert (
        "nothing written to local bucket local_bucket; no MWAA environment to update."
    ) in deploy_requirements()[1].splitlines()
