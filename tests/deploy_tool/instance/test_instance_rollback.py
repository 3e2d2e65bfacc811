"""`make history-requirements` and `make rollback-requirements` (issue 29, part 4: each
deploy-requirements is recorded in the bucket's history, and a rollback points the MWAA
environment back at an earlier run's object versions through UpdateEnvironment).

S3 is the local endpoint, MWAA's control plane the stand-in (mwaa_local.py); the exact
shape of the UpdateEnvironment request a rollback sends, and MWAA's answer with its own
types, are checked with botocore's Stubber against the MWAA API model.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from mwaa_deploy.bucket.local_bucket import LocalBucket
from mwaa_deploy.bucket.s3_bucket import S3Bucket
from mwaa_deploy.instance import instance_history, mwaa_environment
from mwaa_deploy.local.mwaa_local import MwaaLocal
from mwaa_deploy.local.mwaa_local_env import Environment
from mwaa_deploy.owners import INSTANCE_RECORD
from tests.deploy_tool.helpers import (
    CONSTRAINTS_LINE,
    GIT,
    SETTINGS,
    commit,
    deploy,
)
from tests.deploy_tool.instance.conftest import Run

NAME = SETTINGS.mwaa_environment


def versions(bucket: str) -> dict[str, str]:
    answer = boto3.client("s3").list_object_versions(Bucket=bucket)
    return {v["Key"]: v["VersionId"] for v in answer.get("Versions", []) if v["IsLatest"]}


def runs_file(environment: Environment) -> dict[str, str]:
    """What the environment runs: file field -> version."""
    return {k: v for k, v in environment.files.items() if k.endswith("ObjectVersion")}


def first_run_id(mwaa: MwaaLocal) -> str:
    """The short id of the oldest recorded run."""
    bucket = S3Bucket.open(mwaa.environment.bucket, "eu-west-1")
    return instance_history.recent(bucket, 99)[0][-1].short_id


def two_runs(root: Path, run: Run) -> None:
    """Deploy the project's files, then a second requirements.txt."""
    assert run("deploy-requirements")[0] == 0
    (root / "bucket_contents" / "requirements.txt").write_text(f"{CONSTRAINTS_LINE}\nsix\nsix\n")
    commit(root)
    assert run("deploy-requirements")[0] == 0


def test_each_deploy_requirements_is_recorded_with_its_versions_and_how_the_update_ended(
    project: Callable[..., Path], mwaa: MwaaLocal, run: Run
) -> None:
    project()
    assert run("deploy-requirements")[0] == 0

    bucket = boto3.client("s3")
    record = json.loads(
        bucket.get_object(Bucket=mwaa.environment.bucket, Key=INSTANCE_RECORD)["Body"].read()
    )
    now = versions(mwaa.environment.bucket)
    assert {key: entry["version"] for key, entry in record["objects"].items()} == {
        key: now[key] for key in ("plugins.zip", "requirements.txt", "startup.sh")
    }
    assert record["changed"] == ["plugins.zip", "requirements.txt", "startup.sh"]
    assert record["update"]["status"] == "SUCCESS", record
    assert "started" in record["update"], record["update"]
    assert datetime.fromisoformat(record["update"]["started"]).tzinfo is not None
    assert record["deploy"]["branch"] == SETTINGS.default_branch


def test_a_failed_update_is_recorded_as_failed_with_mwaas_error(
    project: Callable[..., Path], mwaa: MwaaLocal, run: Run
) -> None:
    project()
    mwaa.environment.fail_next_update("INCORRECT_CONFIGURATION", "pip install failed")
    assert run("deploy-requirements")[0] == 1

    code, out, _ = run("history-requirements")
    assert code == 0
    assert "FAILED (INCORRECT_CONFIGURATION: pip install failed)" in out
    assert "The environment runs files no run recorded here names" in out


