"""mwaa-local: MWAA's control plane on this machine, in front of a real Airflow.

It answers, in MWAA's own shapes, the MWAA API calls this project makes, for the standard
AWS SDK client pointed at it (`AWS_ENDPOINT_URL_MWAA`, and `AWS_DISABLE_HOST_PREFIX_INJECTION`
so that the SDK calls the address as given, not `env.<address>` as for AWS):

- InvokeRestApi: forwarded to the Airflow's REST API (v1 on Airflow 2, v2 on Airflow 3)
  as MWAA does, logged in as its admin (airflow_api.py); Airflow's answer comes back as
  MWAA wraps it.
- GetEnvironment and UpdateEnvironment, for one environment that reads one bucket
  (mwaa_local_env.py): an update is taken and settles by the second GetEnvironment after
  it. It installs nothing: that part of MWAA (pip, plugins, the startup script) is not here.

And as MWAA does, it copies the bucket's `dags/` into the Airflow's DAGs folder, every
COPY_SECONDS, deleting what the bucket no longer holds: a deploy to S3 reaches the Airflow.
Its answers say so (live_instance.COPY_SECONDS_HEADER), so the parse gate waits for a copy
that recent, not MWAA's 30 s.
That folder is its own (`dags_folder`), never the local bucket, which holds deploys of its
own; `make airflow-local MWAA_LOCAL=1` reads it. Only a key that names a file inside it is
copied: the bucket is not this machine's to write anywhere else.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mwaa_deploy.config import Settings, shown
from mwaa_deploy.exceptions import LocalMwaaError
from mwaa_deploy.instance.live_instance import COPY_SECONDS_HEADER
from mwaa_deploy.local.airflow_api import AirflowApi
from mwaa_deploy.local.airflow_local import (
    HOST,
    admin_password,
    dags_folder,
    health_url,
    port_in_use,
    say,
    serve_until_ctrl_c,
    stop_on_ctrl_c,
)
from mwaa_deploy.local.mwaa_local_env import Environment

COPY_SECONDS = 2.0
# The environment's name when the project configures none.
STAND_IN_NAME = "local-environment"
# (method, first part of the path) -> the MWAA operation.
OPERATIONS = {
    ("POST", "restapi"): "InvokeRestApi",
    ("GET", "environments"): "GetEnvironment",
    ("PATCH", "environments"): "UpdateEnvironment",
}


class MwaaLocal:
    """The stand-in, serving on HOST:`port` (0: a free port) until `stop()`."""

    def __init__(
        self,
        environment: Environment,
        airflow: AirflowApi | None,
        dags_folder: Path | None,
        port: int = 0,
    ) -> None:
        self.environment, self.airflow, self.dags_folder = environment, airflow, dags_folder
        self._server = ThreadingHTTPServer((HOST, port), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://{HOST}:{self._server.server_address[1]}"
        self._stopping = threading.Event()
        self._copied: dict[str, str] = {}  # key -> the ETag of the copy in the DAGs folder
        self._skipped: set[str] = set()  # keys said once not to name a file in the folder
        self.calls: list[str] = []  # the operations served, in order
        # Checks for stop() every 0.05 s, not socketserver's 0.5 s: Ctrl-C ends it at once.
        serving = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._threads = [serving]
        if dags_folder is not None:
            from mwaa_deploy.bucket.s3_bucket import aws_client

            # Made here, not in the copying thread: the client takes this moment's AWS
            # settings (the endpoint), whatever the environment becomes later.
            s3 = aws_client("s3", environment.region)
            self._threads.append(threading.Thread(target=self._copy_dags, args=(s3,), daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join()

    def invoke_rest_api(self, request: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
        """MWAA's status, answer and error type (empty: none) for an InvokeRestApi request."""
        if self.airflow is None:
            return 400, {"message": "no Airflow behind this stand-in"}, "ValidationException"
        try:
            status, answer = self.airflow.call(
                request["Method"],
                request["Path"],
                request.get("QueryParameters"),
                request.get("Body"),
            )
        except (OSError, LocalMwaaError) as error:
            message = f"Airflow did not answer: {error}"
            return 500, {"message": message}, "InternalServerException"
        wrapped = {"RestApiStatusCode": status, "RestApiResponse": answer}
        if status < 400:
            return 200, wrapped, ""
        # As MWAA: Airflow's 4xx and 5xx become these two errors, with Airflow's answer.
        kind = "RestApiClientException" if status < 500 else "RestApiServerException"
        return 400, wrapped | {"message": f"Airflow answered {status}"}, kind

    def _copy_dags(self, s3: Any) -> None:
        """Copy the bucket's dags/ into the DAGs folder now and then, as MWAA does."""
        from botocore.exceptions import BotoCoreError, ClientError

        said = ""
        while not self._stopping.is_set():
            try:
                self._copy_once(s3)
                said = ""
            except (BotoCoreError, ClientError, OSError) as error:
                if str(error) != said:  # once, not every round
                    said = str(error)
                    say(f"Cannot copy s3://{self.environment.bucket}/dags/: {error}")
            self._stopping.wait(COPY_SECONDS)

    def _copy_once(self, s3: Any) -> None:
        assert self.dags_folder is not None
        bucket = self.environment.bucket
        listed: dict[str, str] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="dags/"):
            listed |= {o["Key"]: o["ETag"] for o in page.get("Contents", []) if o["Key"][-1] != "/"}
        for key, etag in listed.items():
            target = self._target(key)
            if target is None or self._copied.get(key) == etag and target.exists():
                continue
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            target.parent.mkdir(parents=True, exist_ok=True)
            # Written whole, then renamed: Airflow never reads half a file.
            partial = target.with_name(f".{target.name}.copying")
            partial.write_bytes(body)
            partial.replace(target)
            self._copied[key] = etag
        for path in [p for p in self.dags_folder.rglob("*") if p.is_file()]:
            if f"dags/{path.relative_to(self.dags_folder).as_posix()}" not in listed:
                path.unlink()
                self._copied.pop(f"dags/{path.relative_to(self.dags_folder).as_posix()}", None)

    def _target(self, key: str) -> Path | None:
        """Where the key's copy goes: a file inside the DAGs folder, or None (said once)
        for a key S3 holds as text but that names no such file, as `..` would not."""
        assert self.dags_folder is not None
        parts = key.removeprefix("dags/").split("/")
        if not {"", ".", ".."} & set(parts):
            return self.dags_folder.joinpath(*parts)
        if key not in self._skipped:
            self._skipped.add(key)
            say(
                f"Skipped s3://{self.environment.bucket}/{key}: not a plain path of a file"
                f" inside {shown(self.dags_folder)}/ (it holds a '..', '.' or empty part);"
                " delete the key"
            )
        return None


