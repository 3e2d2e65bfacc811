"""mwaa-local's one environment: what GetEnvironment says of it, and the UpdateEnvironment
requests it takes, settling as MWAA's do; and, for the tests, an update refused or failed
as a real MWAA's bad day has them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
# The instance-wide files' fields, in GetEnvironment and UpdateEnvironment alike.
FILE_FIELDS = ("Requirements", "Plugins", "StartupScript")


@dataclass
class Environment:
    """The one environment: what GetEnvironment says, and the updates it was sent."""

    name: str
    airflow_version: str
    bucket: str
    region: str
    status: str = "AVAILABLE"
    # "RequirementsS3Path", "RequirementsS3ObjectVersion", ...: what it runs now.
    files: dict[str, str] = field(default_factory=dict)
    last_update: dict[str, Any] = field(default_factory=dict)
    # Every UpdateEnvironment request taken, as sent.
    updates: list[dict[str, Any]] = field(default_factory=list)
    # The next update, refused (ValidationException: the message), or failed (its error
    # code and message, and the status it leaves: MWAA rolls back to AVAILABLE, or ends
    # UPDATE_FAILED if the rollback fails too). What tests make of a real MWAA's bad day.
    refusing_update: str | None = None
    failing_update: tuple[str, str, str] | None = None
    _settling: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def arn(self) -> str:
        return f"arn:aws:airflow:{self.region}:{ACCOUNT}:environment/{self.name}"

    def fail_next_update(self, code: str, message: str, settles_as: str = "AVAILABLE") -> None:
        """Make the next update fail as MWAA reports it: UPDATING, ROLLING_BACK, then
        `settles_as`, still running the previous files."""
        self.failing_update = (code, message, settles_as)

    def refuse_next_update(self, message: str) -> None:
        self.refusing_update = message

    def describe(self) -> dict[str, Any]:
        """GetEnvironment's Environment; an update in progress moves one step a call."""
        with self._lock:
            if self._settling:
                self.status = self._settling.pop(0)
            described = {
                "Name": self.name,
                "Arn": self.arn,
                "Status": self.status,
                "AirflowVersion": self.airflow_version,
                "SourceBucketArn": f"arn:aws:s3:::{self.bucket}",
                "DagS3Path": "dags",
                **self.files,
            }
            return described | ({"LastUpdate": self.last_update} if self.last_update else {})

    def update(self, request: dict[str, Any]) -> str | None:
        """Take an UpdateEnvironment request; the reason it is refused, if it is."""
        with self._lock:
            if self.status != "AVAILABLE":
                return f"{self.name} is {self.status}; an update can start only when AVAILABLE"
            refused, self.refusing_update = self.refusing_update, None
            if refused:
                return refused
            self.updates.append(request)
            if self.failing_update is None:
                fields = {k: v for k, v in request.items() if k.startswith(FILE_FIELDS)}
                self.files |= fields
                self.last_update = {"Status": "SUCCESS", "CreatedAt": time.time()}
                self._settling = ["UPDATING", "AVAILABLE"]
            else:
                code, message, settles_as = self.failing_update
                self.failing_update = None
                self.last_update = {
                    "Status": "FAILED",
                    "CreatedAt": time.time(),
                    "Error": {"ErrorCode": code, "ErrorMessage": message},
                }
                self._settling = ["UPDATING", "ROLLING_BACK", settles_as]
            self.status = "UPDATING"
            return None
