"""Syncing: make one environment's keys in the bucket match its stamped build.

One logic for every bucket: the embedded local bucket (a folder laid out like the S3
bucket) and S3 both implement `Bucket` (buckets.py). An environment owns exactly the keys
`dags/<ENV>_*`; every key this module writes or deletes is checked against that first.

Content decides what is uploaded, never timestamps. A bucket's ETag is usually a hash of
the content (the MD5 on S3), so comparing it with the build's is enough. Where it is not
(SSE-KMS, multipart uploads), the deploy keeps a record next to the environment's files,
`dags/<ENV>_.deployed.json`, of the SHA-256 of what it uploaded under each such ETag. A
stamped file can never have that name: stamping skips hidden source files.

A deploy holds the environment's lock (`dags/<ENV>_.lock` on S3) from planning to the
last deletion, so two deploys of one environment never interleave: the second is refused.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mwaa_deploy.exceptions import BucketError, Interrupted, OwnershipError, SyncError
from mwaa_deploy.stamp import check_environment

if TYPE_CHECKING:
    from mwaa_deploy.buckets import Bucket

# Uploads in flight at once: S3 takes many more; more than this gains little for small files.
UPLOAD_THREADS = 16
# After a failure, how long uploads already in flight may take to finish; after Ctrl-C,
# the same, shorter. An upload still running then is left to the process's end.
IN_FLIGHT_GRACE_SECONDS = 3.0
INTERRUPTED_GRACE_SECONDS = 1.0
RECORD_NAME = ".deployed.json"
LOCK_NAME = ".lock"


def owned_prefix(env: str) -> str:
    return f"dags/{check_environment(env)}_"


def assert_owned(env: str, key: str) -> str:
    if not key.startswith(owned_prefix(env)) or "/../" in f"/{key}/":
        raise OwnershipError(f"refusing to touch {key!r}: {env} owns only {owned_prefix(env)}*")
    return key


def record_key(env: str) -> str:
    return owned_prefix(env) + RECORD_NAME


def lock_key(env: str) -> str:
    return owned_prefix(env) + LOCK_NAME


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

    @property
    def writes_nothing(self) -> bool:
        """Applying it would write no key and leave the record as it is."""
        return self.is_empty and (self.kept_record or None) == self.record

    def counts(self, done: bool = False) -> str:
        """`2 new, 1 changed, 0 deleted, 5 unchanged`; once the deploy is done,
        `3 uploaded (2 new, 1 changed), 0 deleted, 5 unchanged`."""
        changes = f"{len(self.new)} new, {len(self.changed)} changed"
        if done:
            changes = f"{len(self.uploads)} uploaded ({changes})"
        return f"{changes}, {len(self.deleted)} deleted, {len(self.unchanged)} unchanged"


def plan(bucket: Bucket, env: str, desired: dict[str, bytes]) -> Plan:
    """Compare the build with the bucket by content: mtimes and checkouts do not matter."""
    listed = bucket.list(owned_prefix(env))
    listed.pop(lock_key(env), None)
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


def deploy(
    bucket: Bucket,
    env: str,
    desired: dict[str, bytes],
    progress: Callable[[int, int], None] | None = None,
) -> Plan:
    """Make the environment's keys equal `desired`.

    A deploy with nothing to do writes nothing, not even a lock. One with work takes the
    environment's lock and plans again under it, then holds it to the last deletion.
    """
    result = plan(bucket, env, desired)
    if result.writes_nothing:
        return result
    with bucket.lock(env):
        result = plan(bucket, env, desired)
        apply(bucket, result, progress)
    return result


def apply(bucket: Bucket, result: Plan, progress: Callable[[int, int], None] | None = None) -> None:
    """Upload first, concurrently; delete stale keys only when every upload succeeded."""
    env, total = result.env, len(result.uploads)
    for key in [*result.uploads, *result.deleted]:
        assert_owned(env, key)
    uploaded: dict[str, str] = {}
    try:
        failure = _Uploads(bucket, result.uploads, uploaded, progress).run()
    except KeyboardInterrupt:
        raise Interrupted(
            f"{env}: interrupted; {len(uploaded)} of {total} uploads done,"
            f" {total - len(uploaded)} not done, nothing deleted. Run the deploy again to finish."
        ) from None
    if failure is not None:
        try:
            _save_record(bucket, result, uploaded)
        except (BucketError, KeyboardInterrupt):
            pass  # The upload failure below is the news; the next run redoes this.
        raise SyncError(
            f"{env}: {failure}; {len(uploaded)} of {total} uploads done,"
            f" {total - len(uploaded)} not done, nothing deleted. {_what_next(failure)}"
        ) from failure
    try:
        _finish(bucket, result, uploaded)
    except KeyboardInterrupt:
        raise Interrupted(
            f"{env}: interrupted; all {total} uploads done, stale keys not yet deleted."
            " Run the deploy again to finish."
        ) from None


def _finish(bucket: Bucket, result: Plan, uploaded: dict[str, str]) -> None:
    """After every upload succeeded: save the record, then delete the stale keys."""
    env, total = result.env, len(result.uploads)
    try:
        stale = [*result.deleted, *_save_record(bucket, result, uploaded)]
    except BucketError as error:
        raise SyncError(
            f"{env}: all {total} uploads done, but saving {record_key(env)} failed ({error});"
            f" nothing deleted. {_what_next(error)}"
        ) from error
    if not stale:
        return
    try:
        bucket.delete(stale)
    except BucketError as error:
        raise SyncError(
            f"{env}: all {total} uploads done, but deleting the stale keys failed"
            f" ({error}). {_what_next(error)}"
        ) from error


def _what_next(error: Exception) -> str:
    if getattr(error, "permanent", False):
        return "This is not passing: running the deploy again fails the same way until it is fixed."
    return "Run the deploy again: it picks up where this one stopped."


class _Uploads:
    """The uploads of one deploy, run concurrently on worker threads.

    A failure or Ctrl-C starts no new upload and gives those in flight a short grace to
    finish. The workers are daemon threads: one stuck in a stalled request cannot keep
    the process from ending once the deploy has stopped waiting for it.
    """

    def __init__(
        self,
        bucket: Bucket,
        uploads: dict[str, bytes],
        uploaded: dict[str, str],
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.bucket = bucket
        self.total = len(uploads)
        self.uploaded = uploaded  # each done key's ETag, added as it is done
        self.progress = progress
        self.failure: Exception | None = None
        self.waiting: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        for item in uploads.items():
            self.waiting.put(item)
        # (key, ETag, error) of each upload done or failed; None from each worker that ends.
        self.finished: queue.SimpleQueue[tuple[str, str, Exception | None] | None] = (
            queue.SimpleQueue()
        )
        self.stop = threading.Event()
        self.running = min(UPLOAD_THREADS, self.total)

    def run(self) -> Exception | None:
        """Upload everything, or stop at the first failure and return it."""
        for _ in range(self.running):
            threading.Thread(target=self._work, daemon=True).start()
        try:
            self._receive(float("inf"))
        except KeyboardInterrupt:
            self.stop.set()
            self._receive(time.monotonic() + INTERRUPTED_GRACE_SECONDS)
            raise
        return self.failure

    def _work(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    key, body = self.waiting.get_nowait()
                except queue.Empty:
                    return
                try:
                    self.finished.put((key, self.bucket.put(key, body), None))
                except Exception as error:  # noqa: BLE001 - reported as the deploy's failure
                    self.finished.put((key, "", error))
        finally:
            self.finished.put(None)  # this worker is done

    def _receive(self, until: float) -> None:
        """Take the workers' news until they have all ended or `until` (monotonic) passes."""
        while self.running and time.monotonic() < until:
            try:
                message = self.finished.get(timeout=min(0.5, max(until - time.monotonic(), 0.01)))
            except queue.Empty:
                continue
            if message is None:
                self.running -= 1
                continue
            key, etag, error = message
            if error is None:
                self.uploaded[key] = etag
                if self.progress:
                    self.progress(len(self.uploaded), self.total)
            elif self.failure is None:
                self.failure = error
                self.stop.set()
                until = min(until, time.monotonic() + IN_FLIGHT_GRACE_SECONDS)


def clean(bucket: Bucket, env: str) -> list[str]:
    """Delete every key the environment owns; return them."""
    with bucket.lock(env):
        listed = bucket.list(owned_prefix(env))
        listed.pop(lock_key(env), None)
        keys = sorted(assert_owned(env, key) for key in listed)
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
