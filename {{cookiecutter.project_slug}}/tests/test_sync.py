"""Syncing (DESIGN: an environment owns exactly dags/<ENV>_*), on the local bucket and on S3."""

from __future__ import annotations

import itertools
from pathlib import Path

import boto3
import pytest

from mwaa_deploy import sync
from mwaa_deploy.__main__ import main
from mwaa_deploy.s3 import S3Bucket
from mwaa_deploy.stamp import stamp
from tests.conftest import SETTINGS

FOREIGN = {
    "requirements.txt": b"apache-airflow-providers-dbt-cloud\n",
    "plugins.zip": b"PK",
    "dags/.airflowignore": b"",
    "dags/team_b_report.py": b"# someone else's DAG\n",
}


BUCKET_NAMES = (f"mwaa-test-{n}" for n in itertools.count())


def contents(bucket: sync.Bucket) -> dict[str, bytes]:
    """Every object in the bucket, read back through the bucket's own storage."""
    if isinstance(bucket, S3Bucket):
        client = bucket.client
        keys = bucket.list("")
        return {k: client.get_object(Bucket=bucket.name, Key=k)["Body"].read() for k in keys}
    root = bucket.root
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def deploy(bucket: sync.Bucket, build: Path, env: str, sources: Path = SETTINGS.sources):
    stamp(sources, build, env)
    result = sync.plan(bucket, env, sync.read_build(build, env))
    sync.apply(bucket, result)
    return result


@pytest.fixture(params=["local", "s3"])
def bucket(request: pytest.FixtureRequest, tmp_path: Path) -> sync.Bucket:
    """A bucket already holding files this project does not own."""
    if request.param == "local":
        bucket = sync.LocalBucket(tmp_path / "bucket")
    else:
        request.getfixturevalue("aws")
        name = next(BUCKET_NAMES)
        client = boto3.client("s3")
        client.create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        bucket = S3Bucket(name, "eu-west-1")
    for key, body in FOREIGN.items():
        bucket.put(key, body)
    return bucket


def test_dev_and_prod_deploys_sit_side_by_side(bucket: sync.Bucket, tmp_path: Path) -> None:
    deploy(bucket, tmp_path / "build", "DEV")
    deploy(bucket, tmp_path / "build", "PROD")
    keys = contents(bucket)
    for source in (SETTINGS.sources / "dags").glob("*.py"):
        assert f"dags/DEV_{source.name}" in keys
        assert f"dags/PROD_{source.name}" in keys


def test_a_deploy_never_touches_the_other_environment_or_foreign_keys(
    bucket: sync.Bucket, tmp_path: Path
) -> None:
    deploy(bucket, tmp_path / "build", "PROD")
    before = {k: v for k, v in contents(bucket).items() if not k.startswith("dags/DEV_")}
    bucket.put("dags/DEV_stale.py", b"DEV = True\n")
    deploy(bucket, tmp_path / "build", "DEV")
    sync.clean(bucket, "DEV")
    assert contents(bucket) == before


def test_unchanged_redeploy_uploads_nothing(bucket: sync.Bucket, tmp_path: Path) -> None:
    deploy(bucket, tmp_path / "build", "DEV")
    # A fresh checkout: every file rewritten, new mtimes, same content.
    again = deploy(bucket, tmp_path / "fresh-build", "DEV")
    assert again.uploads == {} and again.deleted == [] and again.unchanged


def test_a_key_changed_by_hand_is_put_back(bucket: sync.Bucket, tmp_path: Path) -> None:
    first = deploy(bucket, tmp_path / "build", "DEV")
    key = first.new[0]
    bucket.put(key, b"edited in the console\n")
    again = deploy(bucket, tmp_path / "build", "DEV")
    assert again.changed == [key]
    assert contents(bucket)[key] == (tmp_path / "build" / "DEV" / key).read_bytes()


def test_a_removed_source_is_deleted_by_the_next_deploy_of_that_environment_only(
    bucket: sync.Bucket, tmp_path: Path
) -> None:
    dags = tmp_path / "src" / "dags"
    dags.mkdir(parents=True)
    for name in ("a.py", "b.py"):
        (dags / name).write_text("DEV = True\n")
    for env in ("DEV", "PROD"):
        deploy(bucket, tmp_path / "build", env, tmp_path / "src")
    (dags / "b.py").unlink()
    result = deploy(bucket, tmp_path / "build", "DEV", tmp_path / "src")
    assert result.deleted == ["dags/DEV_b.py"]
    keys = contents(bucket)
    assert "dags/DEV_b.py" not in keys and "dags/PROD_b.py" in keys


def test_plan_changes_nothing(bucket: sync.Bucket, tmp_path: Path) -> None:
    bucket.put("dags/DEV_stale.py", b"")
    before = contents(bucket)
    stamp(SETTINGS.sources, tmp_path / "build", "DEV")
    result = sync.plan(bucket, "DEV", sync.read_build(tmp_path / "build", "DEV"))
    assert result.new and result.deleted == ["dags/DEV_stale.py"]
    assert contents(bucket) == before


