"""The MWAA environment: which instance-wide files it runs, and updating it to new ones.

Only the files whose content differs from what the environment runs are uploaded, and one
UpdateEnvironment call applies exactly their new object versions; the update is followed
until the environment is AVAILABLE again, or its failure is reported with where to look.
The client it is given is live_instance.py's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from mwaa_deploy.exceptions import OwnershipError, UpdateError
from mwaa_deploy.instance.instance_files import INSTANCE_KEYS, PLUGINS, REQUIREMENTS, STARTUP

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from mwaa_deploy.bucket.buckets import Bucket
    from mwaa_deploy.bucket.s3_bucket import S3Bucket

# The UpdateEnvironment fields that name each file and its object version.
FIELDS = {REQUIREMENTS: "Requirements", PLUGINS: "Plugins", STARTUP: "StartupScript"}
# Statuses an update passes through before it settles.
SETTLING = {"UPDATING", "ROLLING_BACK", "PENDING", "CREATING_SNAPSHOT"}
# Between looks at an update: from FIRST_POLL_SECONDS, doubling up to POLL_SECONDS, so an
# update that settles at once (a stand-in's) is seen at once and a long one costs few calls.
FIRST_POLL_SECONDS = 1.0
POLL_SECONDS = 30
PROGRESS_EVERY = 300  # seconds between "still UPDATING" lines
GIVE_UP_AFTER = 3600  # seconds; updates take 10-30 minutes


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
    environment = describe(mwaa, name, "cannot read the MWAA environment")
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
    return versions_in(environment)


def versions_in(environment: dict[str, Any]) -> dict[str, str]:
    """The object version of each instance-wide file, as GetEnvironment says it runs it."""
    return {
        key: environment[f"{field}S3ObjectVersion"]
        for key, field in FIELDS.items()
        if environment.get(f"{field}S3Path") == key and environment.get(f"{field}S3ObjectVersion")
    }


def upload(bucket: S3Bucket, files: dict[str, bytes]) -> dict[str, str]:
    """Upload each file; return the object version S3 gave it."""
    return {key: bucket.put(_instance_key(key), body).version for key, body in files.items()}


def update_environment(
    mwaa: BaseClient,
    name: str,
    versions: dict[str, str],
    ended: Callable[[dict[str, str]], None] = lambda _: None,
) -> None:
    """Point the environment at the new object versions and follow the update to its end;
    `ended` is told how it ended (for the history, instance_history.py), also when it
    failed.

    Workers are replaced gracefully: tasks already running, of DEV and PROD, finish first.
    """
    request = {"Name": name, "WorkerReplacementStrategy": "GRACEFUL"}
    for key, version in versions.items():
        request[f"{FIELDS[key]}S3Path"] = key
        request[f"{FIELDS[key]}S3ObjectVersion"] = version
    try:
        mwaa.update_environment(**request)
    except (BotoCoreError, ClientError) as error:
        ended({"status": "REFUSED", "error": str(error)})
        raise UpdateError(f"MWAA refused to update {name}: {error}") from error
    print(f"Updating {name} with {', '.join(versions)}; this takes 10-30 minutes.")
    try:
        environment = _settled(mwaa, name)
    except UpdateError as error:
        ended({"status": "UNSETTLED", "error": str(error)})
        raise
    last = environment.get("LastUpdate", {})
    error = last.get("Error", {})
    outcome = {"started": started} if (started := _utc(last.get("CreatedAt"))) else {}
    if environment["Status"] == "AVAILABLE" and last.get("Status") != "FAILED":
        ended(outcome | {"status": "SUCCESS"})
        print(f"{name} is AVAILABLE, running the new {', '.join(versions)}.")
        return
    code = error.get("ErrorCode", environment["Status"])
    reason = f"{code}: {error.get('ErrorMessage', 'no message')}"
    ended(outcome | {"status": "FAILED", "error": reason})
    raise UpdateError(
        f"the update of {name} failed ({reason}); MWAA rolled back to the previous files."
        f" Look in CloudWatch, log groups airflow-{name}-Worker and airflow-{name}-Scheduler"
        " (the requirements_install_* streams, and the startup script's), and on the"
        " environment's page in the MWAA console"
    )


def _settled(mwaa: BaseClient, name: str) -> dict[str, Any]:
    """The environment once its update has settled, saying how it goes now and then."""
    started = time.monotonic()
    status, last_said = "UPDATING", started
    pause = FIRST_POLL_SECONDS
    while status in SETTLING:
        time.sleep(pause)
        pause = min(pause * 2, POLL_SECONDS)
        environment = describe(mwaa, name, "the update started, but cannot follow it")
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


def _utc(when: Any) -> str:
    """MWAA's time of an update, in UTC: the clients here keep timestamps as text (epoch
    seconds, as MWAA sends them); a client of its own parses them."""
    if isinstance(when, datetime):
        return when.astimezone(UTC).isoformat(timespec="seconds")
    try:
        return datetime.fromtimestamp(float(when), UTC).isoformat(timespec="seconds")
    except (TypeError, ValueError, OverflowError):
        return ""


def describe(mwaa: BaseClient, name: str, doing: str) -> dict[str, Any]:
    """GetEnvironment's Environment; UpdateError saying what was `doing` if it fails."""
    if not name:
        raise UpdateError(
            f"{doing}: MWAA_ENVIRONMENT is empty, and S3_BUCKET names a bucket; set"
            " MWAA_ENVIRONMENT (or mwaa_environment in pyproject.toml [tool.mwaa_deploy]) to"
            " the name of the MWAA environment that reads it"
        )
    try:
        return mwaa.get_environment(Name=name)["Environment"]
    except (BotoCoreError, ClientError) as error:
        raise UpdateError(f"{doing} {name}: {error}") from error


def _instance_key(key: str) -> str:
    if key not in INSTANCE_KEYS:
        raise OwnershipError(f"refusing to touch {key!r}: instance-wide files are {INSTANCE_KEYS}")
    return key
