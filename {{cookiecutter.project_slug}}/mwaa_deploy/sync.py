"""Syncing: make one environment's keys in the bucket match its stamped build.

One logic for every bucket: the embedded local bucket (a folder laid out like the S3
bucket) and S3 both implement `Bucket`. An environment owns exactly the keys
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

import errno
import fcntl
import hashlib
import json
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mwaa_deploy import DeployError
from mwaa_deploy.stamp import check_environment

# Deploys of fewer files finish before progress would help.
PROGRESS_FROM = 20
# Uploads in flight at once: S3 takes many more; more than this gains little for small files.
UPLOAD_THREADS = 16
# After a failure, how long uploads already in flight may take to finish; after Ctrl-C,
# the same, shorter. An upload still running then is left to the process's end.
IN_FLIGHT_GRACE_SECONDS = 3.0
INTERRUPTED_GRACE_SECONDS = 1.0
RECORD_NAME = ".deployed.json"
LOCK_NAME = ".lock"


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

    def lock(self, env: str) -> AbstractContextManager[None]:
        """Held while one deploy or clean of `env` runs; BucketError if another holds it."""
        ...


class OwnershipError(AssertionError):
    """A key outside the environment's own prefix was about to be touched."""


class SyncError(DeployError):
    """A deploy stopped part-way; the message says what was and was not done."""


class Interrupted(SyncError):
    """Ctrl-C stopped a deploy part-way; the message says what was and was not done."""


class BucketError(DeployError):
    """The bucket refused or failed a request; the message says which and why.

    `permanent`: the same request fails the same way again (a denied permission, a key
    the bucket cannot hold), so running the deploy again will not help by itself.
    """

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


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

    def counts(self) -> str:
        return (
            f"{len(self.new)} new, {len(self.changed)} changed, "
            f"{len(self.deleted)} deleted, {len(self.unchanged)} unchanged"
        )


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
        failure = _upload(bucket, result.uploads, uploaded, progress)
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


def _upload(
    bucket: Bucket,
    uploads: dict[str, bytes],
    uploaded: dict[str, str],
    progress: Callable[[int, int], None] | None,
) -> Exception | None:
    """Upload concurrently, adding each done key's ETag to `uploaded`; return the first failure.

    A failure or Ctrl-C starts no new upload and gives those in flight a short grace to
    finish. The workers are daemon threads: one stuck in a stalled request cannot keep
    the process from ending once the deploy has stopped waiting for it.
    """
    waiting: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
    for item in uploads.items():
        waiting.put(item)
    finished: queue.SimpleQueue[tuple[str, str, Exception | None] | None] = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set():
                try:
                    key, body = waiting.get_nowait()
                except queue.Empty:
                    return
                try:
                    finished.put((key, bucket.put(key, body), None))
                except Exception as error:  # noqa: BLE001 - reported as the deploy's failure
                    finished.put((key, "", error))
        finally:
            finished.put(None)  # this worker is done

    workers = [
        threading.Thread(target=work, daemon=True) for _ in range(min(UPLOAD_THREADS, len(uploads)))
    ]
    for worker in workers:
        worker.start()

    running, failure = len(workers), None

    def receive(until: float) -> None:
        nonlocal running, failure
        while running and time.monotonic() < until:
            try:
                message = finished.get(timeout=min(0.5, max(until - time.monotonic(), 0.01)))
            except queue.Empty:
                continue
            if message is None:
                running -= 1
                continue
            key, etag, error = message
            if error is None:
                uploaded[key] = etag
                if progress:
                    progress(len(uploaded), len(uploads))
            elif failure is None:
                failure = error
                stop.set()
                until = min(until, time.monotonic() + IN_FLIGHT_GRACE_SECONDS)

    try:
        receive(float("inf"))
    except KeyboardInterrupt:
        stop.set()
        receive(time.monotonic() + INTERRUPTED_GRACE_SECONDS)
        raise
    return failure


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
        # A name of this writer's own: a reader (the local Airflow) sees the old file or
        # the new one, never half of one; a crash leaves an owned key the next deploy removes.
        partial = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(body)
            os.replace(partial, path)
        except OSError as error:
            raise self._error("cannot write", path, error) from error
        return self.etag_of(body)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            path = self.root / key
            try:
                path.unlink(missing_ok=True)
                # Tidy the folders a deleted helper package leaves empty, never dags/ itself.
                for folder in path.parents:
                    if folder == self.root / "dags" or not folder.is_dir() or any(folder.iterdir()):
                        break
                    folder.rmdir()
            except OSError as error:
                raise self._error("cannot delete", path, error) from error

    @contextmanager
    def lock(self, env: str) -> Iterator[None]:
        """An OS lock, which ends with the process that holds it, however that ends."""
        where = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"mwaa_deploy-{where}-{env}.lock"
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BucketError(
                    f"another deploy of {env} to {self.description} is running: wait for it"
                    " to finish, then run this again"
                ) from None
            yield

    def _error(self, doing: str, path: Path, error: OSError) -> BucketError:
        blocker = next((p for p in [path, *path.parents] if p.is_file()), None)
        if blocker is not None and blocker != path:
            return BucketError(
                f"{doing} {path}: {blocker} is a file where a folder belongs; move it away",
                permanent=True,
            )
        passing = error.errno in (errno.ENOSPC, errno.EIO, errno.EAGAIN, errno.EBUSY)
        return BucketError(f"{doing} {path}: {error.strerror}", permanent=not passing)


def print_progress(done: int, total: int) -> None:
    """Progress of long deploys: one line rewritten in place on a terminal, every 10% otherwise."""
    if total < PROGRESS_FROM:
        return
    if sys.stderr.isatty():
        end = "\n" if done == total else ""
        print(f"\r  uploaded {done}/{total}", end=end, file=sys.stderr, flush=True)
    elif done % (total // 10) == 0 or done == total:
        print(f"  uploaded {done}/{total}", file=sys.stderr, flush=True)
