"""The S3 bucket MWAA reads, through the AWS SDK (which finds the endpoint, profile and keys)."""

from __future__ import annotations

import hashlib

import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from mwaa_deploy.sync import UPLOAD_THREADS, BucketError


class S3Bucket:
    def __init__(self, name: str, region: str) -> None:
        self.name = name
        self.description = f"s3://{name}"
        self.client = aws_client("s3", region, Config(max_pool_connections=UPLOAD_THREADS))

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
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.name, Delete={"Objects": batch, "Quiet": True}
                )
            except (BotoCoreError, ClientError) as error:
                raise self._error("cannot delete from", self.name, error) from error
            if answer.get("Errors"):
                failed = ", ".join(f"{e['Key']} ({e['Code']})" for e in answer["Errors"])
                raise BucketError(f"s3://{self.name} refused to delete {failed}")

    def _error(self, doing: str, what: str, error: Exception) -> BucketError:
        """One line that says what failed and what to do about it, not a traceback."""
        code = _code(error)
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
        return BucketError(f"{doing} s3://{what}: {hint}")


def aws_client(service: str, region: str, config: Config | None = None) -> BaseClient:
    """A client of a session of its own: credentials are looked up now, not reused."""
    session = botocore.session.Session()
    # Timestamps stay text: nothing here reads them, and parsing the LastModified of every
    # listed key would cost a deploy more time than the listing request itself.
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return session.create_client(service, region_name=region or None, config=config)


def _code(error: Exception) -> str:
    """S3's error code (`NoSuchBucket`, `AccessDenied`, ...), or "" when S3 gave none."""
    return error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
