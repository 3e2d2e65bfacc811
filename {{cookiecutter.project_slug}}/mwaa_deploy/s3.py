"""The S3 bucket MWAA reads, through boto3 (endpoint, profile and keys from the AWS SDK)."""

from __future__ import annotations

import hashlib

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mwaa_deploy.sync import BucketError


class S3Bucket:
    def __init__(self, name: str, region: str) -> None:
        self.name = name
        self.description = f"s3://{name}"
        self.client = boto3.client("s3", region_name=region or None)

    def list(self, prefix: str) -> dict[str, str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix
        )
        try:
            return {
                item["Key"]: item["ETag"].strip('"')
                for page in pages
                for item in page.get("Contents", [])
            }
        except (BotoCoreError, ClientError) as error:
            raise BucketError(f"cannot list s3://{self.name}/{prefix}*: {error}") from error

    def etag_of(self, body: bytes) -> str:
        # The ETag of a single-part upload without SSE-KMS is the MD5 of the body.
        return hashlib.md5(body, usedforsecurity=False).hexdigest()

    def put(self, key: str, body: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.name, Key=key, Body=body)
        except (BotoCoreError, ClientError) as error:
            raise BucketError(f"cannot upload s3://{self.name}/{key}: {error}") from error

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.name, Delete={"Objects": batch, "Quiet": True}
                )
            except (BotoCoreError, ClientError) as error:
                raise BucketError(f"cannot delete from s3://{self.name}: {error}") from error
            if answer.get("Errors"):
                failed = ", ".join(f"{e['Key']} ({e['Code']})" for e in answer["Errors"])
                raise BucketError(f"s3://{self.name} refused to delete {failed}")
