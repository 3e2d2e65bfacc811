"""The S3 bucket MWAA reads, through the AWS SDK (which finds the endpoint, profile and keys)."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
)

from mwaa_deploy.sync import UPLOAD_THREADS, BucketError, lock_key

# A request that gets no answer for this long is retried, then given up: a stalled
# endpoint ends the deploy instead of holding it (and its CI job) for ever.
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
# How long a deploy's lock holds if the deploy dies without releasing it.
LOCK_LEASE = timedelta(minutes=10)
# S3's answers that will not change on a retry of the same request.
PERMANENT_CODES = {
    "AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket",
    "404", "KeyTooLongError", "InvalidArgument", "InvalidRequest", "InvalidBucketName",
    "MethodNotAllowed", "EntityTooLarge", "AllAccessDisabled", "AccountProblem",
}  # fmt: skip


class S3Bucket:
    def __init__(self, name: str, region: str) -> None:
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
        try:
            status = bucket.client.get_bucket_versioning(Bucket=name).get("Status")
        except (BotoCoreError, ClientError) as error:
            raise bucket._error("cannot read the versioning of", name, error) from error
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
        try:
            while True:
                page = self.client.list_objects_v2(**request)
                found |= {item["Key"]: item["ETag"].strip('"') for item in page.get("Contents", [])}
                if not page["IsTruncated"]:
                    return found
                request["ContinuationToken"] = page["NextContinuationToken"]
        except (BotoCoreError, ClientError) as error:
            raise self._error("cannot list", f"{self.name}/{prefix}*", error) from error

    def etag_of(self, body: bytes) -> str:
        # The ETag of a single-part upload without SSE-KMS is the MD5 of the body; other
        # ETags are opaque, and syncing keeps a record of them (see sync.RECORD_NAME).
        return hashlib.md5(body, usedforsecurity=False).hexdigest()

    def get(self, key: str, version: str = "") -> bytes | None:
        """The object's content (of `version`, if given), or None when there is none."""
        request = {"Bucket": self.name, "Key": key} | ({"VersionId": version} if version else {})
        try:
            return self.client.get_object(**request)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        except (BotoCoreError, ClientError) as error:
            if _code(error) == "NoSuchVersion":
                return None
            raise self._error("cannot read", f"{self.name}/{key}", error) from error

    def put(self, key: str, body: bytes) -> str:
        try:
            answer = self.client.put_object(Bucket=self.name, Key=key, Body=body)
        except (BotoCoreError, ClientError) as error:
            raise self._error("cannot upload", f"{self.name}/{key}", error) from error
        return answer["ETag"].strip('"')

    def put_versioned(self, key: str, body: bytes) -> str:
        """Upload `body`; return the object version S3 gave it (MWAA is pointed at versions)."""
        try:
            return self.client.put_object(Bucket=self.name, Key=key, Body=body)["VersionId"]
        except (BotoCoreError, ClientError) as error:
            raise self._error("cannot upload", f"{self.name}/{key}", error) from error

    def delete(self, keys: list[str]) -> None:
        refused = []
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.name, Delete={"Objects": batch, "Quiet": True}
                )
            except (BotoCoreError, ClientError) as error:
                raise self._error("cannot delete from", self.name, error) from error
            refused += answer.get("Errors", [])
        if refused:
            raise _refused(self.name, refused)

    @contextmanager
    def lock(self, env: str) -> Iterator[None]:
        """Hold the environment's lock key for the length of the block, or refuse in one line.

        S3 writes the lock only if no other holds it (a conditional write); a lock whose
        lease has lapsed, left by a deploy that died, is taken over the same way.
        """
        key, now = lock_key(env), datetime.now(UTC)
        mine = {
            "holder": f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}",
            "since": _when(now),
            "until": _when(now + LOCK_LEASE),
        }
        body = json.dumps(mine).encode()
        try:
            self.client.put_object(Bucket=self.name, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as error:
            if _code(error) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise self._error("cannot write", f"{self.name}/{key}", error) from error
            self._take_over_lapsed(env, body, now)
        except BotoCoreError as error:
            raise self._error("cannot write", f"{self.name}/{key}", error) from error
        try:
            yield
        finally:
            try:
                self.client.delete_object(Bucket=self.name, Key=key)
            except (BotoCoreError, ClientError):
                pass  # The lease lapses on its own.

    def _take_over_lapsed(self, env: str, body: bytes, now: datetime) -> None:
        key = lock_key(env)
        try:
            held = self.client.get_object(Bucket=self.name, Key=key)
            holder = json.loads(held["Body"].read())
            until = datetime.fromisoformat(holder["until"])
        except (BotoCoreError, ClientError, ValueError, KeyError, TypeError) as error:
            raise BucketError(
                f"s3://{self.name}/{key} is held by another deploy, and it cannot be read"
                f" ({error}); wait for that deploy, or delete the key if none is running"
            ) from error
        if until > now:
            raise BucketError(
                f"another deploy of {env} holds s3://{self.name}/{key}"
                f" ({holder.get('holder', 'unknown')}, since {holder.get('since', '?')}):"
                f" wait for it to finish; if it died, its lock lapses at {holder['until']}"
            )
        try:
            self.client.put_object(Bucket=self.name, Key=key, Body=body, IfMatch=held["ETag"])
        except (BotoCoreError, ClientError) as error:
            raise BucketError(
                f"another deploy took over the lapsed lock s3://{self.name}/{key} first:"
                " wait for it to finish"
            ) from error

    def _error(self, doing: str, what: str, error: Exception) -> BucketError:
        """One line that says what failed and what to do about it, not a traceback."""
        code = _code(error)
        permanent = code in PERMANENT_CODES or isinstance(error, NoCredentialsError)
        if isinstance(error, NoCredentialsError):
            hint = (
                "no AWS credentials found: set AWS_PROFILE (after `aws sso login`), or"
                " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
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
    except BotoCoreError as error:
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
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _code(error: Exception) -> str:
    """S3's error code (`NoSuchBucket`, `AccessDenied`, ...), or "" when S3 gave none."""
    return error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
