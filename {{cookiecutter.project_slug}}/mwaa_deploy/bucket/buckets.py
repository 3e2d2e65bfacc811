"""Buckets: where a deploy puts the files. Syncing (sync.py) works on any `Bucket`:

- `LocalBucket` (local_bucket.py), a folder laid out like the MWAA bucket: the embedded
  default while no S3 bucket is configured;
- `S3Bucket` (s3_bucket.py), the bucket MWAA reads, through the AWS SDK (which finds the
  endpoint, the profile and the keys).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol


class Stored(NamedTuple):
    """What a bucket gave an object it stored: its ETag and its version."""

    etag: str
    version: str


class Bucket(Protocol):
    """What syncing needs from a bucket. Keys use `/`; ETags and versions are opaque strings.

    A bucket keeps every version of an object, as MWAA's versioned S3 bucket does: a
    deploy's record names the versions of its files, and a rollback reads them back.
    """

    description: str

    def list(self, prefix: str) -> dict[str, str]:
        """Every key under `prefix` with its ETag."""
        ...

    def etag_of(self, body: bytes) -> str:
        """The ETag this bucket usually gives an object holding `body`."""
        ...

    def get(self, key: str, version: str = "") -> bytes | None:
        """The object's content (of `version`, if given), or None when there is none."""
        ...

    def put(self, key: str, body: bytes, over: str | None = None) -> Stored:
        """Store `body` under `key`; where `over` is given, only over the object of that
        ETag ("": only where there is none), else RecordMoved."""
        ...

    def delete(self, keys: list[str]) -> None: ...

    def version_of(self, key: str) -> str:
        """The version the key holds now."""
        ...

    def versions(self, key: str) -> list[str]:
        """Every version the key has held and still has, newest first."""
        ...

    def lock(self, owner: str) -> AbstractContextManager[None]:
        """Held while one deploy or clean of `owner` runs; BucketError if another holds it."""
        ...

    def removal_command(self, key: str) -> str:
        """The command a person runs to delete the key by hand."""
        ...
