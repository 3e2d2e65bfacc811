"""Syncing: make one environment's keys in the bucket match its stamped build.

One logic for every bucket: the embedded local bucket (a folder laid out like the S3
bucket) and S3 both implement `Bucket`. An environment owns exactly the keys
`dags/<ENV>_*`; every key this module writes or deletes is checked against that first.

Content decides what is uploaded, never timestamps. A bucket's ETag is usually a hash of
the content (the MD5 on S3), so comparing it with the build's is enough. Where it is not
(SSE-KMS, multipart uploads), the deploy keeps a record next to the environment's files,
`dags/<ENV>_.deployed.json`, of the SHA-256 of what it uploaded under each such ETag. A
stamped file can never have that name: stamping skips hidden source files.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mwaa_deploy import DeployError
from mwaa_deploy.stamp import check_environment

# Deploys of fewer files finish before progress would help.
PROGRESS_FROM = 20
# Uploads in flight at once: S3 takes many more; more than this gains little for small files.
UPLOAD_THREADS = 16
RECORD_NAME = ".deployed.json"


class Bucket(Protocol):
    """What syncing needs from a bucket. Keys use `/`; ETags are opaque strings."""

    description: str

    def list(self, prefix: str) -> dict[str, str]:
        """Every key under `prefix` with its ETag."""
        ...

    def etag_of(self, body: bytes) -> str:
        """The ETag this bucket usually gives an object holding `body`."""
        ...

    def get(self, key: str) -> bytes | None:
        """The object's content, or None when there is no such key."""
        ...

    def put(self, key: str, body: bytes) -> str:
        """Store `body` under `key`; return the ETag the bucket gave it."""
        ...

    def delete(self, keys: list[str]) -> None: ...


class OwnershipError(AssertionError):
    """A key outside the environment's own prefix was about to be touched."""


class SyncError(DeployError):
    """A deploy stopped part-way; the message says what was and was not done."""


class BucketError(DeployError):
    """The bucket refused or failed a request; the message says which and why."""


def owned_prefix(env: str) -> str:
    return f"dags/{check_environment(env)}_"


def assert_owned(env: str, key: str) -> str:
    if not key.startswith(owned_prefix(env)) or "/../" in f"/{key}/":
        raise OwnershipError(f"refusing to touch {key!r}: {env} owns only {owned_prefix(env)}*")
    return key


def record_key(env: str) -> str:
    return owned_prefix(env) + RECORD_NAME


# key -> {"sha256": ..., "etag": ...}: this content was uploaded and the bucket named it so.
Record = dict[str, dict[str, str]]


@dataclass
class Plan:
    """What a deploy of `env` would do. Keys are sorted; `uploads` maps key to body."""

    env: str
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict, repr=False)
    # The bucket's record as read, and the entries of it that still describe unchanged keys.
    record: Record | None = field(default=None, repr=False)
    kept_record: Record = field(default_factory=dict, repr=False)

    @property
    def is_empty(self) -> bool:
        return not (self.new or self.changed or self.deleted)

    def counts(self) -> str:
        return (
            f"{len(self.new)} new, {len(self.changed)} changed, "
            f"{len(self.deleted)} deleted, {len(self.unchanged)} unchanged"
        )


def plan(bucket: Bucket, env: str, desired: dict[str, bytes]) -> Plan:
    """Compare the build with the bucket by content: mtimes and checkouts do not matter."""
    listed = bucket.list(owned_prefix(env))
    has_record = listed.pop(record_key(env), None) is not None
    unknown = [
        k for k, body in desired.items() if listed.get(k, "") not in ("", bucket.etag_of(body))
    ]
    record = _read_record(bucket, env) if has_record and unknown else ({} if has_record else None)
    result = Plan(env=env, record=record)
    for key, body in sorted(desired.items()):
        assert_owned(env, key)
        entry = {"sha256": _sha256(body), "etag": listed.get(key, "")}
        if key not in listed:
            result.new.append(key)
        elif listed[key] == bucket.etag_of(body):
            result.unchanged.append(key)
            continue
        elif (record or {}).get(key) == entry:
            result.unchanged.append(key)
            result.kept_record[key] = entry
            continue
        else:
            result.changed.append(key)
        result.uploads[key] = body
    result.deleted = sorted(assert_owned(env, key) for key in listed.keys() - desired.keys())
    return result


