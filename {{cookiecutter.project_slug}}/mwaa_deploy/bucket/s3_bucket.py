"""The S3 bucket MWAA reads, through the AWS SDK (which finds the endpoint, the profile
and the keys); every failure is one BucketError line.

The AWS SDK is imported inside the functions that use it, never at the top of this module:
loading it is most of an S3 deploy's start-up work, and a stamp or a deploy to the local
bucket has no use for it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import TYPE_CHECKING, Any

from mwaa_deploy.bucket import s3_lock
from mwaa_deploy.bucket.buckets import Stored
from mwaa_deploy.exceptions import BucketError, RecordMoved

if TYPE_CHECKING:
    from pathlib import Path

    import botocore.session
    from botocore.awsrequest import AWSRequest
    from botocore.client import BaseClient
    from botocore.config import Config
    from botocore.loaders import Loader

# A request that gets no answer for this long is retried, then given up: a stalled
# endpoint ends the deploy instead of holding it (and its CI job) for ever.
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 8
# Uploads in flight at once: S3 takes many more; more than this gains little for small files.
UPLOAD_THREADS = 16
# S3's conditional writes (If-Match, If-None-Match) go as headers that a call passes in
# `Conditions`: the SDK that MWAA pins for Airflow 2.10 models If-None-Match on PutObject
# only and If-Match nowhere, and S3 honours both headers whatever the SDK.
CONDITIONS = "Conditions"
# S3's answers that will not change on a retry of the same request.
PERMANENT_CODES = {
    "AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket",
    "404", "KeyTooLongError", "InvalidArgument", "InvalidRequest", "InvalidBucketName",
    "MethodNotAllowed", "EntityTooLarge", "AllAccessDisabled", "AccountProblem",
}  # fmt: skip


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
        self.client.meta.events.register("before-parameter-build.s3", _keep_conditions)
        self.client.meta.events.register("before-sign.s3", _send_conditions)

    @classmethod
    def open(cls, name: str, region: str) -> S3Bucket:
        """The bucket, once it is known to exist, be reachable and be versioned as MWAA needs."""
        bucket = cls(name, region)
        with bucket.failing("cannot read the versioning of", name):
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
        with self.failing("cannot list", f"{self.name}/{prefix}*"):
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
        with self.failing("cannot read", f"{self.name}/{key}", none=("NoSuchKey", "NoSuchVersion")):
            return self.client.get_object(**request)["Body"].read()
        return None

    def put(self, key: str, body: bytes, over: str | None = None) -> Stored:
        condition = {} if over is None else {"If-Match": over} if over else {"If-None-Match": "*"}
        # Over an object that changed, or is gone (cleaned) since it was read.
        moved = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409", "NoSuchKey")
        with self.failing("cannot upload", f"{self.name}/{key}", none=moved):
            answer = self.client.put_object(
                Bucket=self.name, Key=key, Body=body, Conditions=condition
            )
            return Stored(answer["ETag"].strip('"'), answer.get("VersionId", ""))
        raise RecordMoved(f"s3://{self.name}/{key} changed since this deploy read it")

    def version_of(self, key: str) -> str:
        with self.failing("cannot read", f"{self.name}/{key}"):
            return self.client.head_object(Bucket=self.name, Key=key).get("VersionId", "")

    def versions(self, key: str) -> list[str]:
        # Other keys may start with this one: their versions are listed too, and left out.
        request = {"Bucket": self.name, "Prefix": key}
        found: list[str] = []
        with self.failing("cannot list the versions of", f"{self.name}/{key}"):
            while True:
                page = self.client.list_object_versions(**request)
                found += [v["VersionId"] for v in page.get("Versions", []) if v["Key"] == key]
                if not page["IsTruncated"]:
                    return found
                request |= {
                    "KeyMarker": page["NextKeyMarker"],
                    "VersionIdMarker": page["NextVersionIdMarker"],
                }

    def delete(self, keys: list[str]) -> None:
        refused = []
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            with self.failing("cannot delete from", self.name):
                answer = self.client.delete_objects(
                    Bucket=self.name, Delete={"Objects": batch, "Quiet": True}
                )
            refused += answer.get("Errors", [])
        if refused:
            raise _refused(self.name, refused)

    def lock(self, owner: str) -> AbstractContextManager[None]:
        """Hold the environment's lock key for the length of the block (s3_lock.py)."""
        return s3_lock.held(self, owner)

    def removal_command(self, key: str) -> str:
        return f"aws s3 rm {shlex.quote(f's3://{self.name}/{key}')}"

    @contextmanager
    def failing(self, doing: str, what: str, none: tuple[str, ...] = ()) -> Iterator[None]:
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


