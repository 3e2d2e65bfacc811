"""The local bucket: a folder laid out like the MWAA bucket, the embedded default while no
S3 bucket is configured. It keeps every version of its files, as a versioned bucket does,
so history and rollback work with no AWS."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shlex
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mwaa_deploy import file_state
from mwaa_deploy.bucket.buckets import Stored
from mwaa_deploy.exceptions import BucketError, RecordMoved

# The local bucket's locks and its objects' versions: folders of their own, never keys a
# deploy lists.
LOCAL_LOCKS = ".locks"
LOCAL_VERSIONS = ".versions"
# Each key's size, mtime, ctime, inode and ETag when it was last hashed, in LOCAL_VERSIONS.
INDEX = "index.json"
# A file being written, named `<name>.<pid>-<thread>.partial`: renamed onto its key once
# whole, never a key itself.
PARTIAL = ".partial"
WRITING = re.compile(r"\.\d+-\d+\.partial$")


class LocalBucket:
    """A folder laid out like the MWAA bucket: the embedded default when no S3 bucket is set."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"local bucket {root}"

    def list(self, prefix: str) -> dict[str, str]:
        """The keys under `prefix` with their ETags. A file is hashed again only where its
        state differs from when it was last hashed (the index: file_state.py)."""
        folder, _, name_start = prefix.rpartition("/")
        base = self.root / folder
        if not base.is_dir():
            return {}
        index = self._index()
        found, hashed = {}, {}
        for file in _files(base, name_start):
            key = file.path[len(str(self.root)) + 1 :]
            try:
                seen = file.stat()
                etag = file_state.known(index.get(key), file_state.state(seen))
                if etag is not None:
                    found[key] = etag
                    continue
                with open(file.path, "rb") as body:
                    found[key] = self.etag_of(body.read())
            except FileNotFoundError:
                continue  # deleted by another deploy since the folder was read
            if kept := file_state.entry(seen, found[key]):
                hashed[key] = kept
        if hashed:
            self._save_index(index | hashed)
        return found

    def _index(self) -> dict[str, list]:
        try:
            found = json.loads((self.root / LOCAL_VERSIONS / INDEX).read_bytes())
        except (OSError, ValueError, RecursionError):
            return {}
        return found if isinstance(found, dict) else {}

    def _save_index(self, index: dict[str, list]) -> None:
        """Keep the index whole or not at all: one lost only costs the next listing time."""
        path = self.root / LOCAL_VERSIONS / INDEX
        partial = path.with_name(f"{INDEX}.{os.getpid()}-{threading.get_ident()}{PARTIAL}")
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(index))
            os.replace(partial, path)

    def etag_of(self, body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()

    def get(self, key: str, version: str = "") -> bytes | None:
        path = self._version_path(key, version) if version else self.root / key
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # a file where a folder belongs
            return None
        except OSError as error:
            raise BucketError(f"cannot read {path}: {error.strerror}") from error

    def put(self, key: str, body: bytes, over: str | None = None) -> Stored:
        if over is not None:  # the owner's OS lock is held: nothing writes between
            current = self.get(key)
            if (self.etag_of(current) if current is not None else "") != over:
                raise RecordMoved(f"{self.root / key} changed since this deploy read it")
        # The version first: a file in place is always one the bucket keeps a version of.
        version = self._keep_version(key, body)
        self._write(self.root / key, body)
        return Stored(self.etag_of(body), version)

    def version_of(self, key: str) -> str:
        body = self.get(key)
        if body is None:
            raise BucketError(f"cannot read {self.root / key}: it is gone", permanent=True)
        return self._keep_version(key, body)

    def versions(self, key: str) -> list[str]:
        folder = self.root / LOCAL_VERSIONS / key
        kept = [p for p in folder.iterdir() if p.suffix != PARTIAL] if folder.is_dir() else []
        return [p.name for p in sorted(kept, key=lambda p: p.stat().st_mtime_ns, reverse=True)]

    def _keep_version(self, key: str, body: bytes) -> str:
        """Keep the content as a version of the key, named by its hash: the same content
        is one version, made the newest again when stored again."""
        version = self.etag_of(body)
        path = self._version_path(key, version)
        if not path.is_file():
            self._write(path, body)
        # Newer than every other version, also within one tick of the file system's clock.
        others = (p.stat().st_mtime_ns for p in path.parent.iterdir() if p != path)
        moment = max(time.time_ns(), max(others, default=0) + 1)
        os.utime(path, ns=(moment, moment))
        return version

    def _version_path(self, key: str, version: str) -> Path:
        if not re.fullmatch("[0-9a-f]{64}", version):  # a hash, never a path
            raise BucketError(f"{version!r} is not a version of {self.description}", permanent=True)
        return self.root / LOCAL_VERSIONS / key / version

    def _write(self, path: Path, body: bytes) -> None:
        # A name of this writer's own: a reader (the local Airflow) sees the old file or
        # the new one, never half of one; a crash leaves an owned key the next deploy removes.
        partial = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}{PARTIAL}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(body)
            os.replace(partial, path)
        except OSError as error:
            raise self._error("cannot write", path, error) from error

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
    def lock(self, owner: str) -> Iterator[None]:
        """An OS lock, which ends with the process that holds it, however that ends."""
        path = self.root / LOCAL_LOCKS / f"{owner}.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise self._error("cannot write", path, error) from error
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BucketError(
                    f"another deploy of {owner} to {self.description} is running: wait for it"
                    " to finish, then run this again"
                ) from None
            yield

    def removal_command(self, key: str) -> str:
        return f"rm {shlex.quote(str(self.root / key))}"

    def _error(self, doing: str, path: Path, error: OSError) -> BucketError:
        blocker = next((p for p in [path, *path.parents] if p.is_file()), None)
        if blocker is not None and blocker != path:
            return BucketError(
                f"{doing} {path}: {blocker} is a file where a folder belongs; move it away",
                permanent=True,
            )
        passing = error.errno in (errno.ENOSPC, errno.EIO, errno.EAGAIN, errno.EBUSY)
        return BucketError(f"{doing} {path}: {error.strerror}", permanent=not passing)


def _files(folder: Path, name_start: str) -> Iterator[os.DirEntry[str]]:
    """The files in `folder` whose names (or whose top folder's) start with `name_start`,
    at any depth. Plain scandir: a listing of thousands of keys runs on every deploy."""
    for entry in os.scandir(folder):
        if not entry.name.startswith(name_start) or WRITING.search(entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _files(Path(entry.path), "")
        elif entry.is_file():
            yield entry
