"""Syncing: make one environment's keys in the bucket match its stamped build.

One logic for every bucket: the embedded local bucket (a folder laid out like the S3
bucket) and S3 both implement `Bucket`. An environment owns exactly the keys
`dags/<ENV>_*`; every key this module writes or deletes is checked against that first.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mwaa_deploy.stamp import check_environment

# Deploys of fewer files finish before progress would help.
PROGRESS_FROM = 20


class Bucket(Protocol):
    """What syncing needs from a bucket. Keys use `/`; ETags are opaque strings."""

    description: str

    def list(self, prefix: str) -> dict[str, str]:
        """Every key under `prefix` with its ETag."""
        ...

    def etag_of(self, body: bytes) -> str:
        """The ETag this bucket gives an object holding `body` when it is uploaded here."""
        ...

    def put(self, key: str, body: bytes) -> None: ...

    def delete(self, keys: list[str]) -> None: ...


class OwnershipError(AssertionError):
    """A key outside the environment's own prefix was about to be touched."""


class SyncError(Exception):
    """A deploy stopped part-way; the message says what was and was not done."""


class BucketError(Exception):
    """The bucket refused or failed a request; the message says which and why."""


def owned_prefix(env: str) -> str:
    return f"dags/{check_environment(env)}_"


def assert_owned(env: str, key: str) -> str:
    if not key.startswith(owned_prefix(env)) or "/../" in f"/{key}/":
        raise OwnershipError(f"refusing to touch {key!r}: {env} owns only {owned_prefix(env)}*")
    return key


@dataclass
class Plan:
    """What a deploy of `env` would do. Keys are sorted; `uploads` maps key to body."""

    env: str
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def is_empty(self) -> bool:
        return not (self.new or self.changed or self.deleted)

    def counts(self) -> str:
        return (
            f"{len(self.new)} new, {len(self.changed)} changed, "
            f"{len(self.deleted)} deleted, {len(self.unchanged)} unchanged"
        )


def read_build(build: Path, env: str) -> dict[str, bytes]:
    """The keys and bodies of a stamped build folder, `build/<env>/`."""
    root = build / env
    if not (root / "dags").is_dir():
        raise SyncError(f"no build in {root}: stamp first (make stamp-{env.lower()})")
    files = sorted(p for p in (root / "dags").rglob("*") if p.is_file())
    return {assert_owned(env, p.relative_to(root).as_posix()): p.read_bytes() for p in files}


def plan(bucket: Bucket, env: str, desired: dict[str, bytes]) -> Plan:
    """Compare the build with the bucket by content: mtimes and checkouts do not matter."""
    current = bucket.list(owned_prefix(env))
    result = Plan(env=env)
    for key, body in sorted(desired.items()):
        assert_owned(env, key)
        if key not in current:
            result.new.append(key)
        elif current[key] != bucket.etag_of(body):
            result.changed.append(key)
        else:
            result.unchanged.append(key)
            continue
        result.uploads[key] = body
    result.deleted = sorted(assert_owned(env, key) for key in current.keys() - desired.keys())
    return result


def apply(bucket: Bucket, result: Plan, progress: Callable[[int, int], None] | None = None) -> None:
    """Upload first; delete stale keys only when every upload succeeded."""
    done: list[str] = []
    total = len(result.uploads)
    try:
        for key, body in result.uploads.items():
            bucket.put(assert_owned(result.env, key), body)
            done.append(key)
            if progress:
                progress(len(done), total)
    except BucketError as error:
        raise SyncError(
            f"{result.env}: {error}; {len(done)} of {total} uploads"
            f" done, {total - len(done)} not done, nothing deleted. Run the deploy again:"
            " it picks up where this one stopped."
        ) from error
    if not result.deleted:
        return
    try:
        bucket.delete([assert_owned(result.env, key) for key in result.deleted])
    except BucketError as error:
        raise SyncError(
            f"{result.env}: all {total} uploads done, but deleting the stale keys failed"
            f" ({error}). Run the deploy again to finish."
        ) from error


def clean(bucket: Bucket, env: str) -> list[str]:
    """Delete every key the environment owns; return them."""
    keys = sorted(assert_owned(env, key) for key in bucket.list(owned_prefix(env)))
    if keys:
        bucket.delete(keys)
    return keys


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

    def put(self, key: str, body: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        try:
            partial.write_bytes(body)
            # A reader (the local Airflow) sees the old file or the new one, never half of one.
            os.replace(partial, path)
        except OSError as error:
            raise BucketError(f"cannot write {path}: {error.strerror}") from error

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