def aws_client(
    service: str, region: str, config: Config | None = None, model: Path | None = None
) -> BaseClient:
    """A client of a session of its own: credentials are looked up now, not reused. `model`,
    a folder laid out as botocore's data/<service>/<API version>, is read instead of the
    SDK's own. The SDK's settings of a newer botocore than the project's Airflow may pin are
    kept too (_no_host_prefix)."""
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    session = botocore.session.Session()
    # Timestamps stay text: nothing here reads them, and parsing the LastModified of every
    # listed key would cost a deploy more time than the listing request itself.
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    try:
        models = [str(model.parents[1])] if model else []
        data_path = (session.get_config_variable("data_path") or "").split(os.pathsep)
        models += [os.path.expanduser(os.path.expandvars(p)) for p in data_path if p]
        session.register_component("data_loader", _sdk_models(tuple(models)))
        if _no_host_prefix(session):
            config = (config or Config()).merge(Config(inject_host_prefix=False))
        return session.create_client(
            service,
            region_name=region or None,
            api_version=model.name if model else None,
            config=config,
        )
    except ProfileNotFound:
        raise BucketError(
            f"AWS_PROFILE={os.environ.get('AWS_PROFILE', '')!r} is not a profile in your AWS"
            " config: `aws configure list-profiles` lists them, `aws configure sso` adds one",
            permanent=True,
        ) from None
    except (BotoCoreError, ValueError) as error:
        # ValueError: a malformed AWS_ENDPOINT_URL, which botocore checks with no class of its own.
        raise BucketError(f"the AWS SDK cannot start: {error}", permanent=True) from None


def _no_host_prefix(session: botocore.session.Session) -> bool:
    """The SDK's own setting, AWS_DISABLE_HOST_PREFIX_INJECTION or the profile's
    disable_host_prefix_injection, which the botocore MWAA pins for Airflow 2.10 does not
    read yet: an endpoint of one's own (make mwaa-local) needs it."""
    profile = session.get_scoped_config()
    setting = os.environ.get("AWS_DISABLE_HOST_PREFIX_INJECTION") or profile.get(
        "disable_host_prefix_injection", ""
    )
    return str(setting).lower() == "true"


@functools.cache
def _sdk_models(models: tuple[str, ...]) -> Loader:
    """The SDK's service models and endpoint rules, after those in the folders `models`,
    read once per process: a new session would read them again for each client, most of the
    cost of opening one. (It stands in for the session's own loader, which reads
    AWS_DATA_PATH's folders: the caller passes them in `models`.)"""
    import botocore.loaders

    class ServiceFoldersLoader(botocore.loaders.Loader):
        def list_available_services(self, type_name: str) -> list[str]:  # noqa: ARG002
            # botocore checks a name against its service folders before it loads a model,
            # and lists each folder to see it holds a model of that kind: hundreds of
            # listings. Every folder is a service's (a model missing still fails its load),
            # and credentials that ask AWS first (STS, SSO) load theirs through here too.
            names = set()
            for folder in self.search_paths:
                with suppress(OSError):
                    names.update(entry.name for entry in os.scandir(folder) if entry.is_dir())
            return sorted(names)

    return ServiceFoldersLoader(extra_search_paths=list(models))


def _keep_conditions(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """A call's CONDITIONS, taken out of its parameters (the SDK checks those against its
    model) into its context, for _send_conditions."""
    context[CONDITIONS] = params.pop(CONDITIONS, {})


def _send_conditions(request: AWSRequest, **_: Any) -> None:
    """The CONDITIONS of the call, as headers of each request made for it (retries too)."""
    for name, value in request.context.get(CONDITIONS, {}).items():
        del request.headers[name]
        request.headers[name] = value


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


def _code(error: Exception) -> str:
    """S3's error code (`NoSuchBucket`, `AccessDenied`, ...), or "" when S3 gave none."""
    from botocore.exceptions import ClientError

    return error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