def test_rollback_requirements_points_the_environment_back_at_the_previous_versions(
    project: Callable[..., Path], mwaa: MwaaLocal, run: Run
) -> None:
    root = project()
    assert run("deploy-requirements")[0] == 0
    first = runs_file(mwaa.environment)
    (root / "bucket_contents" / "requirements.txt").write_text(f"{CONSTRAINTS_LINE}\nsix\nsix\n")
    commit(root)
    assert run("deploy-requirements")[0] == 0
    assert runs_file(mwaa.environment) != first
    uploads = len(versions(mwaa.environment.bucket))

    code, out, err = run("rollback-requirements")

    assert (code, err) == (0, "")
    assert runs_file(mwaa.environment) == first
    # Only the file that differs is named, at its earlier version; nothing is uploaded.
    assert mwaa.environment.updates[-1] == {
        "Name": NAME,
        "WorkerReplacementStrategy": "GRACEFUL",
        "RequirementsS3Path": "requirements.txt",
        "RequirementsS3ObjectVersion": first["RequirementsS3ObjectVersion"],
    }
    assert len(versions(mwaa.environment.bucket)) == uploads
    assert f"{NAME} is AVAILABLE, running the new requirements.txt." in out.splitlines()
    newest = run("history-requirements")[1].splitlines()[2]
    assert newest.split()[:3] == ["rollback", "to", f"{first_run_id(mwaa)},"]


def test_a_second_rollback_undoes_the_first(
    project: Callable[..., Path], mwaa: MwaaLocal, run: Run
) -> None:
    two_runs(project(), run)
    second = runs_file(mwaa.environment)
    assert run("rollback-requirements")[0] == 0
    assert runs_file(mwaa.environment) != second

    assert run("rollback-requirements")[0] == 0
    assert runs_file(mwaa.environment) == second


def test_rollback_skips_runs_whose_update_failed(
    project: Callable[..., Path], mwaa: MwaaLocal, run: Run
) -> None:
    root = project()
    two_runs(root, run)
    good = runs_file(mwaa.environment)
    (root / "bucket_contents" / "startup.sh").write_text("#!/usr/bin/env bash\nexport Y=1\n")
    commit(root)
    mwaa.environment.fail_next_update("INCORRECT_CONFIGURATION", "startup failed")
    assert run("deploy-requirements")[0] == 1
    assert runs_file(mwaa.environment) == good  # MWAA rolled back by itself

    assert run("rollback-requirements")[0] == 0
    # Back before the last run that ran, not to the failed one's predecessor.
    assert (
        runs_file(mwaa.environment)["RequirementsS3ObjectVersion"]
        != (good["RequirementsS3ObjectVersion"])
    )
    runs, _ = instance_history.recent(S3Bucket.open(mwaa.environment.bucket, "eu-west-1"), 9)
    failed = next(recorded for recorded in runs if not recorded.ran)
    code, _, err = run("rollback-requirements", "--to", failed.short_id)
    assert code == 1 and "never ran on the environment (its update ended FAILED)" in err


def test_rollback_to_a_given_id_and_history_marks_what_runs(
    project: Callable[..., Path],
    mwaa: MwaaLocal,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
    run: Run,
) -> None:
    two_runs(project(), run)
    out = run("history-requirements")[1].splitlines()
    assert out[1].startswith("* ") and out[3].startswith("  ")
    first_id = out[3].split()[0]

    assert run("rollback-requirements", "--to", first_id)[0] == 0
    out = run("history-requirements")[1].splitlines()
    assert out[1].startswith("* ") and f"rollback to {first_id}" in out[2]
    code, out_, _ = run("rollback-requirements", "--to", first_id)
    assert code == 0 and "already runs the files of run" in out_


def test_rollback_requirements_refuses_off_the_default_branch_unless_forced(
    project: Callable[..., Path], mwaa: MwaaLocal, run: Run
) -> None:
    root = project()
    two_runs(root, run)
    subprocess.run([*GIT, "switch", "--quiet", "-c", "story/x"], cwd=root, check=True)
    updates = len(mwaa.environment.updates)
    code, _, err = run("rollback-requirements")
    assert code == 1 and "rollback-requirements runs from" in err
    assert len(mwaa.environment.updates) == updates
    assert run("rollback-requirements", "--force")[0] == 0


def test_a_prod_deploy_leaves_the_instance_wide_files_record_alone(
    project: Callable[..., Path], mwaa: MwaaLocal, run: Run
) -> None:
    root = project()
    assert run("deploy-requirements")[0] == 0
    bucket = S3Bucket.open(mwaa.environment.bucket, "eu-west-1")
    result = deploy(bucket, "PROD", root / "bucket_contents")
    assert INSTANCE_RECORD not in result.deleted
    assert bucket.get(INSTANCE_RECORD) is not None


