"""History of the instance-wide files: each run of deploy-requirements, and the run a
rollback-requirements points the environment back at.

Each run that changes something (a rollback too) ends by writing its record,
INSTANCE_RECORD (owners.py), as a DAG deploy writes its own (bucket/history.py): the bucket
keeps every version of it, its versions newest first are the history, and the id of a run
is its record's version id. The record names, for every instance-wide file the environment
was pointed at (changed or not), the object version and its SHA-256, and how the update
ended: its status, MWAA's time for it (LastUpdate.CreatedAt: MWAA gives an update no other
id) and its error. With the local bucket there is no update: a run's files are written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mwaa_deploy.bucket import history
from mwaa_deploy.exceptions import BucketError, HistoryError
from mwaa_deploy.instance import record_shape
from mwaa_deploy.owners import INSTANCE_RECORD

if TYPE_CHECKING:
    from mwaa_deploy.bucket.buckets import Bucket

SCHEMA = 1
# How a run ended: the environment runs its files (SUCCESS), the local bucket holds them
# (WRITTEN); else MWAA refused or failed the update, or it was left unsettled.
RAN = ("SUCCESS", "WRITTEN")
LISTING = "make history-requirements"
WHAT = ("deploy-requirements run", "deploy-requirements runs")


@dataclass(frozen=True)
class Run:
    """One run of deploy-requirements (or rollback-requirements), as its record tells it."""

    id: str
    about: history.About
    changed: tuple[str, ...]
    # file -> {"version": ..., "sha256": ...}: what the environment was pointed at.
    objects: dict[str, dict[str, str]]
    # "status", and where MWAA said them, "started" and "error".
    update: dict[str, str]
    # False where the record is not JSON of the form document() writes (record_shape.py):
    # it then names no files, and no rollback can point back at it.
    readable: bool = True

    @property
    def short_id(self) -> str:
        return self.id[: history.SHORT_ID]

    @property
    def ran(self) -> bool:
        return self.readable and self.update.get("status") in RAN

    @property
    def versions(self) -> dict[str, str]:
        return {key: entry["version"] for key, entry in self.objects.items()}

    def is_run_by(self, running: dict[str, str]) -> bool:
        """The environment runs this run's files, and no other (`running`: file -> version)."""
        return self.versions == running


def document(
    about: history.About, changed: list[str], files: dict[str, tuple[str, bytes]], update: dict
) -> bytes:
    """The record of a run: `files` maps each file to its version and content."""
    record = {
        "about": "Written by mwaa_deploy at the end of each deploy-requirements that changed"
        " something: where it came from, the version of each instance-wide file the"
        " environment was pointed at, and how the update ended.",
        "schema": SCHEMA,
        "deploy": about,
        "changed": sorted(changed),
        "objects": {
            key: {"version": version, "sha256": hashlib.sha256(body).hexdigest()}
            for key, (version, body) in sorted(files.items())
        },
        "update": update,
    }
    return json.dumps(record, indent=1).encode() + b"\n"


def write(bucket: Bucket, record: bytes) -> str:
    """Store a run's record; its id."""
    return bucket.put(INSTANCE_RECORD, record).version


def read(bucket: Bucket, version: str) -> Run | None:
    """The run whose record is `version`; one of any other shape than document()'s (damaged,
    by hand or by anyone who may write the bucket) names no files."""
    record = history.read_record(bucket, INSTANCE_RECORD, version)
    if record is None:
        return None
    if not record_shape.well_formed(record, SCHEMA):
        return Run(id=version, about={}, changed=(), objects={}, update={}, readable=False)
    return Run(
        id=version,
        about=record["deploy"],
        changed=tuple(record["changed"]),
        objects=record["objects"],
        update=record["update"],
    )


def recent(bucket: Bucket, count: int) -> tuple[list[Run], int]:
    """The last `count` runs, newest first, and how many are recorded."""
    ids = bucket.versions(INSTANCE_RECORD)
    found = history.concurrently(lambda version: read(bucket, version), ids[:count])
    return [run for run in found.values() if run is not None], len(ids)


