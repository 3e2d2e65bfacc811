"""Syncing: make one owner's keys in the bucket match its stamped build.

One logic for every bucket: the embedded local bucket (a folder laid out like the S3
bucket) and S3 both implement `Bucket` (buckets.py). An owner (DEV, PROD, or a story
branch's sandbox; see owners.py) owns exactly the keys `dags/<owner>_*`; every key this
module writes or deletes is checked against that first.

Content decides what is uploaded, never timestamps. A bucket's ETag is usually a hash of
the content (the MD5 on S3), so comparing it with the build's is enough. Where it is not
(SSE-KMS, multipart uploads), the last deploy's record (history.py) has the SHA-256 of
what it left under each ETag. The record also keeps each file's source key (what decided
its stamp): a file whose source key and ETag are the record's is unchanged, unstamped.
Each deploy that changes something writes its record, the last object it writes, before
it deletes stale keys; a rollback is a deploy of an earlier record's files.

A deploy with work holds the owner's lock (`dags/<owner>_.lock` on S3) to its last
deletion, so two deploys of one owner never interleave: the second is refused. It writes
its record only over the record it planned from; where another deploy of the owner ended
between its plan and its lock, it plans again under the lock and finishes that plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from mwaa_deploy.bucket import claims, history
from mwaa_deploy.bucket.plans import Contents, Desired, Plan
from mwaa_deploy.bucket.uploads import Uploads
from mwaa_deploy.exceptions import (
    BucketError,
    Interrupted,
    OwnershipError,
    RecordMoved,
    SyncError,
)
from mwaa_deploy.owners import INSTANCE_RECORD, lock_key, owns, prefix

if TYPE_CHECKING:
    from mwaa_deploy.bucket.buckets import Bucket, Stored


def assert_owned(owner: str, key: str) -> str:
    if not owns(owner, key):
        raise OwnershipError(f"refusing to touch {key!r}: {owner} owns only {prefix(owner)}*")
    return key


def owned_keys(bucket: Bucket, owner: str) -> dict[str, str]:
    """The owner's keys in the bucket with their ETags, its record included, its lock (and
    the instance-wide files' record) left out. A key there that leads out of the prefix
    (`..`, put there by hand) is no key a deploy may touch, nor one to pass over in
    silence: it is refused, with the command that deletes it."""
    listed = bucket.list(prefix(owner))
    listed.pop(lock_key(owner), None)
    listed.pop(INSTANCE_RECORD, None)  # PROD's prefix, the instance-wide files' history
    escaping = sorted(key for key in listed if not owns(owner, key))
    if escaping:
        more = f" ({len(escaping) - 1} more such keys follow it)" if len(escaping) > 1 else ""
        raise BucketError(
            f"{escaping[0]} in {bucket.description} starts with {owner}'s prefix but leads out"
            f" of it (..), so no deploy of {owner} may touch it{more}: if you did not mean to"
            f" put it there, delete it: `{bucket.removal_command(escaping[0])}`",
            permanent=True,
        )
    return listed


def plan(bucket: Bucket, owner: str, desired: Desired | Mapping[str, bytes]) -> Plan:
    """Compare the build with the bucket by content: mtimes and checkouts do not matter.
    Only the files the record cannot vouch for are stamped (and checked) now."""
    wanted = Contents(desired, {}) if isinstance(desired, Mapping) else desired
    # The listing and the record at once, one round trip; should a deploy write between
    # the two, the listed record is the one written over, so this one plans again.
    asked = history.concurrently(
        lambda ask: ask(), [lambda: owned_keys(bucket, owner), lambda: history.read(bucket, owner)]
    )
    listed, last = asked.values()
    record_etag = listed.pop(history.record_key(owner), None)
    result = Plan(owner=owner, recorded=last.objects if last else {}, record_etag=record_etag)
    keys = wanted.keys()
    vouched = {
        key
        for key in keys
        if (recorded := result.recorded.get(key))
        and recorded.get("source") == wanted.source_keys[key] != ""
        and recorded["etag"] == listed.get(key)
    }
    bodies = wanted.stamped(key for key in keys if key not in vouched)
    for key in keys:
        assert_owned(owner, key)
        if key in vouched:
            recorded = result.recorded[key]
            result.files[key] = {name: recorded[name] for name in ("sha256", "etag", "source")}
            result.unchanged.append(key)
            continue
        body = bodies[key]
        file = result.files[key] = {
            "sha256": _sha256(body),
            "etag": listed.get(key, ""),
            "source": wanted.source_keys[key],
        }
        if key not in listed:
            result.new.append(key)
        elif listed[key] == bucket.etag_of(body) or _same(result.recorded.get(key), file):
            result.unchanged.append(key)
            continue
        else:
            result.changed.append(key)
        result.uploads[key] = body
    result.deleted = sorted(assert_owned(owner, key) for key in listed.keys() - set(keys))
    result.record_stale = bool(keys) and not _record_holds(result.recorded, result.files)
    return result


def deploy(
    bucket: Bucket,
    owner: str,
    desired: Desired | Mapping[str, bytes],
    progress: Callable[[int, int], None] | None = None,
    about: Callable[[], history.About] | None = None,
    planned: Plan | None = None,
) -> Plan:
    """Make the owner's keys equal `desired` (as `planned`, where it is planned already);
    record `about()`, where the deploy comes from, asked only of a deploy with work.

    A deploy with nothing to do writes nothing, not even a lock or a record. One with work
    takes the owner's lock and applies its plan under it; where the record moved since
    the plan (another deploy of the owner ended meanwhile), it plans again and goes on.
    """
    result = planned or plan(bucket, owner, desired)
    if result.is_empty:
        return result
    with bucket.lock(owner):
        origin = about() if about else {}
        claims.check(bucket, owner, claims.Claim.of(origin))
        try:
            apply(bucket, result, progress, origin)
        except RecordMoved:
            first, result = result, plan(bucket, owner, desired)
            apply(bucket, result, progress, origin)
            result = result.after(first)
    return result


def rollback(
    bucket: Bucket,
    owner: str,
    to: str,
    progress: Callable[[int, int], None] | None = None,
    about: Callable[[], history.About] | None = None,
) -> tuple[history.Deploy, Plan]:
    """Make the owner's keys hold exactly the files of an earlier deploy (the one whose id
    starts with `to`; by default the one before the last, or the last itself where the
    bucket no longer holds its files), as a deploy of its own that the history lists and
    a later rollback can undo."""
    with bucket.lock(owner):
        origin = about() if about else {}
        claims.check(bucket, owner, claims.Claim.of(origin))
        earlier = history.choose(bucket, owner, to, holds_last(bucket, owner))
        rerun = f"the rollback with TO={earlier.short_id}"
        try:
            desired = history.contents(bucket, owner, earlier)
        except BucketError as error:
            raise SyncError(
                f"{owner}: {error}; nothing changed. {_what_next(error, rerun)}"
            ) from error
        result = plan(
            bucket, owner, Contents(desired, {k: o["source"] for k, o in earlier.objects.items()})
        )
        if not result.is_empty:
            restored = {"rollback_to": earlier.id, "files_from": history.files_from(earlier)}
            apply(bucket, result, progress, origin | restored, rerun)
    return earlier, result


def holds_last(bucket: Bucket, owner: str) -> bool:
    """The owner's files in the bucket are those its last recorded deploy left."""
    files = owned_keys(bucket, owner)
    if files.pop(history.record_key(owner), None) is None:
        return False  # cleaned, or never deployed
    last = history.read(bucket, owner)
    return last is not None and not history.differences(files, last)


