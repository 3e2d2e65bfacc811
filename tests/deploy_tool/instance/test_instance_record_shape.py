"""A record of the instance-wide files' history is read strictly: one that names a file other
than requirements.txt, plugins.zip or startup.sh, or holds a field of the wrong type, is a
damaged record. History lists it as unreadable and rollback refuses it, naming the record
and the run, before anything is written (locally) or any update is asked for (on MWAA).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mwaa_deploy.bucket.local_bucket import LocalBucket
from mwaa_deploy.instance import instance_history
from mwaa_deploy.owners import INSTANCE_RECORD
from tests.deploy_tool.instance.conftest import Run

GOOD: dict[str, Any] = json.loads(
    instance_history.document(
        {"branch": "main", "commit": "c" * 40, "by": "someone"},
        ["requirements.txt"],
        {"requirements.txt": ("v1", b"six\n"), "plugins.zip": ("v2", b"zip")},
        {"status": "WRITTEN"},
    )
)


def with_change(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """GOOD with the field at `path` set to `value` (deleted where value is DELETE)."""
    record = copy.deepcopy(GOOD)
    *parents, last = path
    held = record
    for name in parents:
        held = held[name]
    if value is DELETE:
        del held[last]
    else:
        held[last] = value
    return record


DELETE = object()
SHA = GOOD["objects"]["requirements.txt"]["sha256"]
DAMAGED = {
    "a DAG file": with_change(("objects", "dags/DEV_evil.py"), {"version": "v", "sha256": SHA}),
    "a path out": with_change(("objects", "../../x"), {"version": "v", "sha256": SHA}),
    "an entry of a list": with_change(("objects", "requirements.txt"), ["x"]),
    "a version of a number": with_change(("objects", "requirements.txt", "version"), 5),
    "no sha256": with_change(("objects", "requirements.txt", "sha256"), DELETE),
    "a sha256 not one": with_change(("objects", "requirements.txt", "sha256"), "abc"),
    "changed as text": with_change(("changed",), "abc"),
    "changed naming a DAG": with_change(("changed",), ["dags/DEV_evil.py"]),
    "no changed": with_change(("changed",), DELETE),
    "deploy as a list": with_change(("deploy",), ["x"]),
    "no deploy": with_change(("deploy",), DELETE),
    "a null status": with_change(("update", "status"), None),
    "an error of a number": with_change(("update", "error"), 7),
    "no objects": with_change(("objects",), {}),
    "another schema": with_change(("schema",), 99),
}


def test_the_record_deploy_requirements_writes_is_readable(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    version = bucket.put(INSTANCE_RECORD, json.dumps(GOOD).encode()).version

    run = instance_history.read(bucket, version)

    assert run is not None and run.readable
    assert run.changed == ("requirements.txt",)


@pytest.mark.parametrize("record", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_record_of_any_other_shape_is_unreadable_and_names_no_files(
    tmp_path: Path, record: dict[str, Any]
) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    version = bucket.put(INSTANCE_RECORD, json.dumps(record).encode()).version

    run = instance_history.read(bucket, version)

    assert run is not None and not run.readable
    assert run.objects == {} and run.changed == ()


@pytest.fixture
def one_run(project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, run: Run) -> Path:
    """A project whose deploy-requirements ran once on the local bucket."""
    monkeypatch.setenv("S3_BUCKET", "")
    root = project()
    assert run("deploy-requirements")[0] == 0
    return root


def forged(bucket: LocalBucket, key: str, body: bytes) -> str:
    """The newest record names `key` at a version the local bucket holds; its short id."""
    (first,), _ = instance_history.recent(bucket, 1)
    record = json.loads(bucket.get(INSTANCE_RECORD, first.id) or b"")
    version = bucket._keep_version(key, body)
    digest = hashlib.sha256(body).hexdigest()
    record["objects"][key] = {"version": version, "sha256": digest}
    return bucket.put(INSTANCE_RECORD, json.dumps(record).encode()).version[:12]


@pytest.mark.parametrize("key", ["dags/DEV_evil.py", "../../escaped.txt"])
def test_rollback_refuses_a_record_naming_a_file_that_is_not_instance_wide(
    one_run: Path, run: Run, key: str
) -> None:
    bucket = LocalBucket(one_run / "local_bucket")
    damaged = forged(bucket, key, b"print(1)\n")
    before = sorted(p for p in one_run.parent.rglob("*") if ".versions" not in p.parts)

    code, _, err = run("rollback-requirements", "--to", damaged)

    assert code == 1
    [line] = err.splitlines()
    assert f"run {damaged}" in line and INSTANCE_RECORD in line and "TO=" in line, line
    assert sorted(p for p in one_run.parent.rglob("*") if ".versions" not in p.parts) == before


def test_rollback_refuses_a_record_of_the_wrong_types_and_leaves_the_files(
    one_run: Path, run: Run
) -> None:
    bucket = LocalBucket(one_run / "local_bucket")
    forged(bucket, "plugins.zip", b"zip")
    (newest,), _ = instance_history.recent(bucket, 1)
    record = json.loads(bucket.get(INSTANCE_RECORD, newest.id) or b"")
    record["objects"]["requirements.txt"] = ["x"]
    damaged = bucket.put(INSTANCE_RECORD, json.dumps(record).encode()).version[:12]
    held = (one_run / "local_bucket" / "requirements.txt").read_bytes()

    code, _, err = run("rollback-requirements", "--to", damaged)

    assert code == 1
    assert f"run {damaged}" in err and "cannot be read" in err, err
    assert (one_run / "local_bucket" / "requirements.txt").read_bytes() == held
