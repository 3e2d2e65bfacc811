"""The parse gate: after a deploy to S3, wait until the MWAA environment has parsed the
deployed DAG files, and fail on an import error in any of them.

MWAA exposes Airflow's REST API through its own API, `InvokeRestApi` (the IAM action
`airflow:InvokeRestApi`): the paths used here, /importErrors and /dags, reach API v1 on
Airflow 2 and API v2 on Airflow 3, whose answers differ only in how they name a file
(Airflow 2: the absolute path; Airflow 3: the path inside the DAGs folder).

The gate works from the build's keys alone, whatever owner deployed them (DEV, PROD, a
sandbox): its DAG files are the `.py` keys directly in `dags/`. A file counts as parsed
once Airflow reports, for a parse later than the deploy, an import error for it or the
DAGs it defines. Import errors in any other file (another environment's, someone else's)
are counted, never blamed on this deploy. Airflow alone knows which DAG ids a file
defines, by running it: the gate lists, for each deployed file, the DAGs the instance
names it as the source of, and a file for which it names none is not confirmed.

The whole wait, every question included, ends within its bound (PARSE_GATE_SECONDS); an
answer that is not Airflow's stops it with a line saying what came.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mwaa_deploy.exceptions import Interrupted, ParseGateError

if TYPE_CHECKING:
    from mwaa_deploy.config import Settings
    from mwaa_deploy.instance.live_instance import Instance

# MWAA copies the bucket into Airflow's DAGs folder every 30 seconds: a parse within that
# time after the deploy may have read the files the deploy replaced.
BUCKET_COPY_SECONDS = 30.0
POLL_SECONDS = 5.0
PROGRESS_EVERY = 30.0  # seconds between "still waiting" lines
PAGE = 100  # Airflow's largest page by default
SHOWN_DAG_IDS = 10
TRACEBACK_FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+)')


@dataclass(frozen=True)
class ParseFailure:
    """One import error as Airflow reports it: the file inside the DAGs folder, the line
    of that file the traceback points at (if any), Airflow's last line, and when."""

    file: str
    line: int | None
    message: str
    at: datetime

    def __str__(self) -> str:
        where = f"dags/{self.file}" + (f":{self.line}" if self.line else "")
        return f"{where}: {self.message}"


@dataclass
class Snapshot:
    """What the instance reports at one moment, by file inside the DAGs folder."""

    failures: dict[str, ParseFailure] = field(default_factory=dict)
    # file -> the DAGs Airflow names it as the source of: (dag_id, last parsed).
    dags: dict[str, list[tuple[str, datetime | None]]] = field(default_factory=dict)

    def parsed_since(self, file: str, moment: datetime) -> bool:
        failure = self.failures.get(file)
        if failure is not None:
            return failure.at >= moment
        return any(parsed and parsed >= moment for _, parsed in self.dags.get(file, []))


def dag_files(keys: Iterable[str]) -> list[str]:
    """The DAG files among a build's keys, as paths inside the DAGs folder: the `.py` keys
    directly in dags/ (helper packages carry an .airflowignore, so Airflow skips them)."""
    return sorted(
        key.removeprefix("dags/")
        for key in keys
        if key.startswith("dags/") and key.endswith(".py") and key.count("/") == 1
    )


def check(settings: Settings, owner: str, keys: Iterable[str]) -> None:
    """After a deploy of `owner` (DEV, PROD, a sandbox) to S3 with an MWAA environment
    configured: wait for the environment to parse the build's DAG files; ParseGateError
    lists their import errors."""
    files = dag_files(keys)
    if not (settings.s3_bucket and settings.mwaa_environment and files):
        return
    if settings.parse_gate_seconds == 0:
        print("Parse gate skipped: its bound, PARSE_GATE_SECONDS or parse_gate_seconds, is 0.")
        return
    from mwaa_deploy.instance import live_instance

    name = settings.mwaa_environment
    print(
        f"Waiting for MWAA environment {name} to parse {owner}'s {len(files)} DAG file(s)"
        f" (at most {settings.parse_gate_seconds:.0f} s; PARSE_GATE_SECONDS=0 skips this)"
    )
    gate = _Gate(live_instance.Instance(settings, settings.parse_gate_seconds), owner, files)
    try:
        snapshot = gate.wait()
    except KeyboardInterrupt:
        raise Interrupted(
            f"Interrupted while waiting for {name} to parse: {owner} is deployed, its import"
            " errors unchecked; see the Airflow UI."
        ) from None
    gate.report(snapshot, settings.parse_gate_seconds)
    # MWAA may ignore the platform's cluster policy silently: read its result back.
    from mwaa_deploy.instance import policy_check

    policy_check.check(settings, gate.instance, owner, gate.parsed_dag_ids(snapshot))