def test_with_the_local_bucket_rollback_requirements_writes_the_earlier_files_back(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, run: Run
) -> None:
    monkeypatch.setenv("S3_BUCKET", "")
    root = project()
    first = (root / "bucket_contents" / "requirements.txt").read_bytes()
    two_runs(root, run)
    bucket = root / "local_bucket"
    assert (bucket / "requirements.txt").read_bytes() != first

    code, out, _ = run("rollback-requirements")

    assert code == 0, out
    assert (bucket / "requirements.txt").read_bytes() == first
    runs, total = instance_history.recent(LocalBucket(bucket), 10)
    assert total == 3 and runs[0].about["rollback_to"] == runs[2].id
    assert [r.update["status"] for r in runs] == ["WRITTEN"] * 3


def test_the_rollbacks_update_request_and_mwaas_answer_match_the_mwaa_api(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mwaa_environment, "POLL_SECONDS", 0)
    client = boto3.client(
        "mwaa", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    started = datetime(2026, 11, 28, 21, 4, 12, tzinfo=UTC)
    ended: dict[str, str] = {}
    with Stubber(client) as stub:
        stub.add_response(
            "update_environment",
            {"Arn": f"arn:aws:airflow:eu-west-1:123456789012:environment/{NAME}"},
            {
                "Name": NAME,
                "WorkerReplacementStrategy": "GRACEFUL",
                "PluginsS3Path": "plugins.zip",
                "PluginsS3ObjectVersion": "v1",
                "StartupScriptS3Path": "startup.sh",
                "StartupScriptS3ObjectVersion": "v2",
            },
        )
        stub.add_response(
            "get_environment",
            {
                "Environment": {
                    "Name": NAME,
                    "Status": "AVAILABLE",
                    "LastUpdate": {"Status": "SUCCESS", "CreatedAt": started},
                }
            },
            {"Name": NAME},
        )
        mwaa_environment.update_environment(
            client, NAME, {"plugins.zip": "v1", "startup.sh": "v2"}, ended.update
        )
        stub.assert_no_pending_responses()
    capsys.readouterr()
    assert ended == {"status": "SUCCESS", "started": "2026-11-28T21:04:12+00:00"}


def three_runs_the_last_adding_startup_sh(root: Path, run: Run) -> tuple[Path, bytes]:
    """On the local bucket: two runs without startup.sh, then one that adds it; the
    bucket, and the second run's requirements.txt."""
    (root / "bucket_contents" / "startup.sh").unlink()
    commit(root)
    two_runs(root, run)
    bucket = root / "local_bucket"
    second = (bucket / "requirements.txt").read_bytes()
    (root / "bucket_contents" / "startup.sh").write_text("#!/usr/bin/env bash\nexport Y=1\n")
    commit(root)
    assert run("deploy-requirements")[0] == 0
    return bucket, second


def test_a_rollback_undoes_a_run_that_only_added_startup_sh(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, run: Run
) -> None:
    """The environment runs a run's files only when it runs those and no others: after a
    run that added startup.sh, the run before it is not "already running"."""
    monkeypatch.setenv("S3_BUCKET", "")
    bucket, second = three_runs_the_last_adding_startup_sh(project(), run)

    code, out, _ = run("rollback-requirements")

    assert code == 0, out
    assert not (bucket / "startup.sh").exists(), out
    assert (bucket / "requirements.txt").read_bytes() == second


def test_after_files_put_back_by_hand_a_rollback_goes_back_from_the_run_they_match(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, run: Run
) -> None:
    """Never forward: where the environment runs an earlier run's files, the rollback
    goes to the run before that one, not to the newest."""
    monkeypatch.setenv("S3_BUCKET", "")
    bucket, second = three_runs_the_last_adding_startup_sh(project(), run)
    (bucket / "startup.sh").unlink()  # by hand: the environment runs the second run's files

    code, out, _ = run("rollback-requirements")

    assert code == 0, out
    assert (bucket / "requirements.txt").read_bytes() != second, out
    assert not (bucket / "startup.sh").exists(), out


def test_a_run_with_uncommitted_edits_says_so_where_its_files_are_named() -> None:
    edited = instance_history.Run(
        id="v1", about={"branch": "main", "commit": "0a551ae4c0ffee+"}, changed=(), objects={},
        update={},
    )  # fmt: skip
    assert instance_history.files_from(edited) == "main @ 0a551ae4+"
