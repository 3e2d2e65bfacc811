"""The MWAA environment: asking its Airflow, which instance-wide files it runs, and updating
it to new ones.

Airflow's REST API is reached through MWAA's InvokeRestApi (`Instance`), by the parse gate
and for DEV's pool; every question is answered, or given up, within the deploy's bound
(PARSE_GATE_SECONDS), and a question that cannot be asked is one line saying why.

Only the files whose content differs from what the environment runs are uploaded, and one
UpdateEnvironment call applies exactly their new object versions; the update is followed
until the environment is AVAILABLE again, or its failure is reported with where to look.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from mwaa_deploy.exceptions import MwaaError, OwnershipError, UpdateError
from mwaa_deploy.instance_files import INSTANCE_KEYS, PLUGINS, REQUIREMENTS, STARTUP
from mwaa_deploy.s3_bucket import CONNECT_TIMEOUT_SECONDS, aws_client

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from mwaa_deploy.buckets import Bucket
    from mwaa_deploy.config import Settings
    from mwaa_deploy.s3_bucket import S3Bucket

# The UpdateEnvironment fields that name each file and its object version.
FIELDS = {REQUIREMENTS: "Requirements", PLUGINS: "Plugins", STARTUP: "StartupScript"}
# Statuses an update passes through before it settles.
SETTLING = {"UPDATING", "ROLLING_BACK", "PENDING", "CREATING_SNAPSHOT"}
POLL_SECONDS = 30
PROGRESS_EVERY = 300  # seconds between "still UPDATING" lines
GIVE_UP_AFTER = 3600  # seconds; updates take 10-30 minutes
# A request that gets no answer for this long is retried, then given up, as S3's are
# (buckets.py); Airflow behind MWAA may take some seconds for a page of 100 DAGs.
READ_TIMEOUT_SECONDS = 20
STILL_WAITING_EVERY = 30.0  # seconds between "still waiting for an answer" lines
# An instance that answers at all answers one small question well within this.
FIRST_QUESTION_SECONDS = 30.0
# How much of an answer that is not Airflow's a message shows.
SHOWN_CHARACTERS = 120


def client(settings: Settings) -> BaseClient:
    """The MWAA API client, whose requests time out and are retried like S3's."""
    from botocore.config import Config

    return aws_client(
        "mwaa",
        settings.aws_region,
        Config(
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            retries={"mode": "standard"},
        ),
    )


def asks(settings: Settings) -> bool:
    """Whether deploys to S3 ask the MWAA environment anything: with one named and a bound
    above 0 (PARSE_GATE_SECONDS=0 deploys without asking it)."""
    return bool(settings.s3_bucket and settings.mwaa_environment and settings.parse_gate_seconds)


def check_can_ask(settings: Settings, owner: str) -> None:
    """Before a deploy of `owner` that will ask the environment (the parse gate, DEV's pool),
    ask it one small question, so that an environment that cannot be asked stops the deploy
    before it uploads anything."""
    if not asks(settings):
        return
    instance = Instance(settings, min(settings.parse_gate_seconds, FIRST_QUESTION_SECONDS))
    try:
        # Any answer of Airflow's will do: MWAA let the deploy role in, and Airflow is up.
        instance.call("GET", "/version")
    except CannotAsk as error:
        raise MwaaError(
            f"Cannot ask the MWAA environment {instance.name} before deploying {owner}:"
            f" {error}. Nothing was deployed; PARSE_GATE_SECONDS=0 deploys without asking"
            " the environment."
        ) from None


class CannotAsk(Exception):
    """No answer of Airflow's came: the message says why and what to do. `passing`: asking
    again later may get one (a timeout, MWAA's 5xx)."""

    def __init__(self, reason: str, passing: bool = False) -> None:
        super().__init__(reason)
        self.passing = passing