class _AskAgain(Exception):
    """A failure to ask the instance that may pass (a timeout, Airflow's 5xx): ask again."""


class _Gate:
    def __init__(self, instance: Instance, owner: str, files: list[str]) -> None:
        self.instance, self.name, self.owner, self.files = instance, instance.name, owner, files
        # The moment from which a parse counts, by the instance's clock; set by the first answer.
        self.since: datetime | None = None

    def wait(self) -> Snapshot:
        """The first snapshot in which every file is parsed, or the last one before the
        instance's deadline."""
        started = last_said = time.monotonic()
        snapshot = Snapshot()
        while True:
            with contextlib.suppress(_AskAgain):  # then the last snapshot stands
                snapshot = self._snapshot()
            pending = self.pending(snapshot)
            left = self.instance.deadline - time.monotonic()
            if not pending or left <= 0:
                return snapshot
            if time.monotonic() - last_said >= PROGRESS_EVERY:
                last_said = time.monotonic()
                parsed, waited = len(self.files) - len(pending), last_said - started
                print(f"  {parsed} of {len(self.files)} parsed after {waited:.0f} s", flush=True)
            if left <= POLL_SECONDS:  # no time for another look after the pause
                return snapshot
            time.sleep(POLL_SECONDS)

    def pending(self, snapshot: Snapshot) -> list[str]:
        assert self.since is not None  # set by the first snapshot
        return [f for f in self.files if not snapshot.parsed_since(f, self.since)]

    def report(self, snapshot: Snapshot, bound: float) -> None:
        """Say what the instance parsed; raise ParseGateError unless every file is fine."""
        assert self.since is not None  # set by the first snapshot
        problems = []
        for file in self.files:
            failure = snapshot.failures.get(file)
            if failure is not None and failure.at >= self.since:
                problems.append(str(failure))
            elif not snapshot.parsed_since(file, self.since):
                lists_none = failure is None and not snapshot.dags.get(file)
                problems.append(
                    f"dags/{file}: not parsed within {bound:.0f} s of the deploy"
                    + (", and the instance lists no DAG from it" if lists_none else "")
                )
        others = len(snapshot.failures.keys() - set(self.files))
        not_mine = f" {others} import error(s) in other files, not this deploy's." if others else ""
        if problems:
            raise ParseGateError(
                problems,
                f"Parse gate: {self.owner} is deployed, but {self.name} did not import"
                f" {len(problems)} of its {len(self.files)} DAG file(s) (above); fix them and"
                f" deploy again.{not_mine}",
            )
        dag_ids = self.parsed_dag_ids(snapshot)
        shown = ", ".join(dag_ids[:SHOWN_DAG_IDS])
        more = f" and {len(dag_ids) - SHOWN_DAG_IDS} more" if len(dag_ids) > SHOWN_DAG_IDS else ""
        print(
            f"{self.name} parsed {self.owner}'s {len(self.files)} DAG file(s) without import"
            f" errors; DAGs listed: {shown}{more}.{not_mine}"
        )

    def parsed_dag_ids(self, snapshot: Snapshot) -> list[str]:
        """The DAGs of the deployed files that the instance parsed since the deploy."""
        assert self.since is not None  # set by the first snapshot
        return sorted(
            dag_id
            for file in self.files
            for dag_id, parsed in snapshot.dags.get(file, [])
            if parsed and parsed >= self.since
        )

    def _snapshot(self) -> Snapshot:
        snapshot = Snapshot()
        for error in self._pages("/importErrors", "import_errors"):
            with self._reading("/importErrors", error):
                file = _inside_dags_folder(error["filename"])
                snapshot.failures[file] = _failure(file, error)
        for dag in self._pages("/dags", "dags"):
            with self._reading("/dags", dag):
                file = dag.get("relative_fileloc") or _inside_dags_folder(dag["fileloc"])
                parsed = dag.get("last_parsed_time")
                snapshot.dags.setdefault(file, []).append(
                    (dag["dag_id"], datetime.fromisoformat(parsed) if parsed else None)
                )
        return snapshot

    def _pages(self, path: str, items: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        total = 1
        while len(found) < total:
            page = self._get(path, {"limit": PAGE, "offset": len(found)})
            with self._reading(path, page):
                if not isinstance(page[items], list):
                    raise TypeError(f"{items} is not a list")
                found += page[items]
                total = int(page["total_entries"]) if page[items] else 0
        return found

    def _get(self, path: str, query: dict[str, Any]) -> Any:
        """One GET of Airflow's REST API through MWAA. A failure that will not pass, or one
        before any answer, stops the gate; one that may pass is _AskAgain."""
        from mwaa_deploy.instance.live_instance import CannotAsk

        try:
            status, answer = self.instance.call("GET", path, query)
        except CannotAsk as error:
            if self.since is None or not error.passing:
                raise self._unchecked(str(error)) from None
            raise _AskAgain from error
        if status >= 500 and self.since is not None:
            raise _AskAgain
        if status >= 300:
            role = (
                "; the deploy role needs airflow:InvokeRestApi as Airflow's Viewer or Op role"
                " (iam/deploy-roles.yaml)"
                if status in (401, 403)
                else ""
            )
            raise self._unchecked(
                f"{self.name}'s Airflow answered {status} to GET {path} ({_detail(answer)}){role}"
            )
        if self.since is None:
            assert self.instance.answered_at is not None  # set by the answer
            self.since = self.instance.answered_at + timedelta(seconds=BUCKET_COPY_SECONDS)
        return answer

    @contextlib.contextmanager
    def _reading(self, path: str, answer: Any) -> Iterator[None]:
        """Read an answer of Airflow's; one that is not stops the gate, saying what came."""
        from mwaa_deploy.instance.live_instance import shown

        try:
            yield
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            problem = f"no {error}" if isinstance(error, KeyError) else "not Airflow's answer"
            raise self._unchecked(
                f"{self.name} answered GET {path} with {shown(answer)} ({problem})"
            ) from None

    def _unchecked(self, why: str) -> ParseGateError:
        return ParseGateError(
            [],
            f"Parse gate: {self.owner} is deployed, its import errors unchecked: {why}. See"
            " them in the Airflow UI; PARSE_GATE_SECONDS=0 skips the gate.",
        )


def _detail(answer: Any) -> Any:
    return (answer.get("detail") or answer.get("title")) if isinstance(answer, dict) else answer


def _inside_dags_folder(path: str) -> str:
    """A file's path inside the DAGs folder: Airflow 3 gives that already; Airflow 2 an
    absolute path, which on MWAA is /usr/local/airflow/dags/<file>."""
    return path.rpartition("/dags/")[2] if path.startswith("/") else path


def _failure(file: str, error: dict[str, Any]) -> ParseFailure:
    trace = error.get("stack_trace") or ""
    lines = [
        int(frame["line"])
        for frame in TRACEBACK_FRAME.finditer(trace)
        if _inside_dags_folder(frame["path"]) == file
    ]
    message = next((line.strip() for line in reversed(trace.splitlines()) if line.strip()), "")
    return ParseFailure(
        file=file,
        line=lines[-1] if lines else None,
        message=message or "no message",
        at=datetime.fromisoformat(error["timestamp"]),
    )
