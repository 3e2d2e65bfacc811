"""The S3 endpoint the deploy package's tests deploy to (s3_endpoint.py) serves without a
line of output a request: a failing test shows what failed, not every request before it."""

from __future__ import annotations

import logging

import boto3
import pytest

from tests.deploy_tool.s3_endpoint import S3Endpoint


def test_the_s3_endpoint_logs_no_line_a_request(
    s3_endpoint: S3Endpoint,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint.url,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.list_buckets()

    assert [r.getMessage() for r in caplog.records if r.name == "werkzeug"] == []
    assert capfd.readouterr() == ("", "")
