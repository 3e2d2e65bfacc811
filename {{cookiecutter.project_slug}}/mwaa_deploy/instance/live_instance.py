"""The live instance: Airflow's REST API on the MWAA environment, asked through MWAA's
InvokeRestApi (`Instance`), by the parse gate and for DEV's pool.

Every question is answered, or given up, within the deploy's bound (PARSE_GATE_SECONDS),
and a question that cannot be asked is one line saying why and what to do.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
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

from mwaa_deploy.bucket.s3_bucket import CONNECT_TIMEOUT_SECONDS, aws_client
from mwaa_deploy.exceptions import MwaaError

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from mwaa_deploy.config import Settings

# A request that gets no answer for this long is retried, then given up, as S3's are
# (buckets.py); Airflow behind MWAA may take some seconds for a page of 100 DAGs.
READ_TIMEOUT_SECONDS = 20
STILL_WAITING_EVERY = 30.0  # seconds between "still waiting for an answer" lines
# An instance that answers at all answers one small question well within this.
FIRST_QUESTION_SECONDS = 30.0
# How much of an answer that is not Airflow's a message shows.
SHOWN_CHARACTERS = 120
# Sent by make mwaa-local, never by MWAA: how often it copies the bucket into its Airflow's
# DAGs folder, which the parse gate then need not take for MWAA's 30 s.
COPY_SECONDS_HEADER = "x-mwaa-local-copy-seconds"
MOST_COPY_SECONDS = 3600.0  # a larger (or no number) is not taken


# MWAA's API as the newest Airflow's SDK ships it (botocore 1.43.56): the SDK that MWAA pins
# for Airflow 2.10 predates InvokeRestApi, through which every question here is asked.
SDK_MODEL = Path(__file__).parent / "sdk_models" / "mwaa" / "2020-07-01"


def client(settings: Settings) -> BaseClient:
    """The MWAA API client, whose requests time out and are retried like S3's, on the model
    of SDK_MODEL whichever SDK the project's Airflow pins."""
    from botocore.config import Config

    return aws_client(
        "mwaa",
        settings.aws_region,
        Config(
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            retries={"mode": "standard"},
        ),
        model=SDK_MODEL,
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
        # How often the environment copies its bucket, where it says so (mwaa-local).
        self.copy_seconds: float | None = None

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
        if not isinstance(status, int):
            # The SDK drops a body it cannot read as MWAA's: what is left to say is its kind.
            http = answer["ResponseMetadata"]
            kind = http.get("HTTPHeaders", {}).get("content-type", "no content type")
            raise CannotAsk(
                f"{self.name} answered {method} {path} with what is not MWAA's answer"
                f" (HTTP {http.get('HTTPStatusCode')}, {kind})"
            )
        self._answered(answer)
        return status, answer.get("RestApiResponse")  # none: Airflow answered without a body

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
        headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        date = headers.get("date")
        now = parsedate_to_datetime(date) if date else datetime.now(UTC)
        self.answered_at = now + timedelta(seconds=1)
        with contextlib.suppress(ValueError):
            said = float(headers.get(COPY_SECONDS_HEADER, ""))
            if 0 <= said <= MOST_COPY_SECONDS:
                self.copy_seconds = said

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
    return f"{endpoint if _is_own(endpoint) else 'MWAA'} refused the request ({said})", False


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
