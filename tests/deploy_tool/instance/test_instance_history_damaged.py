"""A damaged record of the instance-wide files' history (issue 29, part 4): history and
rollback say that its record cannot be read, name the key and what to do, and never take
it for a run that did not run, or for no run at all.

On the local bucket: its record is a file a hand, a script or a half-finished copy can
damage, and its versions are hashes, so a version that is none is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mwaa_deploy.bucket.local_bucket import LocalBucket
from mwaa_deploy.instance import instance_history
from mwaa_deploy.owners import INSTANCE_RECORD
from tests.deploy_tool.helpers import CONSTRAINTS_LINE, commit
from tests.deploy_tool.instance.conftest import Run


@pytest.fixture
def two_runs(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, run: Run
) -> LocalBucket:
    """Two runs of deploy-requirements on the local bucket."""
    monkeypatch.setenv("S3_BUCKET", "")
    root = project()
    assert run("deploy-requirements")[0] == 0
    (root / "bucket_contents" / "requirements.txt").write_text(f"{CONSTRAINTS_LINE}\nsix\n")
    commit(root)
    assert run("deploy-requirements")[0] == 0
    return LocalBucket(root / "local_bucket")


def damage_newest(bucket: LocalBucket, body: bytes) -> str:
    """Store `body` as the newest version of the record; its short id."""
    return bucket.put(INSTANCE_RECORD, body).version[:12]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"objects": []}'])
def test_history_requirements_says_a_damaged_record_cannot_be_read(
    two_runs: LocalBucket, run: Run, body: bytes
) -> None:
    damaged = damage_newest(two_runs, body)

    code, out, _ = run("history-requirements")

    assert code == 0
    line = next(line for line in out.splitlines() if damaged in line)
    assert "its record cannot be read" in line, out
    assert "no record of its deploys" not in out


@pytest.mark.parametrize("body", [b"{not json", b'{"update": {"status": 7}, "objects": 1}'])
def test_rollback_to_a_run_whose_record_is_damaged_says_it_cannot_be_read(
    two_runs: LocalBucket, run: Run, body: bytes
) -> None:
    damaged = damage_newest(two_runs, body)

    code, _, err = run("rollback-requirements", "--to", damaged)

    assert code == 1
    assert "cannot be read" in err and INSTANCE_RECORD in err, err
    assert "never ran" not in err
    assert "TO=" in err


def test_a_record_naming_a_version_that_is_none_names_the_run_and_file_and_suggests_to(
    two_runs: LocalBucket, run: Run
) -> None:
    (second, first), _ = instance_history.recent(two_runs, 9)
    record = json.loads(two_runs.get(INSTANCE_RECORD, first.id) or b"")
    record["objects"]["requirements.txt"]["version"] = "../../etc/passwd"
    damaged = damage_newest(two_runs, json.dumps(record).encode())
    # The second run's record again, the newest: the damaged one is the run before it.
    damage_newest(two_runs, two_runs.get(INSTANCE_RECORD, second.id) or b"")
    held = (two_runs.root / "requirements.txt").read_bytes()

    code, _, err = run("rollback-requirements")

    assert code == 1
    assert f"run {damaged}" in err and "requirements.txt" in err, err
    assert "'../../etc/passwd'" in err and "TO=" in err, err
    assert (two_runs.root / "requirements.txt").read_bytes() == held
