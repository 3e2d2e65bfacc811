"""Syncing (DESIGN: an environment owns exactly dags/<ENV>_*), on the local bucket and on S3."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mwaa_deploy import file_state
from mwaa_deploy.__main__ import main
from mwaa_deploy.bucket import history, local_bucket, s3_lock, sync
from mwaa_deploy.bucket.buckets import Bucket
from mwaa_deploy.bucket.local_bucket import LocalBucket
from mwaa_deploy.bucket.plans import Plan
from mwaa_deploy.bucket.s3_bucket import S3Bucket
from mwaa_deploy.exceptions import BucketError, OwnershipError, SyncError
from mwaa_deploy.owners import lock_key
from mwaa_deploy.stamping import build as building
from mwaa_deploy.stamping.build import Build, stamp
from tests.deploy_tool.helpers import (
    GIT,
    SETTINGS,
    commit,
    contents,
    deploy,
    deployed_files,
    new_s3_bucket,
)
from tests.deploy_tool.s3_endpoint import S3Endpoint


def test_dev_and_prod_deploys_sit_side_by_side(bucket: Bucket) -> None:
    deploy(bucket, "DEV")
    deploy(bucket, "PROD")
    keys = contents(bucket)
    for source in (SETTINGS.sources / "dags").glob("*.py"):
        assert f"dags/DEV_{source.name}" in keys
        assert f"dags/PROD_{source.name}" in keys


def test_a_deploy_never_touches_the_other_environment_or_foreign_keys(bucket: Bucket) -> None:
    deploy(bucket, "PROD")
    before = {k: v for k, v in contents(bucket).items() if not k.startswith("dags/DEV_")}
    bucket.put("dags/DEV_stale.py", b"DEV = True\n")
    deploy(bucket, "DEV")
    sync.clean(bucket, "DEV")
    assert contents(bucket) == before


def test_unchanged_redeploy_uploads_nothing(
    bucket: Bucket, tmp_path: Path, s3_endpoint: S3Endpoint
) -> None:
    deploy(bucket, "DEV")
    # A fresh checkout: every file written anew, new mtimes, same content.
    checkout = shutil.copytree(SETTINGS.sources, tmp_path / "fresh-checkout")
    s3_endpoint.reset()
    again = deploy(bucket, "DEV", checkout)
    assert again.uploads == {} and again.deleted == [] and again.unchanged
    assert s3_endpoint.count(["put", "delete"]) == 0


def test_a_one_file_change_uploads_that_file_alone(
    bucket: Bucket, tmp_path: Path, s3_endpoint: S3Endpoint
) -> None:
    sources = tmp_path / "src"
    shutil.copytree(SETTINGS.sources, sources)
    deploy(bucket, "PROD", sources)
    with open(sources / "dags" / "dbt_models.py", "a") as dag:
        dag.write("# a comment\n")
    s3_endpoint.reset()
    again = deploy(bucket, "PROD", sources)
    assert again.changed == ["dags/PROD_dbt_models.py"] and not again.new and not again.deleted
    if isinstance(bucket, S3Bucket):
        # Besides the file: the deploy's record (and the lock, taken and released).
        uploaded = {r.key for r in s3_endpoint.requests if r.action == "put"}
        bookkeeping = {history.record_key("PROD"), lock_key("PROD")}
        assert uploaded - bookkeeping == {"dags/PROD_dbt_models.py"}


def test_an_unchanged_redeploy_from_a_fresh_checkout_stamps_nothing_and_an_edit_one_file(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy(bucket, "PROD")
    checkout = shutil.copytree(SETTINGS.sources, tmp_path / "fresh-checkout")
    stamped: list[str] = []
    for name in ("stamp_dag_file", "stamp_helper_module"):
        real = getattr(building, name)
        monkeypatch.setattr(
            building, name, lambda *args, real=real: stamped.append(args[1]) or real(*args)
        )

    again = deploy(bucket, "PROD", checkout)
    assert again.is_empty and stamped == []

    edited = checkout / "dags" / "dbt_models.py"
    edited.write_text(edited.read_text() + "# edited\n")
    assert deploy(bucket, "PROD", checkout).changed == ["dags/PROD_dbt_models.py"]
    assert stamped == [str(edited)]
    files = deployed_files(bucket)
    assert all(files[key] == body for key, body in stamp(checkout, "PROD").items())


def test_a_one_file_change_asks_s3_for_the_lock_the_file_and_the_record_alone_beyond_a_redeploy(
    aws: S3Endpoint, tmp_path: Path
) -> None:
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    sources = shutil.copytree(SETTINGS.sources, tmp_path / "src")
    deploy(bucket, "PROD", sources)
    aws.reset()
    deploy(bucket, "PROD", sources)
    unchanged = Counter((r.method, r.key) for r in aws.requests)
    with open(sources / "dags" / "dbt_models.py", "a") as dag:
        dag.write("# a comment\n")
    aws.reset()
    deploy(bucket, "PROD", sources)
    beyond = Counter((r.method, r.key) for r in aws.requests) - unchanged
    lock, record = lock_key("PROD"), history.record_key("PROD")
    assert sorted(beyond.elements()) == sorted(
        [("PUT", lock), ("PUT", "dags/PROD_dbt_models.py"), ("PUT", record), ("DELETE", lock)]
    )


def test_a_deploy_whose_record_moved_after_its_plan_plans_again_and_leaves_its_own_build(
    bucket: Bucket, tmp_path: Path
) -> None:
    ours = shutil.copytree(SETTINGS.sources, tmp_path / "ours")
    theirs = shutil.copytree(SETTINGS.sources, tmp_path / "theirs")
    deploy(bucket, "DEV", ours)
    with open(ours / "dags" / "dbt_models.py", "a") as dag:
        dag.write("# ours\n")
    planned = sync.plan(bucket, "DEV", Build(ours, "DEV"))
    with open(theirs / "dags" / "dbt_sources.py", "a") as dag:
        dag.write("# theirs, deployed between our plan and our lock\n")
    deploy(bucket, "DEV", theirs)

    sync.deploy(bucket, "DEV", Build(ours, "DEV"), planned=planned)

    build = stamp(ours, "DEV")
    assert {k: v for k, v in deployed_files(bucket).items() if k.startswith("dags/DEV_")} == build
    last = history.read(bucket, "DEV")
    assert last is not None
    assert {k: o["sha256"] for k, o in last.objects.items()} == {
        k: hashlib.sha256(v).hexdigest() for k, v in build.items()
    }


def test_the_local_bucket_hashes_again_only_the_files_changed_since_its_last_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_state, "SETTLED_NS", 0)  # every file settled, as between edits
    bucket = LocalBucket(tmp_path / "bucket")
    deploy(bucket, "DEV")
    bucket.list("dags/DEV_")
    hashed: list[bytes] = []
    monkeypatch.setattr(bucket, "etag_of", lambda body: hashed.append(body) or "x")
    assert bucket.list("dags/DEV_") and hashed == []
    edited = tmp_path / "bucket" / "dags" / "DEV_dbt_models.py"
    edited.write_bytes(edited.read_bytes().replace(b"DEV", b"XYZ"))  # same size
    bucket.list("dags/DEV_")
    assert hashed == [edited.read_bytes()]


def test_a_local_listing_skips_what_another_deploy_writes_or_deletes_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    deploy(bucket, "DEV")
    dags = tmp_path / "bucket" / "dags"
    (dags / "DEV_dbt_models.py.4242-139872.partial").write_bytes(b"half a file")
    listed = bucket.list("dags/DEV_")
    assert listed and not any(key.endswith(".partial") for key in listed)

    gone = dags / "DEV_dbt_models.py"
    every_file = local_bucket._files

    def deleted_once_read(folder: Path, name_start: str) -> Iterator[os.DirEntry[str]]:
        for entry in every_file(folder, name_start):
            if entry.path == str(gone):
                gone.unlink()  # as another deploy's delete between the read and the stat
            yield entry

    monkeypatch.setattr(local_bucket, "_files", deleted_once_read)
    assert bucket.list("dags/DEV_").keys() == listed.keys() - {"dags/DEV_dbt_models.py"}


def test_a_deploy_whose_record_was_cleaned_after_its_plan_plans_again(
    bucket: Bucket, tmp_path: Path
) -> None:
    sources = shutil.copytree(SETTINGS.sources, tmp_path / "src")
    deploy(bucket, "DEV", sources)
    with open(sources / "dags" / "dbt_models.py", "a") as dag:
        dag.write("# edited\n")
    planned = sync.plan(bucket, "DEV", Build(sources, "DEV"))
    sync.clean(bucket, "DEV")

    result = sync.deploy(bucket, "DEV", Build(sources, "DEV"), planned=planned)

    build = stamp(sources, "DEV")
    assert {k: v for k, v in deployed_files(bucket).items() if k.startswith("dags/DEV_")} == build
    # What the two passes did together: the parse gate waits for the edited file.
    assert "dags/DEV_dbt_models.py" in result.uploads
    last = history.read(bucket, "DEV")
    assert last is not None and last.objects.keys() == build.keys()


@pytest.mark.parametrize("damage", ["deleted", "not json", "another etag"])
def test_a_lost_or_damaged_record_is_written_anew_by_the_next_deploy_though_no_file_changed(
    bucket: Bucket, damage: str, request: pytest.FixtureRequest
) -> None:
    deploy(bucket, "DEV")
    key = history.record_key("DEV")
    if damage == "deleted":
        bucket.delete([key])
    elif damage == "not json":
        bucket.put(key, b"{")
    else:
        last = history.read(bucket, "DEV")
        assert last is not None
        objects = {k: v | {"etag": "0" * 32} for k, v in last.objects.items()}
        bucket.put(key, history.document(last.about, last.changes, objects))

    again = deploy(bucket, "DEV")

    if request.node.callspec.params["bucket"] != "s3-kms":  # opaque ETags: uploaded again
        assert not again.uploads and "its record written anew" in again.counts(done=True)
    last = history.read(bucket, "DEV")
    assert last is not None and last.objects.keys() == stamp(SETTINGS.sources, "DEV").keys()
    assert deploy(bucket, "DEV").is_empty  # and then nothing more to do


def test_a_lock_released_while_this_deploy_was_refused_it_is_taken_again(
    aws: S3Endpoint,
) -> None:
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    # The first conditional write finds a lock that is gone by the time it is read.
    aws.fail("PUT", lock_key("DEV"), status=412, code="PreconditionFailed", times=1)
    assert deploy(bucket, "DEV").new


def test_a_key_changed_by_hand_is_put_back(bucket: Bucket) -> None:
    first = deploy(bucket, "DEV")
    key = first.new[0]
    bucket.put(key, b"edited in the console\n")
    again = deploy(bucket, "DEV")
    assert again.changed == [key]
    assert contents(bucket)[key] == stamp(SETTINGS.sources, "DEV")[key]


def test_a_removed_source_is_deleted_by_the_next_deploy_of_that_environment_only(
    bucket: Bucket, tmp_path: Path
) -> None:
    dags = tmp_path / "src" / "dags"
    dags.mkdir(parents=True)
    for name in ("a.py", "b.py"):
        (dags / name).write_text("DEV = True\n")
    for env in ("DEV", "PROD"):
        deploy(bucket, env, tmp_path / "src")
    (dags / "b.py").unlink()
    result = deploy(bucket, "DEV", tmp_path / "src")
    assert result.deleted == ["dags/DEV_b.py"]
    keys = contents(bucket)
    assert "dags/DEV_b.py" not in keys and "dags/PROD_b.py" in keys


def test_plan_changes_nothing(bucket: Bucket) -> None:
    bucket.put("dags/DEV_stale.py", b"")
    before = contents(bucket)
    result = sync.plan(bucket, "DEV", stamp(SETTINGS.sources, "DEV"))
    assert result.new and result.deleted == ["dags/DEV_stale.py"]
    assert contents(bucket) == before


@pytest.mark.parametrize(
    "key", ["dags/PROD_x.py", "requirements.txt", "dags/x.py", "dags/DEV_/../PROD_x.py"]
)
def test_keys_outside_the_environment_are_refused(key: str) -> None:
    with pytest.raises(OwnershipError):
        sync.assert_owned("DEV", key)
    result = Plan(owner="DEV", new=[key], uploads={key: b""})
    with pytest.raises(OwnershipError):
        sync.apply(LocalBucket(Path("/nonexistent")), result)


def test_uploads_run_concurrently(aws: S3Endpoint, tmp_path: Path) -> None:
    dags = tmp_path / "src" / "dags"
    dags.mkdir(parents=True)
    for n in range(40):
        (dags / f"dag_{n}.py").write_text(f"DEV = True\nN = {n}\n")
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    aws.latency = 0.05  # a bucket a few network hops away
    deploy(bucket, "DEV", tmp_path / "src")
    assert aws.most_in_flight >= 4


def small_project(root: Path, names: list[str]) -> Path:
    (root / "dags").mkdir(parents=True, exist_ok=True)
    for old in (root / "dags").glob("*.py"):
        old.unlink()
    for name in names:
        (root / "dags" / name).write_text(f"DEV = True\nNAME = {name!r}\n")
    return root


def test_a_failed_upload_deletes_nothing_and_a_rerun_converges(
    aws: S3Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK retries a failing request; let it give up sooner than it would in CI.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    sources = small_project(tmp_path / "src", ["old.py"])
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    deploy(bucket, "DEV", sources)
    small_project(sources, ["a.py", "b.py", "c.py"])
    aws.fail("PUT", "dags/DEV_b.py", status=500, code="InternalError")
    with pytest.raises(SyncError) as failed:
        deploy(bucket, "DEV", sources)
    assert str(failed.value) == (
        f"DEV: cannot upload s3://{bucket.name}/dags/DEV_b.py: An error occurred"
        " (InternalError) when calling the PutObject operation (reached max retries: 1):"
        " injected by the test endpoint; 2 of 3 uploads done, 1 not done, nothing deleted."
        " Run the deploy again: it picks up where this one stopped."
    )
    assert sorted(deployed_files(bucket)) == ["dags/DEV_a.py", "dags/DEV_c.py", "dags/DEV_old.py"]
    aws.reset()
    rerun = deploy(bucket, "DEV", sources)
    assert rerun.new == ["dags/DEV_b.py"] and rerun.deleted == ["dags/DEV_old.py"]
    assert [r.key for r in aws.requests if r.action == "put"] == [
        lock_key("DEV"),
        "dags/DEV_b.py",
        history.record_key("DEV"),
    ]
    assert sorted(deployed_files(bucket)) == ["dags/DEV_a.py", "dags/DEV_b.py", "dags/DEV_c.py"]


def test_passing_network_errors_are_retried(aws: S3Endpoint) -> None:
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    # Each request fails at most twice: the SDK's third attempt goes through.
    aws.fail("PUT", "dags/DEV_*", status=503, code="SlowDown", times=2)
    result = deploy(bucket, "DEV")
    assert sorted(deployed_files(bucket)) == sorted(result.new)


def test_a_failed_deletion_says_the_uploads_are_done_and_a_rerun_finishes(
    aws: S3Endpoint, tmp_path: Path
) -> None:
    sources = small_project(tmp_path / "src", ["old.py"])
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    deploy(bucket, "DEV", sources)
    small_project(sources, ["new.py"])
    aws.fail("POST", status=403, code="AccessDenied")
    with pytest.raises(SyncError, match="all 1 uploads done, but deleting the stale keys"):
        deploy(bucket, "DEV", sources)
    assert sorted(deployed_files(bucket)) == ["dags/DEV_new.py", "dags/DEV_old.py"]
    aws.reset()
    rerun = deploy(bucket, "DEV", sources)
    assert rerun.uploads == {} and rerun.deleted == ["dags/DEV_old.py"]
    assert sorted(deployed_files(bucket)) == ["dags/DEV_new.py"]


@pytest.mark.usefixtures("aws", "kms_etags")
def test_on_sse_kms_a_lost_record_costs_one_upload_of_each_file() -> None:
    bucket = S3Bucket.open(new_s3_bucket("aws:kms"), "eu-west-1")
    first = deploy(bucket, "DEV")
    bucket.delete([history.record_key("DEV")])
    again = deploy(bucket, "DEV")
    assert again.changed == first.new
    assert deploy(bucket, "DEV").uploads == {}


@pytest.mark.usefixtures("aws")
def test_a_multipart_object_from_another_tool_is_replaced_once_then_recognised() -> None:
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    first = deploy(bucket, "DEV")
    key = first.new[0]
    # As `aws s3 cp` uploads a large file: in parts, so its ETag is not the MD5 of the body.
    client, name = bucket.client, bucket.name
    upload = client.create_multipart_upload(Bucket=name, Key=key)["UploadId"]
    part = client.upload_part(
        Bucket=name,
        Key=key,
        UploadId=upload,
        PartNumber=1,
        Body=stamp(SETTINGS.sources, "DEV")[key],
    )
    client.complete_multipart_upload(
        Bucket=name,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert bucket.list(key)[key].endswith("-1")
    assert deploy(bucket, "DEV").changed == [key]
    assert deploy(bucket, "DEV").uploads == {}


@pytest.mark.parametrize("bucket", ["local bucket", "S3 bucket", "missing S3 bucket"])
def test_a_failed_stamp_deploys_nothing(
    aws: S3Endpoint,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    bucket: str,
) -> None:
    """Also when stamping runs in a process of its own while the S3 bucket opens; and a
    stamp problem is the one reported, before anything the bucket has to say."""
    project = tmp_path / "project"
    (project / "bucket_contents" / "dags").mkdir(parents=True)
    (project / "bucket_contents" / "dags" / "etl.py").write_text("DEV = 1\n")
    (project / "pyproject.toml").write_bytes((SETTINGS.root / "pyproject.toml").read_bytes())
    monkeypatch.setattr("mwaa_deploy.config.PROJECT_ROOT", project)
    name = {"local bucket": "", "missing S3 bucket": "no-such-bucket"}.get(bucket)
    monkeypatch.setenv("S3_BUCKET", new_s3_bucket() if name is None else name)
    monkeypatch.chdir(project)
    assert main(["deploy", "DEV"]) == 1
    assert capsys.readouterr().err == (
        "bucket_contents/dags/etl.py:1: the flag is `DEV = 1`; sources must say `DEV = True`"
        " (the PROD deploy writes `DEV = False` itself)\n"
        "Stamp failed: nothing was deployed to DEV.\n"
    )
    assert not (project / "local_bucket").exists()
    assert aws.count(["put", "delete"]) == 0


@pytest.mark.usefixtures("aws")
def test_the_cli_deploys_to_the_s3_bucket_named_by_s3_bucket(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = new_s3_bucket()
    monkeypatch.setenv("S3_BUCKET", name)
    monkeypatch.chdir(tmp_path)
    assert main(["deploy", "DEV"]) == 0
    assert main(["plan", "DEV"]) == 0
    out = capsys.readouterr().out
    assert f"Deploying DEV to s3://{name}" in out and "0 new, 0 changed, 0 deleted" in out
    assert all(key.startswith("dags/DEV_") for key in S3Bucket(name, "eu-west-1").list(""))


@pytest.fixture
def deploy_errors(
    aws: S3Endpoint,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[[str], list[str]]:
    """`deploy DEV` on the command line, to a bucket that fails it: its lines on stderr."""
    monkeypatch.chdir(tmp_path)

    def run(bucket: str) -> list[str]:
        monkeypatch.setenv("S3_BUCKET", bucket)
        assert main(["deploy", "DEV"]) == 1
        return capsys.readouterr().err.splitlines()

    return run


def test_a_missing_bucket_is_one_clear_line(deploy_errors: Callable[[str], list[str]]) -> None:
    assert deploy_errors("no-such-mwaa-bucket") == [
        "cannot read the versioning of s3://no-such-mwaa-bucket: the bucket"
        " no-such-mwaa-bucket does not exist: check S3_BUCKET or s3_bucket"
    ]


def test_missing_credentials_are_one_clear_line(
    deploy_errors: Callable[[str], list[str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bucket = new_s3_bucket()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    # No profile files, and no instance metadata service to wait for.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    [line] = deploy_errors(bucket)
    assert line.endswith(
        ": no AWS credentials found: set AWS_PROFILE (after `aws sso login`),"
        " or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; or deploy to ./local_bucket instead:"
        " S3_BUCKET= make deploy-dev"
    )


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("credentials", ["an assume-role profile", "a web identity token"])
def test_a_deploy_signs_in_with_a_role_the_sdk_assumes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, credentials: str
) -> None:
    """Credentials the SDK gets from STS before the deploy asks S3: a profile that assumes
    the deploy role, or GitHub's OIDC token as a web identity (as on a runner with no keys)."""
    name = new_s3_bucket()
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    role = "arn:aws:iam::123456789012:role/deploy"
    if credentials == "an assume-role profile":
        config = tmp_path / "aws-config"
        config.write_text(
            f"[profile deploy]\nrole_arn = {role}\nsource_profile = person\n"
            "[profile person]\naws_access_key_id = person\naws_secret_access_key = secret\n"
        )
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        monkeypatch.setenv("AWS_PROFILE", "deploy")
    else:
        token = tmp_path / "oidc-token"
        token.write_text("a-token-from-github")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_ROLE_ARN", role)
        monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("S3_BUCKET", name)
    monkeypatch.chdir(tmp_path)

    assert main(["deploy", "DEV"]) == 0

    assert S3Bucket(name, "eu-west-1").list("dags/DEV_")


