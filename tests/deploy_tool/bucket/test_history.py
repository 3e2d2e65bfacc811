"""History and rollback (DESIGN: every deploy records its object versions; a rollback
restores a previous deploy's exact versions for its owner only).

On every kind of bucket: the local one, S3, and S3 with SSE-KMS, whose ETags are not MD5s.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mwaa_deploy import owners
from mwaa_deploy.__main__ import main
from mwaa_deploy.bucket import history, sync
from mwaa_deploy.bucket.buckets import Bucket
from mwaa_deploy.bucket.local_bucket import LOCAL_VERSIONS, LocalBucket
from mwaa_deploy.bucket.s3_bucket import S3Bucket
from mwaa_deploy.exceptions import BucketError, HistoryError, Interrupted, SyncError
from mwaa_deploy.stamping.build import stamp
from tests.deploy_tool.helpers import FOREIGN, GIT, commit, contents, deploy, new_s3_bucket
from tests.deploy_tool.s3_endpoint import S3Endpoint


def dags(root: Path, **files: str) -> Path:
    """A project's sources holding exactly these DAG files (name: what follows the flag)."""
    folder = root / "dags"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.py"):
        old.unlink()
    for name, text in files.items():
        (folder / f"{name}.py").write_text(f"DEV = True\n{text}\n")
    return root


def files_of(bucket: Bucket, owner: str, deploy_id: str) -> dict[str, bytes]:
    """The files a deploy recorded, read back by the versions its record names."""
    record = history.read(bucket, owner, deploy_id)
    assert record is not None
    found = {key: bucket.get(key, entry["version"]) for key, entry in record.objects.items()}
    return {key: body for key, body in found.items() if body is not None}


def owned(bucket: Bucket, owner: str) -> dict[str, bytes]:
    """The owner's files in the bucket now, its record and lock left out."""
    bookkeeping = (history.record_key(owner), owners.lock_key(owner))
    start = f"dags/{owner}_"
    return {
        k: v for k, v in contents(bucket).items() if k.startswith(start) and k not in bookkeeping
    }


def test_every_deploy_that_changes_something_records_each_file_with_its_version(
    bucket: Bucket, tmp_path: Path
) -> None:
    sources = dags(tmp_path, orders="ORDERS = 1", sales="SALES = 1")
    deploy(bucket, "PROD", sources)
    dags(sources, orders="ORDERS = 2", sales="SALES = 1")
    deploy(bucket, "PROD", sources)
    last = history.read(bucket, "PROD", history.deploy_ids(bucket, "PROD")[0])
    assert last is not None
    assert last.changes == "1 uploaded (0 new, 1 changed), 0 deleted, 1 unchanged"
    assert sorted(last.objects) == ["dags/PROD_orders.py", "dags/PROD_sales.py"]
    for key, entry in last.objects.items():
        body = bucket.get(key)
        assert body is not None and hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert entry["version"] == bucket.version_of(key)
        assert bucket.get(key, entry["version"]) == body


def test_an_unchanged_redeploy_adds_nothing_to_the_history(bucket: Bucket, tmp_path: Path) -> None:
    sources = dags(tmp_path, orders="ORDERS = 1")
    deploy(bucket, "DEV", sources)
    deploy(bucket, "DEV", sources)
    assert len(history.deploy_ids(bucket, "DEV")) == 1


