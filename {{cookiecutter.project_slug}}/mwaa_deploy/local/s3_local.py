"""s3-local: an S3 endpoint on this machine, to try the S3 deploys before there is AWS.

It is moto's S3 server, the same one the tests deploy to: it speaks S3's API on loopback,
keeps what it is sent in memory until it stops, and accepts any key id and secret. The
deploys reach it as they reach AWS, through the AWS SDK's standard `AWS_ENDPOINT_URL`.
A request for MWAA's API (a deploy with MWAA_ENVIRONMENT still set) is refused, saying
what to do instead.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from mwaa_deploy.config import Settings
from mwaa_deploy.exceptions import LocalS3Error
from mwaa_deploy.local.airflow_local import (
    HOST,
    port_in_use,
    say,
    serve_until_ctrl_c,
    stop_on_ctrl_c,
)

# A bucket name for projects that have none yet; any valid name would do.
STAND_IN_BUCKET = "local-mwaa-bucket"
# moto accepts any credentials; these make it plain that they are not AWS's.
KEY_ID, SECRET = "local", "local"
# The service name the AWS SDK signs MWAA's requests with.
MWAA_SIGNING_NAME = "airflow"
NOT_MWAA = (
    "this endpoint is make s3-local's, which serves S3 only, not MWAA's API: point"
    " AWS_ENDPOINT_URL_MWAA at make mwaa-local (docs/local-airflow.md), or set MWAA_ENVIRONMENT="
    " where no environment is wanted (a deploy then waits for no parse)"
)


def run(settings: Settings, port: int) -> int:
    """Serve S3 on `port` with the project's bucket, versioned as MWAA needs, until Ctrl-C."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    stop_on_ctrl_c()
    # One log line a request would bury the lines that say what to do.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if port_in_use(port):
        raise LocalS3Error(
            f"port {port} is in use, perhaps by another s3-local: stop it,"
            f" or run `make s3-local PORT={port + 1}`"
        )
    url = f"http://{HOST}:{port}"
    moto = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        HOST, port, _s3_only(moto), threaded=True, request_handler=MotoRequestHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        bucket = settings.s3_bucket or STAND_IN_BUCKET
        _create_versioned_bucket(url, bucket, settings.aws_region)
        say(f"An S3 endpoint is running at {url}, with the versioned bucket {bucket}.")
        say("Point the deploys at it, in another terminal:")
        # No MWAA environment reads this bucket, so the deploys wait for none to parse
        # them (make mwaa-local names one).
        say(
            f"  export AWS_ENDPOINT_URL={url} AWS_ACCESS_KEY_ID={KEY_ID}"
            f" AWS_SECRET_ACCESS_KEY={SECRET} S3_BUCKET={bucket} MWAA_ENVIRONMENT="
        )
        say("  make plan-dev deploy-dev")
        say("What it holds lives in memory and ends with it. Press Ctrl-C to stop it.")
        serve_until_ctrl_c("S3 endpoint")
    finally:
        server.shutdown()
    return 0


def _s3_only(moto: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """moto's server, which answers a request for MWAA's API, or one it cannot read (an
    odd Authorization header), with a 500 and a traceback: such a request is refused
    instead, with one line here and one in the answer, in the error shape of MWAA's API,
    which the deploy then reports."""

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if _signed_for(environ.get("HTTP_AUTHORIZATION", "")).lower() == MWAA_SIGNING_NAME:
            say("Refused a request for MWAA's API: this endpoint serves S3 only.")
            return _refusal(start_response, "NotS3", NOT_MWAA)
        try:
            return moto(environ, start_response)
        except Exception as error:  # noqa: BLE001 - whatever moto raises, one line
            unread = f"s3-local cannot read this request ({type(error).__name__}: {error})"
            say(f"Refused a request: {unread}")
            return _refusal(start_response, "InvalidRequest", unread, sys.exc_info())

    return serve


def _refusal(
    start_response: Callable[..., Any], code: str, message: str, exc_info: Any = None
) -> Iterable[bytes]:
    """A 400 in the error shape of AWS's JSON APIs; `exc_info` where moto raised, which lets
    the answer replace one moto may have begun."""
    body = json.dumps({"message": message}).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("x-amzn-ErrorType", code),
    ]
    start_response("400 Bad Request", headers, exc_info)
    return [body]


def _signed_for(authorization: str) -> str:
    """The service a SigV4 signature names (Credential=<key>/<date>/<region>/<service>/...),
    or "" for a request it does not sign."""
    scope = authorization.partition("Credential=")[2].split(",")[0].split("/")
    return scope[3] if len(scope) > 3 else ""


def _create_versioned_bucket(url: str, bucket: str, region: str) -> None:
    import botocore.session

    client = botocore.session.Session().create_client(
        "s3",
        region_name=region,
        endpoint_url=url,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )
    # us-east-1 is S3's default location, which it refuses to be named.
    where = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    client.create_bucket(Bucket=bucket, **where)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
