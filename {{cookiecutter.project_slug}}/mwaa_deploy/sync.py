"""Syncing: make one owner's keys in the bucket match its stamped build.

One logic for every bucket: the embedded local bucket (a folder laid out like the S3
bucket) and S3 both implement `Bucket` (buckets.py). An owner (DEV, PROD, or a story
branch's sandbox; see owners.py) owns exactly the keys `dags/<owner>_*`; every key this
module writes or deletes is checked against that first.

Content decides what is uploaded, never timestamps. A bucket's ETag is usually a hash of
the content (the MD5 on S3), so comparing it with the build's is enough. Where it is not
(SSE-KMS, multipart uploads), the deploy's record, `dags/<owner>_.deployed.json`, keeps
the SHA-256 of what it uploaded under each such ETag. The record also says where the last
deploy that changed anything came from (branch, commit, time, who): `make sandboxes`
reads it. A stamped file can never have that name: stamping skips hidden source files.

A deploy holds the owner's lock (`dags/<owner>_.lock` on S3) from planning to the last
deletion, so two deploys of one owner never interleave: the second is refused.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mwaa_deploy.exceptions import (
    BucketError,
    Interrupted,
    OwnershipError,
    SandboxError,
    SyncError,
)
from mwaa_deploy.owners import is_sandbox, prefix, sandbox_name

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


def assert_owned(owner: str, key: str) -> str:
    if not key.startswith(prefix(owner)) or "/../" in f"/{key}/":
        raise OwnershipError(f"refusing to touch {key!r}: {owner} owns only {prefix(owner)}*")
    return key


def record_key(owner: str) -> str:
    return prefix(owner) + RECORD_NAME


def lock_key(owner: str) -> str:
    return prefix(owner) + LOCK_NAME


# key -> {"sha256": ..., "etag": ...}: this content was uploaded and the bucket named it so.
Record = dict[str, dict[str, str]]
# Where a deploy comes from: "branch", "commit", "time", "by", and for a sandbox
# "sandbox_for", the branch or name it is named after (see sandboxes.about_this_deploy).
About = dict[str, str]


@dataclass
class Plan:
    """What a deploy of `owner` would do. Keys are sorted; `uploads` maps key to body."""

    owner: str
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict, repr=False)
    # The record's objects as read (None: not read, as no key needed it), and the entries
    # of it that still describe unchanged keys.
    record: Record | None = field(default=None, repr=False)
    kept_record: Record = field(default_factory=dict, repr=False)

    @property
    def is_empty(self) -> bool:
        return not (self.new or self.changed or self.deleted)

    @property
    def writes_nothing(self) -> bool:
        """Applying it would write no key, the record included."""
        return self.is_empty and self.record in (None, self.kept_record)

    def counts(self, done: bool = False) -> str:
        """`2 new, 1 changed, 0 deleted, 5 unchanged`; once the deploy is done,
        `3 uploaded (2 new, 1 changed), 0 deleted, 5 unchanged`."""
        changes = f"{len(self.new)} new, {len(self.changed)} changed"
        if done:
            changes = f"{len(self.uploads)} uploaded ({changes})"
        return f"{changes}, {len(self.deleted)} deleted, {len(self.unchanged)} unchanged"


def plan(bucket: Bucket, owner: str, desired: dict[str, bytes]) -> Plan:
    """Compare the build with the bucket by content: mtimes and checkouts do not matter."""
    listed = bucket.list(prefix(owner))
    listed.pop(lock_key(owner), None)
    has_record = listed.pop(record_key(owner), None) is not None
    unknown = [
        k for k, body in desired.items() if listed.get(k, "") not in ("", bucket.etag_of(body))
    ]
    record = _read_record(bucket, owner) if has_record and unknown else None
    result = Plan(owner=owner, record=record)
    for key, body in sorted(desired.items()):
        assert_owned(owner, key)
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
    result.deleted = sorted(assert_owned(owner, key) for key in listed.keys() - desired.keys())
    return result


def deploy(
    bucket: Bucket,
    owner: str,
    desired: dict[str, bytes],
    progress: Callable[[int, int], None] | None = None,
    about: Callable[[], About] | None = None,
) -> Plan:
    """Make the owner's keys equal `desired`; record `about()`, where the deploy comes from,
    asked only of a deploy with work (git answers it, which an unchanged deploy skips).

    A deploy with nothing to do writes nothing, not even a lock. One with work takes the
    owner's lock and plans again under it, then holds it to the last deletion.
    """
    result = plan(bucket, owner, desired)
    if result.writes_nothing:
        return result
    with bucket.lock(owner):
        origin = about() if about else {}
        check_sandbox_claim(bucket, owner, origin.get("sandbox_for", ""))
        result = plan(bucket, owner, desired)
        apply(bucket, result, progress, origin)
    return result


def check_sandbox_claim(bucket: Bucket, owner: str, sandbox_for: str) -> None:
    """Refuse a sandbox to a branch (or name) other than the one its last deploy was for:
    two branch names can read alike (`a-b`, `a_b`) and give one sandbox name."""
    if not (sandbox_for and is_sandbox(owner)):
        return
    holder = read_about(bucket, owner).get("sandbox_for", "")
    if holder and holder != sandbox_for:
        raise SandboxError(
            f"the sandbox {sandbox_name(owner)} belongs to {holder!r}, whose name reads like"
            f" {sandbox_for!r}: this leaves it alone. Rename the branch, or name its"
            " sandbox yourself with SANDBOX=<name>"
        )


def apply(
    bucket: Bucket,
    result: Plan,
    progress: Callable[[int, int], None] | None = None,
    about: About | None = None,
) -> None:
    """Upload first, concurrently; delete stale keys only when every upload succeeded."""
    owner, total = result.owner, len(result.uploads)
    for key in [*result.uploads, *result.deleted]:
        assert_owned(owner, key)
    uploaded: dict[str, str] = {}
    try:
        failure = _Uploads(bucket, result.uploads, uploaded, progress).run()
    except KeyboardInterrupt:
        raise Interrupted(
            f"{owner}: interrupted; {len(uploaded)} of {total} uploads done,"
            f" {total - len(uploaded)} not done, nothing deleted. Run the deploy again to finish."
        ) from None
    if failure is not None:
        try:
            _save_record(bucket, result, uploaded, about)
        except (BucketError, KeyboardInterrupt):
            pass  # The upload failure below is the news; the next run redoes this.
        raise SyncError(
            f"{owner}: {failure}; {len(uploaded)} of {total} uploads done,"
            f" {total - len(uploaded)} not done, nothing deleted. {_what_next(failure)}"
        ) from failure
    try:
        _finish(bucket, result, uploaded, about)
    except KeyboardInterrupt:
        raise Interrupted(
            f"{owner}: interrupted; all {total} uploads done, stale keys not yet deleted."
            " Run the deploy again to finish."
        ) from None


def _finish(bucket: Bucket, result: Plan, uploaded: dict[str, str], about: About | None) -> None:
    """After every upload succeeded: save the record, then delete the stale keys."""
    owner, total, stale = result.owner, len(result.uploads), result.deleted
    try:
        _save_record(bucket, result, uploaded, about)
    except BucketError as error:
        raise SyncError(
            f"{owner}: all {total} uploads done, but saving {record_key(owner)} failed ({error});"
            f" nothing deleted. {_what_next(error)}"
        ) from error
    if not stale:
        return
    try:
        bucket.delete(stale)
    except BucketError as error:
        raise SyncError(
            f"{owner}: all {total} uploads done, but deleting the stale keys failed"
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


def clean(bucket: Bucket, owner: str, sandbox_for: str = "") -> list[str]:
    """Delete every key the owner owns; return them. `sandbox_for`: the branch (or name) a
    sandbox is cleaned for, which must be the one it was deployed for."""
    with bucket.lock(owner):
        check_sandbox_claim(bucket, owner, sandbox_for)
        listed = bucket.list(prefix(owner))
        listed.pop(lock_key(owner), None)
        keys = sorted(assert_owned(owner, key) for key in listed)
        if keys:
            bucket.delete(keys)
    return keys


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _read_document(bucket: Bucket, owner: str) -> dict[str, Any]:
    """The record as written, or an empty one if it cannot be understood."""
    try:
        document = json.loads(bucket.get(record_key(owner)) or b"{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _read_record(bucket: Bucket, owner: str) -> Record:
    """The record's objects, or none if they cannot be understood: then changed keys re-upload."""
    try:
        return {
            key: {"sha256": str(entry["sha256"]), "etag": str(entry["etag"])}
            for key, entry in _read_document(bucket, owner)["objects"].items()
        }
    except (KeyError, TypeError, AttributeError):
        return {}


def read_about(bucket: Bucket, owner: str) -> About:
    """Where the owner's last deploy that changed anything came from; {} if unknown."""
    about = _read_document(bucket, owner).get("deploy")
    return {str(k): str(v) for k, v in about.items()} if isinstance(about, dict) else {}


def _save_record(
    bucket: Bucket, result: Plan, uploaded: dict[str, str], about: About | None
) -> None:
    """Write the record of a deploy that changed something: its origin and odd ETags."""
    record = dict(result.kept_record)
    for key, etag in uploaded.items():
        body = result.uploads[key]
        if etag != bucket.etag_of(body):
            record[key] = {"sha256": _sha256(body), "etag": etag}
    document = {
        "about": "Written by mwaa_deploy: the last deploy that changed these files, and the"
        " content behind ETags that are not MD5s.",
        "deploy": about or {},
        "objects": dict(sorted(record.items())),
    }
    bucket.put(record_key(result.owner), json.dumps(document, indent=1).encode() + b"\n")
