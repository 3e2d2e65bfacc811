"""Buckets: where a deploy puts the files. Syncing (sync.py) works on any `Bucket`:

- `LocalBucket`, a folder laid out like the MWAA bucket: the embedded default while no S3
  bucket is configured;
- `S3Bucket`, the bucket MWAA reads, through the AWS SDK (which finds the endpoint, the
  profile and the keys).

The AWS SDK is imported inside the functions that use it, never at the top of this module:
loading it is most of an S3 deploy's start-up work, and a stamp or a deploy to the local
bucket has no use for it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import hashlib
import json
import os
import re
import shlex
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from mwaa_deploy import config
from mwaa_deploy.exceptions import BucketError
from mwaa_deploy.sync import UPLOAD_THREADS, lock_key

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.config import Config

# A request that gets no answer for this long is retried, then given up: a stalled
# endpoint ends the deploy instead of holding it (and its CI job) for ever.
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 8
# How long a deploy's lock holds if the deploy dies without releasing it. A running deploy
# renews it this many times a lease, so that a few renewals may fail before it lapses.
LOCK_LEASE = timedelta(minutes=10)
LOCK_RENEWALS_PER_LEASE = 3
# How far another machine's clock may run ahead of this one's: a lock dated further ahead
# than a lease and this was not written by a running deploy, and would hold for ever.
CLOCK_SKEW = timedelta(minutes=2)
# The local bucket's locks and its objects' versions: folders of their own, never keys a
# deploy lists.
LOCAL_LOCKS = ".locks"
LOCAL_VERSIONS = ".versions"
# How long a finished deploy waits to release its lock: an endpoint that stopped answering
# would otherwise hold the command as long as the uploads it already gave up on.
LOCK_RELEASE_SECONDS = 1.5
# S3's answers that will not change on a retry of the same request.
PERMANENT_CODES = {
    "AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket",
    "404", "KeyTooLongError", "InvalidArgument", "InvalidRequest", "InvalidBucketName",
    "MethodNotAllowed", "EntityTooLarge", "AllAccessDisabled", "AccountProblem",
}  # fmt: skip


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

    def put(self, key: str, body: bytes) -> Stored:
        """Store `body` under `key`."""
        ...

    def delete(self, keys: list[str]) -> None: ...

    def version_of(self, key: str) -> str:
        """The version the key holds now."""
        ...

    def versions(self, key: str) -> list[str]:
        """Every version the key has held and still has, newest first."""
        ...

    def identity(self) -> str:
        """Who writes to the bucket, as the bucket knows them; "" when it cannot tell."""
        ...

    def lock(self, owner: str) -> AbstractContextManager[None]:
        """Held while one deploy or clean of `owner` runs; BucketError if another holds it."""
        ...

    def removal_command(self, key: str) -> str:
        """The command a person runs to delete the key by hand."""
        ...


def open_bucket(settings: config.Settings) -> LocalBucket | S3Bucket:
    """The bucket the settings name: S3 when `s3_bucket` is set, else the local folder."""
    if not settings.s3_bucket:
        return LocalBucket(config.shown(settings.local_bucket))
    return S3Bucket.open(settings.s3_bucket, settings.aws_region)


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

    def get(self, key: str, version: str = "") -> bytes | None:
        path = self._version_path(key, version) if version else self.root / key
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise BucketError(f"cannot read {path}: {error.strerror}") from error

    def put(self, key: str, body: bytes) -> Stored:
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
        kept = [p for p in folder.iterdir() if p.suffix != ".partial"] if folder.is_dir() else []
        return [p.name for p in sorted(kept, key=lambda p: p.stat().st_mtime_ns, reverse=True)]

    def identity(self) -> str:
        return ""

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
        partial = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
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


class S3Bucket:
    """An S3 bucket, through the AWS SDK; every failure is one BucketError line."""

    def __init__(self, name: str, region: str) -> None:
        from botocore.config import Config

        self.name = name
        self.description = f"s3://{name}"
        self.client = aws_client(
            "s3",
            region,
            Config(
                max_pool_connections=UPLOAD_THREADS,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                read_timeout=READ_TIMEOUT_SECONDS,
                retries={"mode": "standard"},
            ),
        )

    @classmethod
    def open(cls, name: str, region: str) -> S3Bucket:
        """The bucket, once it is known to exist, be reachable and be versioned as MWAA needs."""
        bucket = cls(name, region)
        with bucket._failing("cannot read the versioning of", name):
            status = bucket.client.get_bucket_versioning(Bucket=name).get("Status")
        if status != "Enabled":
            raise BucketError(
                f"s3://{name} is not versioned, and MWAA reads only versioned buckets: run"
                f" `aws s3api put-bucket-versioning --bucket {name}"
                " --versioning-configuration Status=Enabled`, or check S3_BUCKET"
            )
        return bucket

    def list(self, prefix: str) -> dict[str, str]:
        # Page by hand: loading botocore's paginator costs more than a page takes to arrive.
        request = {"Bucket": self.name, "Prefix": prefix}
        found: dict[str, str] = {}
        with self._failing("cannot list", f"{self.name}/{prefix}*"):
            while True:
                page = self.client.list_objects_v2(**request)
                found |= {item["Key"]: item["ETag"].strip('"') for item in page.get("Contents", [])}
                if not page["IsTruncated"]:
                    return found
                request["ContinuationToken"] = page["NextContinuationToken"]

    def etag_of(self, body: bytes) -> str:
        # The ETag of a single-part upload without SSE-KMS is the MD5 of the body; other
        # ETags are opaque, and each deploy's record keeps them (see history.py).
        return hashlib.md5(body, usedforsecurity=False).hexdigest()

    def get(self, key: str, version: str = "") -> bytes | None:
        """The object's content (of `version`, if given), or None when there is none."""
        request = {"Bucket": self.name, "Key": key} | ({"VersionId": version} if version else {})
        with self._failing(
            "cannot read", f"{self.name}/{key}", none=("NoSuchKey", "NoSuchVersion")
        ):
            return self.client.get_object(**request)["Body"].read()
        return None

    def put(self, key: str, body: bytes) -> Stored:
        with self._failing("cannot upload", f"{self.name}/{key}"):
            answer = self.client.put_object(Bucket=self.name, Key=key, Body=body)
        return Stored(answer["ETag"].strip('"'), answer.get("VersionId", ""))

    def version_of(self, key: str) -> str:
        with self._failing("cannot read", f"{self.name}/{key}"):
            return self.client.head_object(Bucket=self.name, Key=key).get("VersionId", "")

    def versions(self, key: str) -> list[str]:
        # Other keys may start with this one: their versions are listed too, and left out.
        request = {"Bucket": self.name, "Prefix": key}
        found: list[str] = []
        with self._failing("cannot list the versions of", f"{self.name}/{key}"):
            while True:
                page = self.client.list_object_versions(**request)
                found += [v["VersionId"] for v in page.get("Versions", []) if v["Key"] == key]
                if not page["IsTruncated"]:
                    return found
                request |= {
                    "KeyMarker": page["NextKeyMarker"],
                    "VersionIdMarker": page["NextVersionIdMarker"],
                }

    def identity(self) -> str:
        """The caller's ARN, which the deploy's record keeps: worth a request, not a failure."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            sts = aws_client("sts", self.client.meta.region_name, self.client.meta.config)
            return sts.get_caller_identity()["Arn"]
        except (BotoCoreError, ClientError, BucketError):
            return ""

    def delete(self, keys: list[str]) -> None:
        refused = []
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            with self._failing("cannot delete from", self.name):
                answer = self.client.delete_objects(
                    Bucket=self.name, Delete={"Objects": batch, "Quiet": True}
                )
            refused += answer.get("Errors", [])
        if refused:
            raise _refused(self.name, refused)

    @contextmanager
    def lock(self, owner: str) -> Iterator[None]:
        """Hold the environment's lock key for the length of the block, or refuse in one line.

        S3 writes the lock only if no other holds it (a conditional write). A lock is
        taken over, the same way, when its lease has lapsed or when the deploy that holds
        it ran on this machine and is gone: a rerun after a failure need not wait. While
        the block runs, the lease is renewed, so a long deploy keeps its lock.
        """
        key, now = lock_key(owner), datetime.now(UTC)
        mine = {
            "user": getpass.getuser(),
            "host": socket.gethostname(),
            "machine": this_machine(),
            "pid": os.getpid(),
            "since": _when(now),
            "until": _when(now + LOCK_LEASE),
        }
        etag = self._put_if_absent(key, json.dumps(mine).encode())
        if not etag:
            etag = self._take_over(owner, mine, now)
        stop = threading.Event()
        renewing = threading.Thread(
            target=self._renew,
            args=(key, mine, etag, stop),
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
            self._release(key, mine)

    def _take_over(self, owner: str, mine: dict[str, Any], now: datetime) -> str:
        """Take over the lock another deploy left, if it may be; return the lock's ETag."""
        key = lock_key(owner)
        with self._failing("cannot read the lock", f"{self.name}/{key}"):
            held = self.client.get_object(Bucket=self.name, Key=key)
            body = held["Body"].read()
        holder = _lock_holder(body)
        if _same_process(holder, mine):  # our own write, whose answer was lost and retried
            return held["ETag"]
        if not _gone(holder, mine):
            if never := _never_lapses(holder, body, now):
                raise BucketError(
                    f"s3://{self.name}/{key} holds {never}: if no deploy of {owner} is running,"
                    f" remove it: `{self.removal_command(key)}`"
                )
            if (until := datetime.fromisoformat(holder["until"])) > now:
                raise BucketError(
                    f"another deploy of {owner} holds s3://{self.name}/{key} ({holder.get('user')}@"
                    f"{holder.get('host')} pid {holder.get('pid')}, since {holder.get('since')}):"
                    f" wait for it to finish; if it died on another machine, its lock lapses at"
                    f" {_when(until)}"
                )
        body = json.dumps(mine).encode()
        taken = ("PreconditionFailed", "ConditionalRequestConflict")
        with self._failing("cannot take over the lock", f"{self.name}/{key}", none=taken):
            return self.client.put_object(
                Bucket=self.name, Key=key, Body=body, IfMatch=held["ETag"]
            )["ETag"]
        raise BucketError(
            f"another deploy of {owner} took over the lock s3://{self.name}/{key} first: wait"
            " for it to finish"
        )

    def _renew(self, key: str, mine: dict[str, Any], etag: str, stop: threading.Event) -> None:
        """Push the lease's end forward until `stop`. Each write is conditional on the lock
        being the one this deploy wrote last: a lock released, or taken over after all, is
        never written back."""
        from botocore.exceptions import BotoCoreError, ClientError

        every = LOCK_LEASE.total_seconds() / LOCK_RENEWALS_PER_LEASE
        while not stop.wait(every):
            renewed = mine | {"until": _when(datetime.now(UTC) + LOCK_LEASE)}
            try:
                answer = self.client.put_object(
                    Bucket=self.name, Key=key, Body=json.dumps(renewed).encode(), IfMatch=etag
                )
            except (BotoCoreError, ClientError) as error:
                if _code(error) in ("PreconditionFailed", "NoSuchKey", "404"):
                    return  # no longer this deploy's lock: nothing to renew
                continue  # passing: the next renewal comes well within the lease
            etag = answer["ETag"]

    def _release(self, key: str, mine: dict[str, Any]) -> None:
        """Delete the lock if it is still ours, waiting a few seconds at most: the deploy has
        ended, and a lock left behind is taken over by the next deploy from this machine."""

        def release() -> None:
            with contextlib.suppress(Exception):
                held = self.client.get_object(Bucket=self.name, Key=key)
                if _same_process(_lock_holder(held["Body"].read()), mine):
                    self.client.delete_object(Bucket=self.name, Key=key)

        releasing = threading.Thread(target=release, daemon=True)
        releasing.start()
        with contextlib.suppress(KeyboardInterrupt):
            releasing.join(LOCK_RELEASE_SECONDS)

    def removal_command(self, key: str) -> str:
        return f"aws s3 rm {shlex.quote(f's3://{self.name}/{key}')}"

    def _put_if_absent(self, key: str, body: bytes) -> str:
        """Write the key unless it exists (a conditional write): its ETag, or "" if it does."""
        exists = ("PreconditionFailed", "ConditionalRequestConflict")
        with self._failing("cannot write", f"{self.name}/{key}", none=exists):
            return self.client.put_object(Bucket=self.name, Key=key, Body=body, IfNoneMatch="*")[
                "ETag"
            ]
        return ""

    @contextmanager
    def _failing(self, doing: str, what: str, none: tuple[str, ...] = ()) -> Iterator[None]:
        """An AWS SDK error in the block becomes one BucketError line (see `_error`).

        An S3 error code in `none` means the block has no result: it ends early, and the
        code after it runs, as after `get` of a key that does not exist.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as error:
            if _code(error) not in none:
                raise self._error(doing, what, error) from error

    def _error(self, doing: str, what: str, error: Exception) -> BucketError:
        """One line that says what failed and what to do about it, not a traceback."""
        from botocore.exceptions import EndpointConnectionError, NoCredentialsError

        code = _code(error)
        permanent = code in PERMANENT_CODES or isinstance(error, NoCredentialsError)
        if isinstance(error, NoCredentialsError):
            hint = (
                "no AWS credentials found: set AWS_PROFILE (after `aws sso login`), or"
                " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; or deploy to ./local_bucket"
                " instead: S3_BUCKET= make deploy-dev"
            )
        elif code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            hint = (
                f"access denied ({code}): check that AWS_PROFILE or the keys in use are the"
                " deploy role's, and that its policy allows this"
            )
        elif code == "NoSuchBucket" or (code == "404" and "/" not in what):
            hint = f"the bucket {self.name} does not exist: check S3_BUCKET or s3_bucket"
        elif isinstance(error, EndpointConnectionError):
            hint = f"the S3 endpoint cannot be reached ({error}); check AWS_ENDPOINT_URL"
        else:
            hint = str(error)
        return BucketError(f"{doing} s3://{what}: {hint}", permanent=permanent)


def aws_client(service: str, region: str, config: Config | None = None) -> BaseClient:
    """A client of a session of its own: credentials are looked up now, not reused."""
    import botocore.session
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    session = botocore.session.Session()
    # Timestamps stay text: nothing here reads them, and parsing the LastModified of every
    # listed key would cost a deploy more time than the listing request itself.
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    try:
        return session.create_client(service, region_name=region or None, config=config)
    except ProfileNotFound:
        raise BucketError(
            f"AWS_PROFILE={os.environ.get('AWS_PROFILE', '')!r} is not a profile in your AWS"
            " config: `aws configure list-profiles` lists them, `aws configure sso` adds one",
            permanent=True,
        ) from None
    except (BotoCoreError, ValueError) as error:
        # ValueError: a malformed AWS_ENDPOINT_URL, which botocore checks with no class of its own.
        raise BucketError(f"the AWS SDK cannot start: {error}", permanent=True) from None


def _refused(bucket: str, errors: list[dict[str, str]]) -> BucketError:
    """S3 refused some keys of a multi-object delete: one line however many."""
    codes = sorted({error.get("Code", "?") for error in errors})
    examples = ", ".join(error["Key"] for error in errors[:3])
    more = f" and {len(errors) - 3} more" if len(errors) > 3 else ""
    return BucketError(
        f"s3://{bucket} refused to delete {len(errors)} keys ({', '.join(codes)}), such as"
        f" {examples}{more}",
        permanent=bool(set(codes) & PERMANENT_CODES),
    )


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


def _code(error: Exception) -> str:
    """S3's error code (`NoSuchBucket`, `AccessDenied`, ...), or "" when S3 gave none."""
    from botocore.exceptions import ClientError

    return error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