def choose(bucket: Bucket, to: str, running: dict[str, str]) -> Run:
    """The run a rollback points the environment back at: the one whose id starts with
    `to`, or by default the last that ran before the one the environment runs now; where
    it runs no recorded run's files (a change by hand, a run stopped part way), the last
    that ran."""
    ids = bucket.versions(INSTANCE_RECORD)
    where = bucket.description
    if not ids:
        raise HistoryError(
            f"no deploy-requirements is recorded in {where}: nothing to roll back to"
        )
    if to:
        chosen = read(bucket, history.by_start(ids, to, WHAT, where, LISTING))
        if chosen is not None and not chosen.readable:
            raise HistoryError(unreadable(chosen, where))
        if chosen is not None and not chosen.ran:
            raise HistoryError(
                f"run {chosen.short_id} never ran on the environment (its update ended"
                f" {chosen.update.get('status', 'unrecorded')}): {LISTING} marks with"
                " `ran` the runs a rollback can point back at"
            )
    else:
        ran, current = _ran_back_to_current(bucket, ids, running)
        if not ran:
            raise HistoryError(
                f"no recorded deploy-requirements in {where} ran: nothing to go back to"
            )
        if current is None:
            chosen = ran[0]
        elif current + 1 < len(ran):
            chosen = ran[current + 1]
        else:
            raise HistoryError(
                f"the environment runs the files of run {ran[current].short_id}, the first"
                f" recorded in {where} that ran: nothing before it to roll back to"
            )
    if chosen is None or not chosen.objects:
        raise HistoryError(f"the record of run {to} cannot be read: roll back to another run")
    return chosen


def unreadable(run: Run, where: str) -> str:
    """Why a rollback cannot point back at a run whose record is damaged, and what to do."""
    return (
        f"the record of run {run.short_id} ({INSTANCE_RECORD}, version {run.id}, in {where})"
        f" cannot be read: it is not what deploy-requirements writes; roll back to another"
        f" run with TO=<ID>, as {LISTING} lists them"
    )


def check_kept(bucket: Bucket, run: Run) -> dict[str, bytes]:
    """The files of a run, read back by their versions and checked against their hashes."""

    def kept(key: str) -> bytes | None:
        version = run.objects[key]["version"]
        try:
            return bucket.get(key, version)
        except BucketError as error:
            if not error.permanent:
                raise
            raise HistoryError(
                f"{key} of run {run.short_id} is recorded at version {version!r}, which"
                f" {bucket.description} refuses ({error}): its record ({INSTANCE_RECORD})"
                f" is damaged; nothing was changed; roll back to another run with TO=<ID>,"
                f" as {LISTING} lists them"
            ) from error

    bodies = history.concurrently(kept, run.objects)
    for key, body in bodies.items():
        if body is None or hashlib.sha256(body).hexdigest() != run.objects[key].get("sha256"):
            gone = "is gone from" if body is None else "does not hold what was recorded in"
            raise HistoryError(
                f"{key} of run {run.short_id} {gone} {bucket.description} (a lifecycle rule"
                " may expire old versions): nothing was changed; roll back to a later run"
            )
    return {key: body for key, body in bodies.items() if body is not None}


def changes_line(run: Run) -> str:
    """What a run changed, and how its update ended."""
    changed = f"changed {', '.join(run.changed)}" if run.changed else "changed nothing"
    if run.about.get("rollback_to"):
        whose = run.about.get("files_from", "")
        changed = (
            f"rollback to {run.about['rollback_to'][: history.SHORT_ID]}"
            + (f", files of {whose}" if whose else "")
            + f": {changed}"
        )
    status = run.update.get("status", "no update recorded")
    started = run.update.get("started", "")
    ended = f"update {started.replace('T', ' ')[:19]} {status}" if started else status
    error = f" ({run.update['error']})" if run.update.get("error") else ""
    return f"{changed}; {ended}{error}"


def files_from(run: Run) -> str:
    """Where a run's files come from: for a rollback, the run it put back."""
    return history.files_of(run.about)


def _ran_back_to_current(
    bucket: Bucket, ids: list[str], running: dict[str, str]
) -> tuple[list[Run], int | None]:
    """The runs that ran, newest first, read a page at a time until the one after the
    newest the environment runs (the one to go back to), and where that one is in them."""
    ran: list[Run] = []
    for start in range(0, len(ids), history.READ_THREADS):
        page = ids[start : start + history.READ_THREADS]
        found = history.concurrently(lambda version: read(bucket, version), page)
        ran += [run for run in found.values() if run is not None and run.ran]
        current = next((n for n, run in enumerate(ran) if run.is_run_by(running)), None)
        if current is not None and current + 1 < len(ran):
            return ran, current
    return ran, next((n for n, run in enumerate(ran) if run.is_run_by(running)), None)
