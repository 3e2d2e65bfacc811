"""The template's test output holds what a failure needs, no line per request of the S3
endpoints the tests deploy to."""

from __future__ import annotations

import logging

import boto3
import pytest


def test_the_s3_endpoint_fixture_logs_no_line_a_request(
    s3_endpoint: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint["AWS_ENDPOINT_URL"],
        region_name=s3_endpoint["AWS_REGION"],
        aws_access_key_id=s3_endpoint["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_endpoint["AWS_SECRET_ACCESS_KEY"],
    )
    s3.list_buckets()

    assert [r.getMessage() for r in caplog.records if r.name == "werkzeug"] == []
    assert capfd.readouterr() == ("", "")