def apply(
    bucket: Bucket,
    result: Plan,
    progress: Callable[[int, int], None] | None = None,
    about: history.About | None = None,
    rerun: str = "the deploy",
) -> None:
    """Upload first, concurrently; when every upload succeeded, save the record of the
    deploy, then delete stale keys. A failure says to run `rerun` again, or why not."""
    owner, total = result.owner, len(result.uploads)
    for key in [*result.uploads, *result.deleted]:
        assert_owned(owner, key)
    uploaded: dict[str, Stored] = {}
    try:
        failure = Uploads(bucket, result.uploads, uploaded, progress).run()
    except KeyboardInterrupt:
        raise Interrupted(
            f"{owner}: interrupted; {len(uploaded)} of {total} uploads done,"
            f" {total - len(uploaded)} not done, nothing deleted. Run {rerun} again to finish."
        ) from None
    if failure is not None:
        raise SyncError(
            f"{owner}: {failure}; {len(uploaded)} of {total} uploads done,"
            f" {total - len(uploaded)} not done, nothing deleted. {_what_next(failure, rerun)}"
        ) from failure
    try:
        _finish(bucket, result, uploaded, about, rerun)
    except KeyboardInterrupt:
        raise Interrupted(
            f"{owner}: interrupted; all {total} uploads done, stale keys not yet deleted."
            f" Run {rerun} again to finish."
        ) from None