class Instance:
    """Airflow's REST API on one MWAA environment, through MWAA's InvokeRestApi, within
    `seconds` from now: past that, no question waits for its answer."""

    def __init__(self, settings: Settings, seconds: float) -> None:
        self.mwaa = client(settings)
        self.name = settings.mwaa_environment
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        # The time by AWS's clock of the last answer (its Date header), not this machine's.
        self.answered_at: datetime | None = None

    def call(
        self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        """Airflow's status and answer; CannotAsk where none came."""
        request: dict[str, Any] = {"Name": self.name, "Path": path, "Method": method}
        if query:
            request["QueryParameters"] = query
        if body is not None:
            request["Body"] = body
        try:
            answer = self._within_deadline(request)
        except ClientError as error:
            # MWAA turns Airflow's 4xx and 5xx into errors that carry Airflow's answer.
            if "RestApiStatusCode" in error.response:
                self._answered(error.response)
                return error.response["RestApiStatusCode"], error.response.get("RestApiResponse")
            raise self._cannot(error) from None
        except BotoCoreError as error:
            raise self._cannot(error) from None
        status = answer.get("RestApiStatusCode")
        if not isinstance(status, int) or "RestApiResponse" not in answer:
            # The SDK drops a body it cannot read as MWAA's: what is left to say is its kind.
            http = answer["ResponseMetadata"]
            kind = http.get("HTTPHeaders", {}).get("content-type", "no content type")
            raise CannotAsk(
                f"{self.name} answered {method} {path} with what is not MWAA's answer"
                f" (HTTP {http.get('HTTPStatusCode')}, {kind})"
            )
        self._answered(answer)
        return status, answer["RestApiResponse"]

    def _within_deadline(self, request: dict[str, Any]) -> dict[str, Any]:
        """MWAA's answer, asked in a thread of its own that is left behind, not waited for,
        once the deadline passes; meanwhile, a line now and then says what it waits for."""
        if time.monotonic() >= self.deadline:
            raise self._too_late()
        outcome: list[Any] = []
        done = threading.Event()

        def ask() -> None:
            try:
                outcome.append(self.mwaa.invoke_rest_api(**request))
            except Exception as error:  # raised again where the caller waits
                outcome.append(error)
            done.set()

        threading.Thread(target=ask, daemon=True).start()
        started = time.monotonic()
        while not done.wait(min(STILL_WAITING_EVERY, max(0.0, self.deadline - time.monotonic()))):
            if time.monotonic() >= self.deadline:
                raise self._too_late()
            print(
                f"  still waiting for an answer from {self.name}"
                f" ({request['Method']} {request['Path']}) after"
                f" {time.monotonic() - started:.0f} s",
                flush=True,
            )
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return outcome[0]

    def _answered(self, answer: dict[str, Any]) -> None:
        """Note the time of an answer by AWS's clock: its Date header counts whole seconds,
        so the second after it is surely not earlier."""
        date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        now = parsedate_to_datetime(date) if date else datetime.now(UTC)
        self.answered_at = now + timedelta(seconds=1)

    def _too_late(self) -> CannotAsk:
        return CannotAsk(
            f"{_where(self.mwaa)} did not answer within {self.seconds:.0f} s: try again later"
            + (", or check AWS_ENDPOINT_URL_MWAA" if _is_own(_where(self.mwaa)) else "")
        )

    def _cannot(self, error: Exception) -> CannotAsk:
        return CannotAsk(*_why(error, self.mwaa, self.name))


def shown(answer: Any) -> str:
    """An answer as a message shows it: JSON, cut short."""
    text = json.dumps(answer, default=str)
    return text if len(text) <= SHOWN_CHARACTERS else f"{text[:SHOWN_CHARACTERS]}..."


def changed_files(
    files: dict[str, bytes], running: Callable[[str], bytes | None]
) -> dict[str, bytes]:
    """The files whose content differs from what the environment runs (`running(key)`)."""
    return {key: body for key, body in files.items() if running(_instance_key(key)) != body}


def write_local(bucket: Bucket, files: dict[str, bytes]) -> None:
    """Put the files into a bucket with no MWAA environment behind it (the local bucket)."""
    for key, body in files.items():
        bucket.put(_instance_key(key), body)


def running_versions(mwaa: BaseClient, name: str, bucket_name: str) -> dict[str, str]:
    """The object version of each instance-wide file the environment runs now.

    Refuses, before anything is uploaded, unless the environment is AVAILABLE (an update
    cannot start during another) and reads `bucket_name` (else the files would go to one
    bucket and the update to an environment that reads another).
    """
    environment = _describe(mwaa, name, "cannot read the MWAA environment")
    if environment["Status"] != "AVAILABLE":
        raise UpdateError(
            f"the MWAA environment {name} is {environment['Status']}; run this again once it"
            " is AVAILABLE"
        )
    reads = environment.get("SourceBucketArn", "").rpartition(":")[2]
    if reads != bucket_name:
        raise UpdateError(
            f"the MWAA environment {name} reads s3://{reads}, not s3://{bucket_name}:"
            " check MWAA_ENVIRONMENT and S3_BUCKET"
        )
    return {
        key: environment[f"{field}S3ObjectVersion"]
        for key, field in FIELDS.items()
        if environment.get(f"{field}S3Path") == key and environment.get(f"{field}S3ObjectVersion")
    }


def upload(bucket: S3Bucket, files: dict[str, bytes]) -> dict[str, str]:
    """Upload each file; return the object version S3 gave it."""
    return {key: bucket.put(_instance_key(key), body).version for key, body in files.items()}


def update_environment(mwaa: BaseClient, name: str, versions: dict[str, str]) -> None:
    """Point the environment at the new object versions and follow the update to its end.

    Workers are replaced gracefully: tasks already running, of DEV and PROD, finish first.
    """
    request = {"Name": name, "WorkerReplacementStrategy": "GRACEFUL"}
    for key, version in versions.items():
        request[f"{FIELDS[key]}S3Path"] = key
        request[f"{FIELDS[key]}S3ObjectVersion"] = version
    try:
        mwaa.update_environment(**request)
    except (BotoCoreError, ClientError) as error:
        raise UpdateError(f"MWAA refused to update {name}: {error}") from error
    print(f"Updating {name} with {', '.join(versions)}; this takes 10-30 minutes.")
    environment = _settled(mwaa, name)
    last = environment.get("LastUpdate", {})
    if environment["Status"] == "AVAILABLE" and last.get("Status") != "FAILED":
        print(f"{name} is AVAILABLE, running the new {', '.join(versions)}.")
        return
    error = last.get("Error", {})
    raise UpdateError(
        f"the update of {name} failed ({error.get('ErrorCode', environment['Status'])}:"
        f" {error.get('ErrorMessage', 'no message')}); MWAA rolled back to the previous files."
        f" Look in CloudWatch, log groups airflow-{name}-Worker and airflow-{name}-Scheduler"
        " (the requirements_install_* streams, and the startup script's), and on the"
        " environment's page in the MWAA console"
    )


def _settled(mwaa: BaseClient, name: str) -> dict[str, Any]:
    """The environment once its update has settled, saying how it goes now and then."""
    started = time.monotonic()
    status, last_said = "UPDATING", started
    while status in SETTLING:
        time.sleep(POLL_SECONDS)
        environment = _describe(mwaa, name, "the update started, but cannot follow it")
        now = time.monotonic()
        minutes = (now - started) / 60
        if environment["Status"] != status or now - last_said >= PROGRESS_EVERY:
            status, last_said = environment["Status"], now
            print(f"  {status} after {minutes:.0f} min")
        if status in SETTLING and now - started >= GIVE_UP_AFTER:
            raise UpdateError(
                f"{name} is still {status} after {minutes:.0f} minutes; follow it in the"
                " MWAA console, and do not start another update until it is AVAILABLE"
            )
    return environment


def _describe(mwaa: BaseClient, name: str, doing: str) -> dict[str, Any]:
    try:
        return mwaa.get_environment(Name=name)["Environment"]
    except (BotoCoreError, ClientError) as error:
        raise UpdateError(f"{doing} {name}: {error}") from error


def _why(error: Exception, mwaa: BaseClient, name: str) -> tuple[str, bool]:
    """Why MWAA gave no answer, and what to do, in a few words; and whether asking again
    later may get one."""
    endpoint = _where(mwaa)
    if isinstance(error, EndpointConnectionError):
        asked = urlsplit(error.kwargs.get("endpoint_url", "")).netloc
        cause = _root_cause(error.kwargs.get("error"))
        if asked != urlsplit(endpoint).netloc and _is_own(endpoint):
            return (
                f"the AWS SDK asks {asked}, MWAA's host prefix before the host of"
                " AWS_ENDPOINT_URL_MWAA, and cannot resolve it: set"
                " AWS_DISABLE_HOST_PREFIX_INJECTION=true for an endpoint of your own",
                False,
            )
        check = "check AWS_ENDPOINT_URL_MWAA" if _is_own(endpoint) else "check your network"
        if isinstance(cause, ConnectionRefusedError):
            return f"nothing answers at {endpoint} (connection refused): {check}", True
        if isinstance(cause, socket.gaierror):
            return f"{asked} cannot be resolved: {check} and AWS_REGION", True
        return f"{endpoint} cannot be reached ({cause or error}): {check}", True
    if isinstance(error, (ConnectTimeoutError, ReadTimeoutError)):
        return f"{endpoint} did not answer in time, nor when asked again: try again later", True
    if isinstance(error, NoCredentialsError):
        return (
            "no AWS credentials found: set AWS_PROFILE (after `aws sso login`), or"
            " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            False,
        )
    if not isinstance(error, ClientError):
        return str(error), True  # the SDK's other errors are the network's, and pass
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    said = f"{code}: {message}" if message else code
    if code == "ResourceNotFoundException":
        return (
            f"there is no MWAA environment {name} in {mwaa.meta.region_name}: check"
            " MWAA_ENVIRONMENT (or mwaa_environment) and AWS_REGION",
            False,
        )
    if status == 403 or code in ("AccessDeniedException", "UnrecognizedClientException"):
        return (
            f"access denied ({said}): the deploy role needs airflow:InvokeRestApi on the"
            " environment (iam/deploy-roles.yaml)",
            False,
        )
    if status >= 500:
        return (
            f"MWAA answered {status} ({said}), a fault on its side: try again in a few minutes",
            True,
        )
    return f"MWAA refused the request ({said})", False


def _root_cause(error: BaseException | None) -> BaseException | None:
    """The error of the operating system's that an HTTP library's error wraps."""
    while error is not None and not isinstance(error, OSError):
        error = error.__cause__ or error.__context__
    return error


def _where(mwaa: BaseClient) -> str:
    return mwaa.meta.endpoint_url


def _is_own(endpoint: str) -> bool:
    """Whether the endpoint is not AWS's (AWS_ENDPOINT_URL_MWAA names another)."""
    return not (urlsplit(endpoint).hostname or "").endswith(".amazonaws.com")


def _instance_key(key: str) -> str:
    if key not in INSTANCE_KEYS:
        raise OwnershipError(f"refusing to touch {key!r}: instance-wide files are {INSTANCE_KEYS}")
    return key