def test_the_record_is_the_last_object_a_deploy_writes_and_says_where_it_came_from(
    project: Callable[..., Path], aws: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project()
    name = new_s3_bucket()
    monkeypatch.setenv("S3_BUCKET", name)
    assert main(["deploy", "PROD"]) == 0
    puts = [request.key for request in aws.requests if request.action == "put"]
    assert puts[-1] == history.record_key("PROD")
    last = history.read(S3Bucket(name, "eu-west-1"), "PROD")
    assert last is not None
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    assert last.about["branch"] == "main" and last.about["commit"] == head.stdout.strip()
    assert {"time", "by"} <= last.about.keys()


def test_a_rollback_puts_back_the_exact_files_of_the_deploy_before_and_can_be_rolled_back(
    bucket: Bucket, tmp_path: Path
) -> None:
    deploy(bucket, "DEV", dags(tmp_path / "dev", orders="ORDERS = 'dev'"))
    sources = dags(tmp_path / "prod", orders="ORDERS = 1", sales="SALES = 1")
    deploy(bucket, "PROD", sources)
    deploy(bucket, "PROD", dags(sources, orders="ORDERS = 2", stock="STOCK = 1"))
    deploy(bucket, "PROD", dags(sources, orders="ORDERS = 3", stock="STOCK = 1"))
    others = {k: v for k, v in contents(bucket).items() if not k.startswith("dags/PROD_")}
    third, second, first = history.deploy_ids(bucket, "PROD")

    earlier, _ = sync.rollback(bucket, "PROD", "")
    assert earlier.id == second and owned(bucket, "PROD") == files_of(bucket, "PROD", second)
    # The rollback is the newest deploy now: rolling back again undoes it.
    earlier, _ = sync.rollback(bucket, "PROD", "")
    assert earlier.id == third and owned(bucket, "PROD") == files_of(bucket, "PROD", third)
    earlier, result = sync.rollback(bucket, "PROD", first[: history.SHORT_ID])
    assert earlier.id == first and owned(bucket, "PROD") == files_of(bucket, "PROD", first)
    assert result.new == ["dags/PROD_sales.py"] and result.deleted == ["dags/PROD_stock.py"]

    newest = history.read(bucket, "PROD", history.deploy_ids(bucket, "PROD")[0])
    assert newest is not None and newest.about["rollback_to"] == first
    assert {k: v for k, v in contents(bucket).items() if not k.startswith("dags/PROD_")} == others
    assert all(contents(bucket)[key] == body for key, body in FOREIGN.items())


def test_a_rollback_to_what_the_bucket_holds_changes_nothing(
    bucket: Bucket, tmp_path: Path
) -> None:
    sources = dags(tmp_path, orders="ORDERS = 1")
    deploy(bucket, "DEV", sources)
    deploy(bucket, "DEV", dags(sources, orders="ORDERS = 2"))
    deploy(bucket, "DEV", dags(sources, orders="ORDERS = 1"))
    _, result = sync.rollback(bucket, "DEV", history.deploy_ids(bucket, "DEV")[2])
    assert result.is_empty and len(history.deploy_ids(bucket, "DEV")) == 3


def test_after_a_clean_a_rollback_puts_back_the_last_deploy(bucket: Bucket, tmp_path: Path) -> None:
    deploy(bucket, "DEV", dags(tmp_path, orders="ORDERS = 1"))
    [last] = history.deploy_ids(bucket, "DEV")
    before = owned(bucket, "DEV")
    sync.clean(bucket, "DEV")
    earlier, _ = sync.rollback(bucket, "DEV", "")
    assert earlier.id == last and owned(bucket, "DEV") == before


@pytest.mark.parametrize(
    ("deploys", "to", "says"),
    [
        (0, "", "no deploy of DEV is recorded in {where}: nothing to roll back to"),
        (1, "", "DEV has one recorded deploy in {where}, its current one: nothing before it"),
        (2, "nosuchid", "no deploy of DEV in {where} has an ID starting with 'nosuchid'"),
    ],
    ids=["none", "only-one", "unknown-id"],
)
def test_a_rollback_with_nothing_to_go_back_to_says_so_and_changes_nothing(
    bucket: Bucket, tmp_path: Path, deploys: int, to: str, says: str
) -> None:
    for n in range(deploys):
        deploy(bucket, "DEV", dags(tmp_path, orders=f"ORDERS = {n}"))
    before = contents(bucket)
    with pytest.raises(HistoryError) as refused:
        sync.rollback(bucket, "DEV", to)
    assert str(refused.value).startswith(says.format(where=bucket.description))
    assert contents(bucket) == before


@pytest.mark.usefixtures("aws")
def test_a_rollback_whose_files_are_gone_from_the_bucket_changes_nothing(tmp_path: Path) -> None:
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    sources = dags(tmp_path, orders="ORDERS = 1", sales="SALES = 1")
    deploy(bucket, "PROD", sources)
    deploy(bucket, "PROD", dags(sources, orders="ORDERS = 2", sales="SALES = 1"))
    first = history.deploy_ids(bucket, "PROD")[1]
    # As a lifecycle rule that expires old versions would.
    gone = history.read(bucket, "PROD", first).objects["dags/PROD_orders.py"]["version"]
    bucket.client.delete_object(Bucket=bucket.name, Key="dags/PROD_orders.py", VersionId=gone)
    before = contents(bucket)
    with pytest.raises(HistoryError, match=r"dags/PROD_orders.py of deploy \S+ is gone from"):
        sync.rollback(bucket, "PROD", "")
    assert contents(bucket) == before


@pytest.mark.parametrize("key", ["dags/PROD_orders.py", "dags/DEV_x/../../requirements.txt"])
def test_a_record_that_lists_a_key_its_owner_does_not_own_is_refused(
    bucket: Bucket, tmp_path: Path, key: str
) -> None:
    deploy(bucket, "DEV", dags(tmp_path, orders="ORDERS = 1"))
    forged = {key: {"sha256": "0" * 64, "etag": "x", "version": "1"}}
    bucket.put(history.record_key("DEV"), history.document({}, "", forged))
    deploy(bucket, "DEV", dags(tmp_path, orders="ORDERS = 2"))
    before = contents(bucket)
    with pytest.raises(HistoryError, match=f"lists '{re.escape(key)}', which DEV does not own"):
        sync.rollback(bucket, "DEV", "")
    assert contents(bucket) == before


def test_a_record_from_before_versions_were_kept_is_completed_by_the_next_deploy(
    bucket: Bucket, tmp_path: Path
) -> None:
    sources = dags(tmp_path, orders="ORDERS = 1", sales="SALES = 1")
    deploy(bucket, "DEV", sources)
    # The record as the tool wrote it before it kept a history: no versions, no schema.
    bucket.put(history.record_key("DEV"), b'{"deploy": {}, "objects": {}}\n')
    deploy(bucket, "DEV", dags(sources, orders="ORDERS = 2", sales="SALES = 1"))
    newest, older = history.deploy_ids(bucket, "DEV")[:2]
    last = history.read(bucket, "DEV", newest)
    assert last is not None and last.lists_every_file
    assert {key: entry["version"] for key, entry in last.objects.items()} == {
        key: bucket.version_of(key) for key in last.objects
    }
    with pytest.raises(HistoryError, match="older than this tool's history"):
        sync.rollback(bucket, "DEV", older)


def test_make_history_lists_the_last_deploys_newest_first(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project()
    assert main(["deploy", "DEV"]) == 0
    (root / "bucket_contents" / "dags" / "extra.py").write_text("DEV = True\n")
    assert main(["deploy", "DEV"]) == 0
    assert main(["rollback", "DEV"]) == 0
    capsys.readouterr()
    assert main(["history", "DEV", "--last", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    local = LocalBucket(root / "local_bucket")
    ids = [deploy_id[: history.SHORT_ID] for deploy_id in history.deploy_ids(local, "DEV")]
    assert lines[0].startswith("Deploys of DEV to local bucket ")
    assert lines[1].startswith(f"* {ids[0]}  ") and " main @ " in lines[1]
    assert lines[2].split()[:3] == ["rollback", "to", f"{ids[2]},"]
    assert re.search(r": 0 uploaded \(0 new, 0 changed\), 1 deleted, \d+ unchanged$", lines[2])
    assert re.search(r", files of main @ [0-9a-f]{8}\+?:", lines[2])
    assert lines[3].startswith(f"  {ids[1]}  ") and "1 uploaded (1 new" in lines[4]
    assert lines[5:] == [
        "  ... and 1 earlier (N=3 lists them all)",
        "* what the bucket holds now. make rollback-dev puts back the deploy before the last;"
        " make rollback-dev TO=<ID> another.",
    ]


def test_rollback_prod_on_s3_runs_from_the_default_branch_edited_or_not_unless_forced(
    project: Callable[..., Path],
    aws: S3Endpoint,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = project()
    monkeypatch.setenv("S3_BUCKET", new_s3_bucket())
    assert main(["deploy", "PROD"]) == 0
    (root / "bucket_contents" / "dags" / "extra.py").write_text("DEV = True\n")
    commit(root)
    assert main(["deploy", "PROD"]) == 0
    subprocess.run([*GIT, "checkout", "-q", "-b", "story/fix"], cwd=root, check=True)
    capsys.readouterr()
    aws.reset()
    assert main(["rollback", "PROD"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "rollback-prod runs from main, not from story/fix: git switch main (or run"
        " `make rollback-prod FORCE=1` if you must)"
    ]
    assert aws.count() == 0
    assert main(["rollback", "PROD", "--force"]) == 0
    # A rollback ships nothing of the checkout: an edit on the default branch is no matter.
    subprocess.run([*GIT, "checkout", "-q", "main"], cwd=root, check=True)
    (root / "bucket_contents" / "dags" / "extra.py").write_text("DEV = True\n# edited\n")
    assert main(["rollback", "PROD"]) == 0
    assert "PROD rolled back to deploy " in capsys.readouterr().out


def two_deploys(project: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> str:
    """Two deploys of DEV; the last one's ID."""
    root = project()
    assert main(["deploy", "DEV"]) == 0
    (root / "bucket_contents" / "dags" / "extra.py").write_text("DEV = True\n")
    assert main(["deploy", "DEV"]) == 0
    capsys.readouterr()
    return history.deploy_ids(LocalBucket(root / "local_bucket"), "DEV")[0]


def test_a_rollback_to_an_empty_id_is_refused(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    two_deploys(project, capsys)
    assert main(["rollback", "DEV", "--to", ""]) == 1
    assert capsys.readouterr().err.startswith(
        "TO is empty: give the ID of a deploy, as make history-dev shows it, or leave TO"
    )


def test_a_rollback_to_an_id_too_short_to_be_safe_is_refused(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    start = two_deploys(project, capsys)[:3]
    assert main(["rollback", "DEV", "--to", start]) == 1
    assert capsys.readouterr().err.startswith(
        f"TO={start!r} is too short to name a deploy safely: give at least 6 characters"
    )


def test_a_rollback_to_an_id_of_no_deploy_says_so_however_short(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    two_deploys(project, capsys)
    assert main(["rollback", "DEV", "--to", "zzz"]) == 1
    assert capsys.readouterr().err.startswith(
        "no deploy of DEV in local bucket local_bucket has an ID starting with 'zzz'"
    )


def test_ids_that_share_their_first_12_characters_are_shown_long_enough_to_tell_apart() -> None:
    ids = ["0123456789abX1", "0123456789abX2", "0123456789ffff", "9876543210abcdef"]
    assert history.shown_ids(ids) == {
        "0123456789abX1": "0123456789abX1",
        "0123456789abX2": "0123456789abX2",
        "0123456789ffff": "0123456789ff",
        "9876543210abcdef": "9876543210ab",
    }


def test_an_id_that_names_several_deploys_is_refused_listing_them(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        deploy(bucket, "DEV", dags(tmp_path, orders=f"ORDERS = {n}"))
    ids = history.deploy_ids(bucket, "DEV")
    monkeypatch.setattr(history, "deploy_ids", lambda *_: ["abcdef1", "abcdef2", *ids])
    with pytest.raises(HistoryError) as refused:
        sync.rollback(bucket, "DEV", "abcdef")
    assert str(refused.value) == (
        "2 deploys of DEV have an ID starting with 'abcdef' (abcdef1, abcdef2): give more of"
        " the one you mean"
    )


@pytest.mark.usefixtures("aws")
def test_a_rollback_that_stops_part_way_says_to_run_it_again_and_a_rerun_converges(
    aws: S3Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    bucket = S3Bucket.open(new_s3_bucket(), "eu-west-1")
    sources = dags(tmp_path, orders="ORDERS = 1", sales="SALES = 1")
    deploy(bucket, "PROD", sources)
    deploy(bucket, "PROD", dags(sources, orders="ORDERS = 2", sales="SALES = 2"))
    first = history.deploy_ids(bucket, "PROD")[1]
    aws.fail("PUT", "dags/PROD_sales.py", status=500, code="InternalError")
    with pytest.raises(SyncError) as failed:
        sync.rollback(bucket, "PROD", "")
    assert str(failed.value).endswith(
        f"1 of 2 uploads done, 1 not done, nothing deleted. Run the rollback with"
        f" TO={first[: history.SHORT_ID]} again: it picks up where this one stopped."
    )
    aws.reset()
    sync.rollback(bucket, "PROD", first[: history.SHORT_ID])
    assert owned(bucket, "PROD") == files_of(bucket, "PROD", first)


def test_make_history_after_a_clean_says_a_rollback_puts_back_the_last_deploy(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project()
    for n in range(3):
        (root / "bucket_contents" / "dags" / "extra.py").write_text(f"DEV = True\nN = {n}\n")
        assert main(["deploy", "DEV"]) == 0
    assert main(["clean", "DEV"]) == 0
    capsys.readouterr()
    assert main(["history", "DEV", "--last", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("*") for line in lines)
    assert lines[-2:] == [
        "  ... and 1 earlier (N=3 lists them all)",
        "DEV holds no files now (cleaned): make rollback-dev puts back the last deploy;"
        " make rollback-dev TO=<ID> another.",
    ]


@pytest.mark.parametrize("count", ["0", "-1", "many"])
def test_make_history_takes_only_a_count_of_one_or_more(
    count: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["history", "DEV", "--last", count])
    assert f"{count!r} is not a number of 1 or more" in capsys.readouterr().err


def test_the_local_bucket_reads_no_version_that_is_not_its_own(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    (tmp_path / "secret.txt").write_text("not the bucket's")
    with pytest.raises(BucketError, match="is not a version of local bucket"):
        bucket.get("dags/DEV_orders.py", "../../../../secret.txt")


def test_the_local_bucket_keeps_a_files_version_before_it_replaces_the_file(
    tmp_path: Path,
) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    bucket.put("dags/DEV_orders.py", b"DEV = True\n")
    shutil.rmtree(tmp_path / "bucket" / LOCAL_VERSIONS)
    (tmp_path / "bucket" / LOCAL_VERSIONS).write_text("in the way")
    with pytest.raises(BucketError):
        bucket.put("dags/DEV_orders.py", b"DEV = True\nCHANGED = 1\n")
    assert bucket.get("dags/DEV_orders.py") == b"DEV = True\n"


def interrupt_after_the_first_upload(_done: int, _total: int) -> None:
    """Ctrl-C, as the deploy's progress shows its first upload done."""
    raise KeyboardInterrupt


def test_after_an_interrupted_deploy_a_rollback_puts_back_the_last_complete_deploy(
    bucket: Bucket, tmp_path: Path
) -> None:
    sources = dags(tmp_path, orders="ORDERS = 1", sales="SALES = 1")
    deploy(bucket, "DEV", sources)
    deploy(bucket, "DEV", dags(sources, orders="ORDERS = 2", sales="SALES = 1"))
    second = history.deploy_ids(bucket, "DEV")[0]
    dags(sources, orders="ORDERS = 3", sales="SALES = 3")
    with pytest.raises(Interrupted, match="nothing deleted"):
        sync.deploy(bucket, "DEV", stamp(sources, "DEV"), interrupt_after_the_first_upload)
    assert history.deploy_ids(bucket, "DEV")[0] == second  # no record of the third
    assert owned(bucket, "DEV") != files_of(bucket, "DEV", second)
    earlier, _ = sync.rollback(bucket, "DEV", "")
    assert earlier.id == second and owned(bucket, "DEV") == files_of(bucket, "DEV", second)


def test_make_history_says_when_the_bucket_differs_from_the_last_record(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project()
    extra = root / "bucket_contents" / "dags" / "extra.py"
    extra.write_text("DEV = True\nN = 1\n")
    assert main(["deploy", "DEV"]) == 0
    extra.write_text("DEV = True\nN = 2\n")
    assert main(["deploy", "DEV"]) == 0
    extra.write_text("DEV = True\nN = 3\n")
    local = LocalBucket(root / "local_bucket")
    with pytest.raises(Interrupted):
        sync.deploy(
            local, "DEV", stamp(root / "bucket_contents", "DEV"), interrupt_after_the_first_upload
        )
    capsys.readouterr()
    assert main(["history", "DEV"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("*") for line in lines)
    assert lines[-1] == (
        "DEV's files differ from its last deploy's record (1 key, dags/DEV_extra.py: a deploy"
        " stopped part way, or an edit by hand): make rollback-dev puts back the last deploy;"
        " make rollback-dev TO=<ID> another."
    )