def test_access_denied_is_one_clear_line(
    aws: S3Endpoint, deploy_errors: Callable[[str], list[str]]
) -> None:
    name = new_s3_bucket()
    aws.fail("GET", "", status=403, code="AccessDenied")
    assert deploy_errors(name) == [
        f"cannot read the versioning of s3://{name}: access denied (AccessDenied): check that"
        " AWS_PROFILE or the keys in use are the deploy role's, and that its policy allows this"
    ]


def test_an_unversioned_bucket_is_refused_in_one_clear_line(
    aws: S3Endpoint, deploy_errors: Callable[[str], list[str]]
) -> None:
    name = new_s3_bucket(versioned=False)
    assert deploy_errors(name) == [
        f"s3://{name} is not versioned, and MWAA reads only versioned buckets: run `aws s3api"
        f" put-bucket-versioning --bucket {name} --versioning-configuration Status=Enabled`,"
        " or check S3_BUCKET"
    ]
    assert aws.count(["put"]) == 0


def on_another_branch(root: Path, _: pytest.MonkeyPatch) -> str:
    subprocess.run([*GIT, "switch", "--quiet", "-c", "story/x"], cwd=root, check=True)
    return f"deploy-prod runs from {SETTINGS.default_branch}, not from story/x"


def with_an_uncommitted_change(root: Path, _: pytest.MonkeyPatch) -> str:
    (root / "bucket_contents" / "dags" / "dbt_models.py").write_text("DEV = True\n")
    return "deploy-prod runs from committed code, and 1 file(s) have uncommitted changes"