def apply(bucket: Bucket, result: Plan, progress: Callable[[int, int], None] | None = None) -> None:
    """Upload first, concurrently; delete stale keys only when every upload succeeded."""
    env, total = result.env, len(result.uploads)
    for key in [*result.uploads, *result.deleted]:
        assert_owned(env, key)
    uploaded: dict[str, str] = {}
    failure: BucketError | None = None
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        putting = {pool.submit(bucket.put, key, body): key for key, body in result.uploads.items()}
        for future in as_completed(putting):
            if future.cancelled():
                continue
            try:
                uploaded[putting[future]] = future.result()
            except BucketError as error:
                # Let the uploads in flight finish, start no more.
                failure = failure or error
                pool.shutdown(wait=False, cancel_futures=True)
                continue
            if progress:
                progress(len(uploaded), total)

    try:
        stale_record = _save_record(bucket, result, uploaded)
    except BucketError as error:
        if failure is None:
            raise SyncError(
                f"{env}: all {total} uploads done, but saving {record_key(env)} failed ({error});"
                " nothing deleted. Run the deploy again to finish."
            ) from error
        stale_record = []  # The upload failure below is the news; the next run redoes this.
    if failure is not None:
        raise SyncError(
            f"{env}: {failure}; {len(uploaded)} of {total} uploads done,"
            f" {total - len(uploaded)} not done, nothing deleted. Run the deploy again:"
            " it picks up where this one stopped."
        ) from failure
    stale = [*result.deleted, *stale_record]
    if not stale:
        return
    try:
        bucket.delete(stale)
    except BucketError as error:
        raise SyncError(
            f"{env}: all {total} uploads done, but deleting the stale keys failed"
            f" ({error}). Run the deploy again to finish."
        ) from error


def clean(bucket: Bucket, env: str) -> list[str]:
    """Delete every key the environment owns; return them."""
    keys = sorted(assert_owned(env, key) for key in bucket.list(owned_prefix(env)))
    if keys:
        bucket.delete(keys)
    return keys


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _read_record(bucket: Bucket, env: str) -> Record:
    """The record, or an empty one if it cannot be understood: then changed keys re-upload."""
    try:
        objects = json.loads(bucket.get(record_key(env)) or b"{}")["objects"]
        return {
            key: {"sha256": str(entry["sha256"]), "etag": str(entry["etag"])}
            for key, entry in objects.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def _save_record(bucket: Bucket, result: Plan, uploaded: dict[str, str]) -> list[str]:
    """Write the record if it changed; return it as a stale key when nothing needs it."""
    record = dict(result.kept_record)
    for key, etag in uploaded.items():
        body = result.uploads[key]
        if etag != bucket.etag_of(body):
            record[key] = {"sha256": _sha256(body), "etag": etag}
    key = record_key(result.env)
    if not record:
        return [key] if result.record is not None else []
    if record != result.record:
        document = {
            "about": "Written by mwaa_deploy: the content behind ETags that are not MD5s.",
            "objects": dict(sorted(record.items())),
        }
        bucket.put(key, json.dumps(document, indent=1).encode() + b"\n")
    return []


class LocalBucket:
    """A folder laid out like the MWAA bucket: the embedded default when no S3 bucket is set."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"local bucket {root}"

    def list(self, prefix: str) -> dict[str, str]:
        folder, _, name_start = prefix.rpartition("/")
        base = self.root / folder
        if not base.is_dir():
            return {}
        found = {}
        for top in base.iterdir():
            if not top.name.startswith(name_start):
                continue
            files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
            for file in files:
                found[file.relative_to(self.root).as_posix()] = self.etag_of(file.read_bytes())
        return found

    def etag_of(self, body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise BucketError(f"cannot read {self.root / key}: {error.strerror}") from error

    def put(self, key: str, body: bytes) -> str:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        try:
            partial.write_bytes(body)
            # A reader (the local Airflow) sees the old file or the new one, never half of one.
            os.replace(partial, path)
        except OSError as error:
            raise BucketError(f"cannot write {path}: {error.strerror}") from error
        return self.etag_of(body)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            path = self.root / key
            path.unlink(missing_ok=True)
            # Tidy the folders a deleted helper package leaves empty, never dags/ itself.
            for folder in path.parents:
                if folder == self.root / "dags" or not folder.is_dir() or any(folder.iterdir()):
                    break
                folder.rmdir()


def print_progress(done: int, total: int) -> None:
    """Progress of long deploys: one line rewritten in place on a terminal, every 10% otherwise."""
    if total < PROGRESS_FROM:
        return
    if sys.stderr.isatty():
        end = "\n" if done == total else ""
        print(f"\r  uploaded {done}/{total}", end=end, file=sys.stderr, flush=True)
    elif done % (total // 10) == 0 or done == total:
        print(f"  uploaded {done}/{total}", file=sys.stderr, flush=True)
