"""The lock of an owner in an S3 bucket: one deploy or clean of an owner at a time.

The lock is a key of the owner's (`dags/<owner>_.lock`) that S3 writes only if no other
holds it (a conditional write). A lock is taken over, the same way, when its lease has
lapsed or when the deploy that holds it ran on this machine and is gone: a rerun after a
failure need not wait. While the deploy runs, the lease is renewed, so a long deploy keeps
its lock. The local bucket's lock is an OS lock instead (local_bucket.py).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mwaa_deploy.exceptions import BucketError
from mwaa_deploy.owners import lock_key

if TYPE_CHECKING:
    from mwaa_deploy.bucket.s3_bucket import S3Bucket

# How long a deploy's lock holds if the deploy dies without releasing it. A running deploy
# renews it this many times a lease, so that a few renewals may fail before it lapses.
LOCK_LEASE = timedelta(minutes=10)
LOCK_RENEWALS_PER_LEASE = 3
# How far another machine's clock may run ahead of this one's: a lock dated further ahead
# than a lease and this was not written by a running deploy, and would hold for ever.
CLOCK_SKEW = timedelta(minutes=2)
# How long a finished deploy waits to release its lock: an endpoint that stopped answering
# would otherwise hold the command as long as the uploads it already gave up on.
LOCK_RELEASE_SECONDS = 1.5
# The answers of a conditional write that another write came first.
TAKEN = ("PreconditionFailed", "ConditionalRequestConflict")


@contextmanager
def held(bucket: S3Bucket, owner: str) -> Iterator[None]:
    """Hold the owner's lock for the length of the block, or refuse in one line."""
    key, now = lock_key(owner), datetime.now(UTC)
    mine = {
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "machine": this_machine(),
        "pid": os.getpid(),
        "since": _when(now),
        "until": _when(now + LOCK_LEASE),
    }
    etag = _put_if_absent(bucket, key, json.dumps(mine).encode())
    # The lock's ETag as this deploy wrote it last, which its renewals keep up to date.
    lease = {"etag": etag or _take_over(bucket, owner, mine, now)}
    stop = threading.Event()
    renewing = threading.Thread(
        target=_renew,
        args=(bucket, key, mine, lease, stop),
        name=f"lock renewal {key}",
        daemon=True,
    )
    renewing.start()
    try:
        yield
    finally:
        stop.set()
        # A renewal in flight ends within the SDK's timeouts; the deploy waits for it
        # no longer than for the release, so that the release is the last write.
        with contextlib.suppress(KeyboardInterrupt):
            renewing.join(LOCK_RELEASE_SECONDS)
        _release(bucket, key, lease["etag"])


def _take_over(bucket: S3Bucket, owner: str, mine: dict[str, Any], now: datetime) -> str:
    """Take over the lock another deploy left, if it may be; return the lock's ETag."""
    key = lock_key(owner)
    where = f"s3://{bucket.name}/{key}"
    body = None
    with bucket.failing("cannot read the lock", f"{bucket.name}/{key}", none=("NoSuchKey",)):
        held = bucket.client.get_object(Bucket=bucket.name, Key=key)
        body = held["Body"].read()
    if body is None:  # released since this deploy's write was refused: try once more
        if etag := _put_if_absent(bucket, key, json.dumps(mine).encode()):
            return etag
        raise BucketError(
            f"another deploy of {owner} took the lock {where} first: wait for it to finish"
        )
    holder = _lock_holder(body)
    if _same_process(holder, mine):  # our own write, whose answer was lost and retried
        return held["ETag"]
    if not _gone(holder, mine):
        if never := _never_lapses(holder, body, now):
            raise BucketError(
                f"{where} holds {never}: if no deploy of {owner} is running,"
                f" remove it: `{bucket.removal_command(key)}`"
            )
        if (until := datetime.fromisoformat(holder["until"])) > now:
            raise BucketError(
                f"another deploy of {owner} holds {where} ({holder.get('user')}@"
                f"{holder.get('host')} pid {holder.get('pid')}, since {holder.get('since')}):"
                f" wait for it to finish; if it died on another machine, its lock lapses at"
                f" {_when(until)}"
            )
    body = json.dumps(mine).encode()
    with bucket.failing("cannot take over the lock", f"{bucket.name}/{key}", none=TAKEN):
        return bucket.client.put_object(
            Bucket=bucket.name, Key=key, Body=body, Conditions={"If-Match": held["ETag"]}
        )["ETag"]
    raise BucketError(
        f"another deploy of {owner} took over the lock {where} first: wait for it to finish"
    )