def not_a_clone(root: Path, _: pytest.MonkeyPatch) -> str:
    shutil.rmtree(root / ".git")
    return f"deploy-prod runs from a git checkout of {SETTINGS.default_branch}"


def where_git_fails(root: Path, _: pytest.MonkeyPatch) -> str:
    (root / ".git" / "index").write_bytes(b"not an index")
    return "deploy-prod cannot tell whether this checkout is clean: git says: "


def without_git(root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PATH", str(root / "no-tools-here"))
    return "deploy-prod checks the checkout with git, and git is not installed"


def with_an_ignored_helper_package(root: Path, _: pytest.MonkeyPatch) -> str:
    (root / ".gitignore").write_text("build/\n")
    commit(root)
    (root / "bucket_contents/dags/build").mkdir()
    (root / "bucket_contents/dags/build/__init__.py").write_text("X = 1\n")
    return (
        "deploy-prod deploys only what is committed, and 1 file(s) are not:"
        " bucket_contents/dags/build/__init__.py (untracked or ignored by git)"
    )


def with_an_excluded_file(root: Path, _: pytest.MonkeyPatch) -> str:
    (root / ".git/info/exclude").write_text("scratch.py\n")
    (root / "bucket_contents/dags/scratch.py").write_text("DEV = True\n")
    return (
        "deploy-prod deploys only what is committed, and 1 file(s) are not:"
        " bucket_contents/dags/scratch.py (untracked or ignored by git)"
    )


def with_a_change_git_is_told_not_to_look_at(
    flag: str,
) -> Callable[[Path, pytest.MonkeyPatch], str]:
    """A committed DAG file edited after `git update-index <flag>` (assume-unchanged, or
    skip-worktree as a sparse checkout sets it): git status reads it as clean."""

    def edit(root: Path, _: pytest.MonkeyPatch) -> str:
        dag = "bucket_contents/dags/dbt_models.py"
        subprocess.run([*GIT, "update-index", flag, dag], cwd=root, check=True)
        with open(root / dag, "a") as file:
            file.write("# not committed\n")
        return (
            "deploy-prod deploys only what is committed, and 1 file(s) are not:"
            f" {dag} (differs from the commit)"
        )

    return edit


def with_a_dag_removed_behind_gits_back(root: Path, _: pytest.MonkeyPatch) -> str:
    dag = "bucket_contents/dags/dbt_sources.py"
    subprocess.run([*GIT, "update-index", "--assume-unchanged", dag], cwd=root, check=True)
    (root / dag).unlink()
    return (
        "deploy-prod deploys only what is committed, and 1 file(s) are not:"
        f" {dag} (committed, but missing from the checkout)"
    )


# How a checkout leaves the PROD path -> a function that takes it there and returns the
# start of what deploy-prod then says.
OFF_PATH = {
    "other-branch": on_another_branch,
    "uncommitted-change": with_an_uncommitted_change,
    "not-a-clone": not_a_clone,
    "git-fails": where_git_fails,
    "no-git": without_git,
    "ignored-helper-package": with_an_ignored_helper_package,
    "excluded-file": with_an_excluded_file,
    "assume-unchanged": with_a_change_git_is_told_not_to_look_at("--assume-unchanged"),
    "assume-unchanged-removed": with_a_dag_removed_behind_gits_back,
    "skip-worktree": with_a_change_git_is_told_not_to_look_at("--skip-worktree"),
}


@pytest.mark.parametrize("off_path", OFF_PATH)
def test_deploy_prod_to_s3_refuses_off_the_prod_path_unless_forced(
    project: Callable[..., Path],
    aws: S3Endpoint,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    off_path: str,
) -> None:
    root = project()
    monkeypatch.setenv("S3_BUCKET", new_s3_bucket())
    assert main(["deploy", "PROD"]) == 0
    said = OFF_PATH[off_path](root, monkeypatch)
    capsys.readouterr()
    aws.reset()

    assert main(["deploy", "PROD"]) == 1
    [error] = capsys.readouterr().err.splitlines()
    assert error.startswith(said) and error.endswith(
        "(or run `make deploy-prod FORCE=1` if you must)"
    )
    assert aws.count() == 0
    assert main(["deploy", "PROD", "--force"]) == 0


def test_a_clean_checkout_whose_line_endings_git_converts_deploys_to_prod(
    project: Callable[..., Path], aws: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison with the commit is git's own: its filters and line endings applied."""
    root = project()
    (root / ".gitattributes").write_text("*.py text eol=crlf\n")
    commit(root)
    for dag in (root / "bucket_contents" / "dags").rglob("*.py"):
        dag.unlink()
    subprocess.run([*GIT, "checkout", "--", "."], cwd=root, check=True)
    assert b"\r\n" in (root / "bucket_contents" / "dags" / "dbt_models.py").read_bytes()
    monkeypatch.setenv("S3_BUCKET", new_s3_bucket())
    assert main(["deploy", "PROD"]) == 0
    assert aws.count(["put"]) > 0


def finishes_within(seconds: float, work: Callable[[], object]) -> BaseException | None:
    """Run `work` in a thread; fail the test if it has not ended after `seconds`."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            work()
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    return outcome[0]


@pytest.mark.parametrize(("status", "code"), [(403, "AccessDenied"), (400, "KeyTooLongError")])
def test_a_failed_upload_among_many_ends_the_deploy_within_seconds(
    aws: S3Endpoint, tmp_path: Path, status: int, code: str
) -> None:
    sources = small_project(tmp_path / "src", [f"dag_{n:03}.py" for n in range(150)])
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    aws.latency = 0.01
    aws.fail("PUT", "dags/DEV_dag_003.py", status=status, code=code)
    error = finishes_within(20, lambda: deploy(bucket, "DEV", sources))
    assert isinstance(error, SyncError), error
    assert "nothing deleted" in str(error) and str(error).endswith(
        "This is not passing: running the deploy again fails the same way until it is fixed."
    )
    assert "dags/DEV_dag_003.py" not in contents(bucket)


def test_a_dying_endpoint_ends_the_deploy_within_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = S3Endpoint()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
    for name, value in [("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")]:
        monkeypatch.setenv(name, value)
    sources = small_project(tmp_path / "src", [f"dag_{n:03}.py" for n in range(300)])
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    endpoint.latency = 0.02

    def stop_once_uploads_began() -> None:
        while not any(r.key.endswith("_010.py") for r in endpoint.requests):
            time.sleep(0.01)
        endpoint.stop()

    threading.Thread(target=stop_once_uploads_began, daemon=True).start()
    error = finishes_within(30, lambda: deploy(bucket, "DEV", sources))
    assert isinstance(error, SyncError), error
    assert "uploads done" in str(error) and "nothing deleted" in str(error)
    assert str(error).endswith("Run the deploy again: it picks up where this one stopped.")


def test_an_endpoint_that_stops_answering_ends_the_deploy_within_seconds(
    aws: S3Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mwaa_deploy.bucket.s3_bucket.READ_TIMEOUT_SECONDS", 1)
    sources = small_project(tmp_path / "src", [f"dag_{n:03}.py" for n in range(60)])
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    aws.stall("PUT", "dags/DEV_dag_01*", seconds=4)
    error = finishes_within(20, lambda: deploy(bucket, "DEV", sources))
    assert isinstance(error, SyncError), error
    assert "nothing deleted" in str(error)


def test_a_failure_to_delete_many_keys_is_one_short_line(aws: S3Endpoint, tmp_path: Path) -> None:
    sources = small_project(tmp_path / "src", [f"old_{n:04}.py" for n in range(1400)])
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    deploy(bucket, "DEV", sources)
    small_project(sources, ["new.py"])
    aws.fail("POST", status=200, code="AccessDenied")
    with pytest.raises(SyncError) as failed:
        deploy(bucket, "DEV", sources)
    [line] = str(failed.value).splitlines()
    assert f"s3://{bucket.name} refused to delete 1400 keys (AccessDenied), such as" in line
    assert len(line) < 400, line


def test_a_file_where_the_local_bucket_needs_a_folder_is_one_line_and_permanent(
    tmp_path: Path,
) -> None:
    root = tmp_path / "bucket"
    root.mkdir()
    (root / "dags").write_text("not a folder")
    with pytest.raises(SyncError) as failed:
        deploy(LocalBucket(root), "DEV")
    message = str(failed.value)
    assert f"{root / 'dags'} is a file where a folder belongs; move it away" in message
    assert message.endswith("running the deploy again fails the same way until it is fixed.")


@contextmanager
def another_deploy_holding(bucket: Bucket, env: str) -> Iterator[None]:
    """The environment's lock, held by a deploy in another process (on S3: another machine)."""
    if isinstance(bucket, S3Bucket):
        bucket.put(lock_key(env), lock_until(soon()))
        yield
        bucket.delete([lock_key(env)])
        return
    holder = hold_local_lock(bucket, env)
    yield
    holder.kill()
    holder.wait()


def hold_local_lock(bucket: LocalBucket, env: str, **environ: str) -> subprocess.Popen[str]:
    """A process that takes the local bucket's lock of `env` and keeps it until killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from mwaa_deploy.bucket.local_bucket import LocalBucket\n"
         "bucket = LocalBucket(__import__('pathlib').Path(sys.argv[1]))\n"
         "with bucket.lock(sys.argv[2]):\n    print('held', flush=True)\n    time.sleep(60)\n",
         str(bucket.root), env],
        cwd=SETTINGS.root, stdout=subprocess.PIPE, text=True, env=os.environ | environ,
    )  # fmt: skip
    assert holder.stdout and holder.stdout.readline() == "held\n"
    return holder


def test_a_second_deploy_of_one_environment_at_once_is_refused_in_one_line(
    bucket: Bucket,
) -> None:
    with another_deploy_holding(bucket, "DEV"):
        with pytest.raises(BucketError) as refused:
            deploy(bucket, "DEV")
        deploy(bucket, "PROD")  # the other environment is not held up
    assert "another deploy of DEV" in str(refused.value)
    assert "\n" not in str(refused.value)
    deploy(bucket, "DEV")


def test_a_deploy_that_died_holding_the_local_lock_does_not_block_the_next(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    # In another temporary folder: the lock must not depend on where temporary files go.
    holder = hold_local_lock(bucket, "DEV", TMPDIR=str(tmp_path / "elsewhere"))
    with pytest.raises(BucketError, match="another deploy of DEV"):
        deploy(bucket, "DEV")
    holder.kill()
    holder.wait()
    assert deploy(bucket, "DEV").new


def a_finished_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", ""])
    finished.wait()
    return finished.pid


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("holder", ["dead-process-here", "this-process"])
def test_an_s3_lock_this_machine_left_is_taken_over_at_once(holder: str) -> None:
    """After a failed deploy (the lock's release failed with the rest), or a lock write
    whose answer was lost and retried, the rerun need not wait for the lease to lapse."""
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    pid = a_finished_pid() if holder == "dead-process-here" else os.getpid()
    left = {"user": "me", "host": socket.gethostname(), "machine": s3_lock.this_machine(),
            "pid": pid, "since": "2020-01-01T00:00:00Z",
            "until": "2999-01-01T00:00:00Z"}  # fmt: skip
    bucket.put(lock_key("DEV"), json.dumps(left).encode())
    assert deploy(bucket, "DEV").new
    assert lock_key("DEV") not in bucket.list("")


@pytest.mark.usefixtures("aws")
def test_an_s3_lock_held_elsewhere_is_refused_with_when_it_lapses() -> None:
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    until = soon()
    bucket.put(lock_key("DEV"), lock_until(until))
    with pytest.raises(BucketError) as refused:
        deploy(bucket, "DEV")
    assert str(refused.value) == (
        f"another deploy of DEV holds s3://{bucket.name}/dags/DEV_.lock (ci@runner-7 pid 7,"
        " since 2020-01-01T00:00:00Z): wait for it to finish; if it died on another machine,"
        f" its lock lapses at {until}"
    )


@pytest.mark.usefixtures("aws")
def test_an_s3_lock_left_by_a_crashed_deploy_lapses() -> None:
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    crashed = {"holder": "ci@runner pid 7", "since": "2020-01-01T00:00:00Z",
               "until": "2020-01-01T00:10:00Z"}  # fmt: skip
    bucket.put(lock_key("DEV"), json.dumps(crashed).encode())
    assert deploy(bucket, "DEV").new
    assert lock_key("DEV") not in bucket.list("")


def test_concurrent_cli_deploys_to_the_local_bucket_never_mix(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(SETTINGS.root / "bucket_contents", project / "bucket_contents")
    small_project(project / "bucket_contents", [f"dag_{n:03}.py" for n in range(300)])
    (project / "pyproject.toml").write_bytes((SETTINGS.root / "pyproject.toml").read_bytes())
    runs = [cli(project, "deploy", "DEV") for _ in range(3)]
    results = [(run.wait(60), run.communicate()) for run in runs]
    for status, (_, err) in results:
        assert status == 0 or "another deploy of DEV" in err, err
    built = stamp(project / "bucket_contents", "DEV")
    assert deployed_files(LocalBucket(project / "local_bucket")) == built


def cli(project: Path, *args: str, **environ: str) -> subprocess.Popen[str]:
    """`python -m mwaa_deploy ARGS` for `project`, as a separate process."""
    code = (
        "import sys, pathlib\nfrom mwaa_deploy import config\n"
        "config.PROJECT_ROOT = pathlib.Path(sys.argv[1])\n"
        "from mwaa_deploy.__main__ import main\nsys.exit(main(sys.argv[2:]))\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(project), *args],
        cwd=project,
        env=os.environ | {"PYTHONPATH": str(SETTINGS.root), "PYTHONUNBUFFERED": "1"} | environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("during", ["stamping", "uploads", "a stalled endpoint"])
def test_ctrl_c_stops_a_deploy_within_seconds_and_says_what_was_done(
    aws: S3Endpoint, tmp_path: Path, during: str
) -> None:
    project = tmp_path / "project"
    (project / "pyproject.toml").parent.mkdir()
    (project / "pyproject.toml").write_bytes((SETTINGS.root / "pyproject.toml").read_bytes())
    count = 4000 if during == "stamping" else 200
    body = "DEV = True\n" + "x = [1, 2, 3]\n" * (200 if during == "stamping" else 1)
    (project / "bucket_contents" / "dags").mkdir(parents=True)
    for n in range(count):
        (project / "bucket_contents" / "dags" / f"dag_{n:04}.py").write_text(body)
    name = new_s3_bucket()
    aws.latency = 0.2
    run = cli(project, "deploy", "DEV", S3_BUCKET=name, **aws_variables())
    if during == "stamping":
        time.sleep(0.5)
    else:
        while "uploaded" not in (run.stderr.readline() if run.stderr else "uploaded"):
            pass  # progress shows uploads have begun
    if during == "a stalled endpoint":
        for method in ("PUT", "GET", "DELETE"):
            aws.stall(method, seconds=10)
    run.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = run.communicate(timeout=15)
    # A stalled endpoint costs the grace given to uploads in flight, and to the lock's release.
    # Bounds with room for a busy machine: the test suite runs on two workers.
    assert time.monotonic() - started < (4 if during != "a stalled endpoint" else 5)
    assert run.returncode == 130
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    if during == "stamping":
        assert last == "Interrupted: nothing was deployed to DEV."
    else:
        assert last.startswith("DEV: interrupted; ") and "of 200 uploads done" in last
        assert last.endswith("nothing deleted. Run the deploy again to finish.")


def aws_variables() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("AWS_")}


def run_the_advice(message: str) -> None:
    """Run the command an error line gives (between backticks), as its reader would."""
    [command] = re.findall("`([^`]+)`", message)
    tools = Path(sys.executable).parent  # where the test tools, the AWS CLI among them, are
    environ = os.environ | {"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(shlex.split(command), env=environ, check=True, capture_output=True)


def lock_until(moment: str) -> bytes:
    return json.dumps(
        {
            "user": "ci",
            "host": "runner-7",
            "pid": 7,
            "since": "2020-01-01T00:00:00Z",
            "until": moment,
        }  # fmt: skip
    ).encode()


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"not json", "'not json', not a lock this tool wrote"),
        (lock_until("2020-01-01T00:10:00"), "a lock whose end, 2020-01-01T00:10:00, has no time"),
        (lock_until("2999-01-01T00:00:00Z"), "a lock held until 2999-01-01T00:00:00Z, further"),
    ],
    ids=["unreadable", "naive-time", "far-ahead"],
)
def test_an_s3_lock_that_would_never_lapse_is_named_with_the_command_to_remove_it(
    body: bytes, what: str
) -> None:
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    bucket.put(lock_key("DEV"), body)
    with pytest.raises(BucketError) as refused:
        deploy(bucket, "DEV")
    message = str(refused.value)
    assert message.startswith(f"s3://{bucket.name}/dags/DEV_.lock holds {what}")
    assert message.endswith(
        f"if no deploy of DEV is running, remove it: `aws s3 rm s3://{bucket.name}/dags/DEV_.lock`"
    )
    assert "\n" not in message and not bucket.list("dags/DEV_x")
    run_the_advice(message)
    assert deploy(bucket, "DEV").new


@pytest.mark.usefixtures("aws")
def test_an_s3_lock_of_another_pid_namespace_with_this_host_name_waits_for_its_lease() -> None:
    """A container on another machine, or beside this one, can have this host name, and
    its deploy's process id may be free here: only its lease tells that it is gone."""
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    held = {"user": "me", "host": socket.gethostname(), "pid": a_finished_pid(),
            "machine": "another-boot/4026530000",
            "since": "2020-01-01T00:00:00Z", "until": soon()}  # fmt: skip
    bucket.put(lock_key("DEV"), json.dumps(held).encode())
    with pytest.raises(BucketError, match="another deploy of DEV holds"):
        deploy(bucket, "DEV")


def soon() -> str:
    return (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def renewals_running() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if "lock renewal" in thread.name]


@pytest.mark.usefixtures("aws")
def test_a_deploy_that_runs_longer_than_the_lock_lease_keeps_its_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The lock's end is written in whole seconds: a 2 s lease ends 1 to 2 s after its
    # renewal, and surely before the 3 s this deploy holds it, unless renewed.
    monkeypatch.setattr(s3_lock, "LOCK_LEASE", timedelta(seconds=2))
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    with bucket.lock("DEV"):
        time.sleep(3)
        with monkeypatch.context() as another_machine:
            another_machine.setattr(socket, "gethostname", lambda: "runner-9")
            with pytest.raises(BucketError, match="another deploy of DEV holds"):
                with S3Bucket(bucket.name, "eu-west-1").lock("DEV"):
                    pass
    assert lock_key("DEV") not in bucket.list("")


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("ending", ["done", "failed", "ctrl-c"])
def test_the_lock_s_renewal_stops_with_the_deploy_however_it_ends(
    ending: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_lock, "LOCK_LEASE", timedelta(seconds=0.3))
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    raised = {"done": None, "failed": SyncError, "ctrl-c": KeyboardInterrupt}[ending]
    try:
        with bucket.lock("DEV"):
            time.sleep(0.5)
            assert renewals_running()
            if raised:
                raise raised("the deploy ends")
    except (SyncError, KeyboardInterrupt) as error:
        assert raised and isinstance(error, raised)
    deadline = time.monotonic() + 2
    while renewals_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not renewals_running()
    assert lock_key("DEV") not in bucket.list("")


@pytest.mark.usefixtures("aws")
def test_a_key_that_leads_out_of_its_owner_s_prefix_is_named_with_the_command_to_delete_it() -> (
    None
):
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    deploy(bucket, "DEV")
    escaping = "dags/DEV_x/../../evil.py"
    bucket.put(escaping, b"# put in by hand\n")
    before = contents(bucket)
    messages = set()
    for command in (
        lambda: sync.plan(bucket, "DEV", stamp(SETTINGS.sources, "DEV")),
        lambda: deploy(bucket, "DEV"),
        lambda: sync.clean(bucket, "DEV"),
    ):
        with pytest.raises(BucketError) as refused:
            command()
        messages.add(str(refused.value))
    assert messages == {
        f"{escaping} in s3://{bucket.name} starts with DEV's prefix but leads out of it (..),"
        " so no deploy of DEV may touch it: if you did not mean to put it there, delete it:"
        f" `aws s3 rm s3://{bucket.name}/{escaping}`"
    }
    assert contents(bucket) == before
    run_the_advice(messages.pop())
    assert escaping not in bucket.list("")
    assert deploy(bucket, "DEV").is_empty