def run(settings: Settings, port: int, airflow_port: int) -> int:
    """Serve MWAA's API on `port` in front of airflow-local on `airflow_port`, until Ctrl-C."""
    from mwaa_deploy.local.s3_local import STAND_IN_BUCKET

    stop_on_ctrl_c()
    if port_in_use(port):
        raise LocalMwaaError(
            f"port {port} is in use, perhaps by another mwaa-local: stop it,"
            f" or run `make mwaa-local PORT={port + 1}`"
        )
    password = admin_password(settings)
    try:
        with urllib.request.urlopen(health_url(settings, airflow_port), timeout=5):
            pass
    except (urllib.error.URLError, OSError):
        password = None
    if password is None:
        start = "make airflow-local MWAA_LOCAL=1" + (
            "" if airflow_port == 8080 else f" PORT={airflow_port}"
        )
        raise LocalMwaaError(
            f"no Airflow of this project answers on port {airflow_port}: start `{start}`"
            " first (in another terminal), or name its port with AIRFLOW_PORT=..."
        )
    environment = Environment(
        name=settings.mwaa_environment or STAND_IN_NAME,
        airflow_version=settings.airflow_version,
        bucket=settings.s3_bucket or STAND_IN_BUCKET,
        region=settings.aws_region or "us-east-1",
    )
    airflow = AirflowApi(f"http://{HOST}:{airflow_port}", settings.airflow_version, password)
    dags = dags_folder(settings, mwaa_local=True)
    dags.mkdir(parents=True, exist_ok=True)
    stand_in = MwaaLocal(environment, airflow, dags, port)
    try:
        say(f"MWAA's API for the environment {environment.name} is at {stand_in.url},")
        say(f"in front of the Airflow at http://{HOST}:{airflow_port}.")
        say(
            f"It copies s3://{environment.bucket}/dags/ into {shown(dags)}/ every"
            f" {COPY_SECONDS:.0f} s, as MWAA copies its bucket; the Airflow reads that folder"
            " when started as `make airflow-local MWAA_LOCAL=1`."
        )
        say("Point the deploys at it, in another terminal (with s3-local's variables):")
        say(
            f"  export AWS_ENDPOINT_URL_MWAA={stand_in.url} AWS_DISABLE_HOST_PREFIX_INJECTION=true"
            f" MWAA_ENVIRONMENT={environment.name}"
        )
        say("  make deploy-dev    # waits for this Airflow to parse it (the parse gate)")
        say("Press Ctrl-C to stop it.")
        serve_until_ctrl_c("MWAA stand-in")
    finally:
        stand_in.stop()
    return 0


def _handler(stand_in: MwaaLocal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """MWAA's REST-JSON API: the operation is the method and the path."""

        def do_GET(self) -> None:
            self._serve("GET")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            kind, _, name = urllib.parse.unquote(self.path).lstrip("/").partition("/")
            environment = stand_in.environment
            operation = OPERATIONS.get((method, kind), f"{method} {self.path}")
            stand_in.calls.append(operation)
            if "/airflow/aws4_request" not in self.headers.get("Authorization", ""):
                # As AWS: only requests the SDK signed for MWAA ("airflow") get in.
                self._refuse(403, "AccessDeniedException", "the request is not signed for airflow")
            elif name != environment.name:
                self._refuse(404, "ResourceNotFoundException", f"no environment {name}")
            elif operation == "InvokeRestApi":
                self._answer(*stand_in.invoke_rest_api(request))
            elif operation == "GetEnvironment":
                self._answer(200, {"Environment": environment.describe()})
            elif operation == "UpdateEnvironment":
                refused = environment.update(request | {"Name": name})
                if refused:
                    self._refuse(400, "ValidationException", refused)
                else:
                    self._answer(200, {"Arn": environment.arn})
            else:
                self._refuse(404, "UnknownOperationException", f"{method} {self.path}")

        def _refuse(self, status: int, error_type: str, message: str) -> None:
            self._answer(status, {"message": message}, error_type)

        def _answer(self, status: int, document: dict[str, Any], error_type: str = "") -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header(COPY_SECONDS_HEADER, str(COPY_SECONDS))
            if error_type:
                self.send_header("x-amzn-ErrorType", error_type)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            """Quiet: one line a request would bury the lines that say what to do."""

    return Handler