def _renew(
    bucket: S3Bucket, key: str, mine: dict[str, Any], lease: dict[str, str], stop: threading.Event
) -> None:
    """Push the lease's end forward until `stop`. Each write is conditional on the lock
    being the one this deploy wrote last: a lock released, or taken over after all, is
    never written back."""
    every = LOCK_LEASE.total_seconds() / LOCK_RENEWALS_PER_LEASE
    gone = ("PreconditionFailed", "NoSuchKey", "404")
    while not stop.wait(every):
        renewed = mine | {"until": _when(datetime.now(UTC) + LOCK_LEASE)}
        try:
            with bucket.failing("cannot renew the lock", f"{bucket.name}/{key}", none=gone):
                lease["etag"] = bucket.client.put_object(
                    Bucket=bucket.name,
                    Key=key,
                    Body=json.dumps(renewed).encode(),
                    Conditions={"If-Match": lease["etag"]},
                )["ETag"]
                continue
        except BucketError:
            continue  # passing: the next renewal comes well within the lease
        return  # no longer this deploy's lock: nothing to renew


def _release(bucket: S3Bucket, key: str, etag: str) -> None:
    """Delete the lock if it is still ours (a conditional delete: the lock as this deploy
    wrote it last), waiting a few seconds at most: the deploy has ended, and a lock left
    behind is taken over by the next deploy from this machine."""

    def release() -> None:
        with contextlib.suppress(Exception):
            bucket.client.delete_object(Bucket=bucket.name, Key=key, Conditions={"If-Match": etag})

    releasing = threading.Thread(target=release, daemon=True)
    releasing.start()
    with contextlib.suppress(KeyboardInterrupt):
        releasing.join(LOCK_RELEASE_SECONDS)


def _put_if_absent(bucket: S3Bucket, key: str, body: bytes) -> str:
    """Write the key unless it exists (a conditional write): its ETag, or "" if it does."""
    with bucket.failing("cannot write", f"{bucket.name}/{key}", none=TAKEN):
        return bucket.client.put_object(
            Bucket=bucket.name, Key=key, Body=body, Conditions={"If-None-Match": "*"}
        )["ETag"]
    return ""


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _lock_holder(body: bytes) -> dict[str, Any]:
    """What a lock says of its holder; an unreadable lock says nothing."""
    try:
        holder = json.loads(body)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def this_machine() -> str:
    """The kernel this process runs on and its PID namespace: a process id names one
    process only within both. "" where they cannot be told (no /proc)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace.st_dev}:{namespace.st_ino}"


def _same_process(holder: dict[str, Any], mine: dict[str, Any]) -> bool:
    return all(holder.get(field) == mine[field] for field in ("host", "machine", "pid"))


def _gone(holder: dict[str, Any], mine: dict[str, Any]) -> bool:
    """The holder's deploy ran in this machine's PID namespace, and its process is gone.
    A host name alone does not tell: a container elsewhere, or beside this process, can
    share it, and there a process id names another process."""
    here = mine["machine"] and holder.get("machine") == mine["machine"]
    return bool(here) and holder.get("host") == mine["host"] and not _running(holder.get("pid"))


def _never_lapses(holder: dict[str, Any], body: bytes, now: datetime) -> str:
    """What the lock holds, where its lease can never lapse; else ""."""
    try:
        until = datetime.fromisoformat(str(holder["until"]))
    except (KeyError, ValueError):
        shown = body[:60].decode(errors="replace") + ("…" if len(body) > 60 else "")
        return f"{shown!r}, not a lock this tool wrote, so it never lapses"
    if until.tzinfo is None:
        return f"a lock whose end, {holder['until']}, has no time zone, so it never lapses"
    if until > now + LOCK_LEASE + CLOCK_SKEW:
        return f"a lock held until {_when(until)}, further ahead than a deploy ever takes one"
    return ""


def _running(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