def _finish(
    bucket: Bucket,
    result: Plan,
    uploaded: dict[str, Stored],
    about: history.About | None,
    rerun: str,
) -> None:
    """After every upload succeeded: save the record, then delete the stale keys."""
    owner, total, stale = result.owner, len(result.uploads), result.deleted
    try:
        _save_record(bucket, result, uploaded, about)
    except BucketError as error:
        raise SyncError(
            f"{owner}: all {total} uploads done, but saving {history.record_key(owner)} failed"
            f" ({error});"
            f" nothing deleted. {_what_next(error, rerun)}"
        ) from error
    if not stale:
        return
    try:
        bucket.delete(stale)
    except BucketError as error:
        raise SyncError(
            f"{owner}: all {total} uploads done, but deleting the stale keys failed"
            f" ({error}). {_what_next(error, rerun)}"
        ) from error


def _what_next(error: Exception, rerun: str) -> str:
    if getattr(error, "permanent", False):
        return f"This is not passing: running {rerun} again fails the same way until it is fixed."
    return f"Run {rerun} again: it picks up where this one stopped."


def clean(bucket: Bucket, owner: str, claim: claims.Claim | None = None) -> list[str]:
    """Delete every key the owner owns, its record included; return the files deleted.
    `claim`: whom a sandbox is cleaned for, which must be whom it was deployed for."""
    with bucket.lock(owner):
        claims.check(bucket, owner, claim or claims.Claim())
        keys = sorted(assert_owned(owner, key) for key in owned_keys(bucket, owner))
        if keys:
            bucket.delete(keys)
    return [key for key in keys if key != history.record_key(owner)]


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _record_holds(recorded: history.Objects, files: history.Objects) -> bool:
    """The record describes exactly these files, each with its version: a deploy that
    changes no file need not write it again."""
    fields = ("sha256", "etag", "source")
    return recorded.keys() == files.keys() and all(
        recorded[key]["version"] and all(recorded[key][f] == file[f] for f in fields)
        for key, file in files.items()
    )


def _same(recorded: dict[str, str] | None, file: dict[str, str]) -> bool:
    """The record says the key holds this content under the ETag the bucket lists."""
    return recorded is not None and all(recorded[k] == file[k] for k in ("sha256", "etag"))


def _save_record(
    bucket: Bucket, result: Plan, uploaded: dict[str, Stored], about: history.About | None
) -> None:
    """Write the record of a deploy: its origin, its changes, and each file's version.

    An unchanged file keeps its entry of the last record; one the last record does not
    describe (written before the record kept versions, or the record lost) is asked for.
    """
    objects: history.Objects = {}
    unrecorded = []
    for key, file in result.files.items():
        recorded = result.recorded.get(key)
        if key in uploaded:
            etag, version = uploaded[key]
            objects[key] = file | {"etag": etag, "version": version}
        elif _same(recorded, file) and recorded and recorded["version"]:
            objects[key] = recorded | {"source": file["source"]}
        else:
            unrecorded.append(key)
    for key, version in history.concurrently(bucket.version_of, unrecorded).items():
        objects[key] = result.files[key] | {"version": version}
    record = history.document(about or {}, result.counts(done=True), objects)
    # Only over the record planned from: another deploy's, written meanwhile, is not lost.
    bucket.put(history.record_key(result.owner), record, over=result.record_etag or "")