@pytest.mark.parametrize(
    "key", ["dags/PROD_x.py", "requirements.txt", "dags/x.py", "dags/DEV_/../PROD_x.py"]
)
def test_keys_outside_the_environment_are_refused(key: str) -> None:
    with pytest.raises(sync.OwnershipError):
        sync.assert_owned("DEV", key)
    result = sync.Plan(env="DEV", new=[key], uploads={key: b""})
    with pytest.raises(sync.OwnershipError):
        sync.apply(sync.LocalBucket(Path("/nonexistent")), result)


class FailingBucket(sync.LocalBucket):
    """Fails every upload after the first `budget` ones, like a network that drops."""

    def __init__(self, root: Path, budget: int) -> None:
        super().__init__(root)
        self.budget = budget

    def put(self, key: str, body: bytes) -> None:
        if self.budget == 0:
            raise sync.BucketError(f"connection reset while uploading {key}")
        self.budget -= 1
        super().put(key, body)


def test_a_failed_upload_deletes_nothing_and_a_rerun_converges(tmp_path: Path) -> None:
    dags = tmp_path / "src" / "dags"
    dags.mkdir(parents=True)
    (dags / "old.py").write_text("DEV = True\n")
    bucket = FailingBucket(tmp_path / "bucket", budget=1)
    deploy(bucket, tmp_path / "build", "DEV", tmp_path / "src")
    (dags / "old.py").unlink()
    for name in ("a.py", "b.py", "c.py"):
        (dags / name).write_text("DEV = True\n")
    bucket.budget = 1
    with pytest.raises(sync.SyncError, match="1 of 3 uploads done, 2 not done, nothing deleted"):
        deploy(bucket, tmp_path / "build", "DEV", tmp_path / "src")
    assert "dags/DEV_old.py" in contents(bucket)
    bucket.budget = 10
    rerun = deploy(bucket, tmp_path / "build", "DEV", tmp_path / "src")
    assert len(rerun.new) == 2 and rerun.deleted == ["dags/DEV_old.py"]
    assert sorted(contents(bucket)) == ["dags/DEV_a.py", "dags/DEV_b.py", "dags/DEV_c.py"]


def test_a_failed_stamp_deploys_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    (project / "bucket_contents" / "dags").mkdir(parents=True)
    (project / "bucket_contents" / "dags" / "etl.py").write_text("DEV = 1\n")
    (project / "pyproject.toml").write_bytes((SETTINGS.root / "pyproject.toml").read_bytes())
    monkeypatch.setattr("mwaa_deploy.config.PROJECT_ROOT", project)
    monkeypatch.delenv("S3_BUCKET", raising=False)
    monkeypatch.chdir(project)
    assert main(["deploy", "DEV"]) == 1
    error = capsys.readouterr().err
    assert "bucket_contents/dags/etl.py:1: the flag is `DEV = 1`" in error
    assert "nothing was deployed" in error
    assert not (project / "local_bucket").exists()


def test_the_cli_deploys_to_the_s3_bucket_named_by_s3_bucket(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = next(BUCKET_NAMES)
    boto3.client("s3").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    monkeypatch.setenv("S3_BUCKET", name)
    monkeypatch.chdir(tmp_path)
    assert main(["deploy", "DEV"]) == 0
    assert main(["plan", "DEV"]) == 0
    out = capsys.readouterr().out
    assert f"Deploying DEV to s3://{name}" in out and "0 new, 0 changed, 0 deleted" in out
    assert all(key.startswith("dags/DEV_") for key in S3Bucket(name, "eu-west-1").list(""))


def test_a_missing_bucket_is_one_clear_line(
    aws: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("S3_BUCKET", "no-such-mwaa-bucket")
    assert main(["deploy", "DEV"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("cannot list s3://no-such-mwaa-bucket/dags/DEV_*: ")
    assert "NoSuchBucket" in line


class UndeletableBucket(sync.LocalBucket):
    """Accepts uploads but fails deletions, like a role missing s3:DeleteObject."""

    def delete(self, keys: list[str]) -> None:
        raise sync.BucketError(f"access denied deleting {keys[0]}")


def test_a_failed_deletion_says_the_uploads_are_done_and_a_rerun_finishes(
    tmp_path: Path,
) -> None:
    dags = tmp_path / "src" / "dags"
    dags.mkdir(parents=True)
    (dags / "old.py").write_text("DEV = True\n")
    deploy(sync.LocalBucket(tmp_path / "bucket"), tmp_path / "build", "DEV", tmp_path / "src")
    (dags / "old.py").unlink()
    (dags / "new.py").write_text("DEV = True\n")
    with pytest.raises(sync.SyncError, match="all 1 uploads done, but deleting the stale keys"):
        deploy(UndeletableBucket(tmp_path / "bucket"), tmp_path / "build", "DEV", tmp_path / "src")
    bucket = sync.LocalBucket(tmp_path / "bucket")
    assert sorted(contents(bucket)) == ["dags/DEV_new.py", "dags/DEV_old.py"]
    rerun = deploy(bucket, tmp_path / "build", "DEV", tmp_path / "src")
    assert rerun.uploads == {} and rerun.deleted == ["dags/DEV_old.py"]
    assert sorted(contents(bucket)) == ["dags/DEV_new.py"]
