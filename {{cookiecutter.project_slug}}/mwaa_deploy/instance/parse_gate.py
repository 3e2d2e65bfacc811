"""The parse gate: after a deploy to S3, wait until the MWAA environment has parsed the
deployed DAG files, and fail on an import error in any of them.

MWAA exposes Airflow's REST API through its own API, `InvokeRestApi` (the IAM action
`airflow:InvokeRestApi`): the paths used here, /importErrors and /dags, reach API v1 on
Airflow 2 and API v2 on Airflow 3, whose answers differ only in how they name a file
(Airflow 2: the absolute path; Airflow 3: the path inside the DAGs folder).

The gate works from the build's keys alone, whatever owner deployed them (DEV, PROD, a
sandbox): its DAG files are the `.py` keys directly in `dags/`. A DAG file the deploy
wrote counts as parsed once the instance reports a parse of the bytes it wrote
(dag_sources.py): the DAGs it defines, served from those bytes, or an import error whose
traceback quotes them; until then it is "not yet parsed", whatever Airflow says of the
file it replaced. Where that cannot tell (the deploy also wrote a helper module, which
any file may import; an import error that quotes no line), a report counts when it is of
a parse later than the deploy and MWAA's copy of the bucket (BUCKET_COPY_SECONDS; make
mwaa-local, which copies its bucket every 2 s, says so in its answers).
Import errors in any other file (another environment's, someone else's) are counted,
never blamed on this deploy. Airflow alone knows which DAG ids a file defines, by running
it: the gate lists, for each deployed file, the DAGs the instance names it as the source
of, and a file for which it names none is not confirmed.

The whole wait, every question included, ends within its bound (PARSE_GATE_SECONDS); an
answer that is not Airflow's stops it with a line saying what came.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mwaa_deploy.exceptions import Interrupted, ParseGateError
from mwaa_deploy.instance.dag_sources import (
    ParseFailure,
    Sources,
    failure_of,
    inside_dags_folder,
    quotes_deployed,
)

if TYPE_CHECKING:
    from mwaa_deploy.config import Settings
    from mwaa_deploy.instance.live_instance import Instance

# MWAA copies the bucket into Airflow's DAGs folder every 30 seconds: where the gate cannot
# tell which bytes a parse read, one within that time after the deploy may be of the files
# the deploy replaced.
BUCKET_COPY_SECONDS = 30.0
# A parse is seen within this of its end; each look is a few small questions.
POLL_SECONDS = 2.0
PROGRESS_EVERY = 10.0  # seconds between "still waiting" lines
PAGE = 100  # Airflow's largest page by default
SHOWN_DAG_IDS = 10


@dataclass
class Snapshot:
    """What the instance reports at one moment, by file inside the DAGs folder."""

    failures: dict[str, ParseFailure] = field(default_factory=dict)
    # file -> the DAGs Airflow names it as the source of: (dag_id, last parsed).
    dags: dict[str, list[tuple[str, datetime | None]]] = field(default_factory=dict)
    # The files judged by their bytes (`exact`), and those of them whose last parse the
    # instance reports is of the bytes the deploy wrote: their DAGs' source is those bytes
    # (`served`), or an import error is theirs (`failed`).
    exact: set[str] = field(default_factory=set)
    served: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    traces: dict[str, str] = field(default_factory=dict, repr=False)

    def parsed_since(self, file: str, moment: datetime) -> bool:
        if file in self.exact:
            return file in self.served or file in self.failed
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


def check(
    settings: Settings, owner: str, keys: Iterable[str], written: Mapping[str, bytes]
) -> None:
    """After a deploy of `owner` (DEV, PROD, a sandbox) to S3 with an MWAA environment
    configured: wait for the environment to parse the build's DAG files; ParseGateError
    lists their import errors, and those not yet parsed. `written`: the bytes of the DAG
    files whose parse the gate can tell apart from their previous version's (by key)."""
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
    instance = live_instance.Instance(settings, settings.parse_gate_seconds)
    bodies = {key.removeprefix("dags/"): body for key, body in written.items()}
    gate = _Gate(instance, owner, files, bodies)
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
    def __init__(
        self,
        instance: Instance,
        owner: str,
        files: list[str],
        bodies: dict[str, bytes],
    ) -> None:
        self.instance, self.name, self.owner, self.files = instance, instance.name, owner, files
        self.bodies = {file: body for file, body in bodies.items() if file in files}
        self.sources = Sources(lambda path: self._get(path, {}, absent_ok=True))
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
        failed, unparsed = [], []
        for file in self.files:
            failure = snapshot.failures.get(file)
            exact = file in snapshot.exact
            if failure and (file in snapshot.failed if exact else failure.at >= self.since):
                failed.append(str(failure))
            elif not snapshot.parsed_since(file, self.since):
                lists_none = not snapshot.dags.get(file)
                previous = exact and not lists_none
                unparsed.append(
                    f"dags/{file}: not yet parsed within {bound:.0f} s of the deploy"
                    + (", and the instance lists no DAG from it" if lists_none else "")
                    + (": the instance still serves its previous version" if previous else "")
                )
        others = len(snapshot.failures.keys() - set(self.files))
        not_mine = f" {others} import error(s) in other files, not this deploy's." if others else ""
        if failed or unparsed:
            raise ParseGateError(failed + unparsed, self._verdict(failed, unparsed) + not_mine)
        dag_ids = self.parsed_dag_ids(snapshot)
        shown = ", ".join(dag_ids[:SHOWN_DAG_IDS])
        more = f" and {len(dag_ids) - SHOWN_DAG_IDS} more" if len(dag_ids) > SHOWN_DAG_IDS else ""
        print(
            f"{self.name} parsed {self.owner}'s {len(self.files)} DAG file(s) without import"
            f" errors; DAGs listed: {shown}{more}.{not_mine}"
        )

    def _verdict(self, failed: list[str], unparsed: list[str]) -> str:
        """What the problems above mean, and what to do: fix what failed; look again, or
        wait longer, for what was not yet parsed."""
        of = f"of its {len(self.files)} DAG file(s)"
        deployed = f"Parse gate: {self.owner} is deployed, but {self.name}"
        fix = "fix them and deploy"
        if not unparsed:
            return f"{deployed} did not import {len(failed)} {of} (above); {fix} again."
        later = (
            "see them in the Airflow UI once it has, or deploy again with a larger"
            " PARSE_GATE_SECONDS."
        )
        if not failed:
            return f"{deployed} has not yet parsed {len(unparsed)} {of} (above): {later}"
        return (
            f"{deployed} did not import {len(failed)} {of} and has not yet parsed"
            f" {len(unparsed)} (above); fix the first and deploy again."
        )

    def parsed_dag_ids(self, snapshot: Snapshot) -> list[str]:
        """The DAGs of the deployed files that the instance parsed since the deploy."""
        assert self.since is not None  # set by the first snapshot
        return sorted(
            dag_id
            for file in self.files
            for dag_id, parsed in snapshot.dags.get(file, [])
            if (
                file in snapshot.served
                if file in snapshot.exact
                else parsed and parsed >= self.since
            )
        )

    def _snapshot(self) -> Snapshot:
        snapshot = Snapshot()
        for error in self._pages("/importErrors", "import_errors"):
            with self._reading("/importErrors", error):
                file = inside_dags_folder(error["filename"])
                snapshot.failures[file] = failure_of(file, error)
                snapshot.traces[file] = error.get("stack_trace") or ""
        for dag in self._pages("/dags", "dags"):
            with self._reading("/dags", dag):
                file = dag.get("relative_fileloc") or inside_dags_folder(dag["fileloc"])
                parsed = dag.get("last_parsed_time")
                at = datetime.fromisoformat(parsed) if parsed else None
                snapshot.dags.setdefault(file, []).append((dag["dag_id"], at))
                if file in self.bodies and file not in snapshot.served and at is not None:
                    if self.sources.serves(dag, at, self.bodies[file]):
                        snapshot.served.add(file)
        self._judge_errors(snapshot)
        return snapshot

    def _judge_errors(self, snapshot: Snapshot) -> None:
        """Which of the deployed files' import errors are of the bytes the deploy wrote."""
        assert self.since is not None  # set by the first answer
        snapshot.exact = set(self.bodies)
        for file, body in self.bodies.items():
            failure = snapshot.failures.get(file)
            if failure is None:
                continue
            quoted = quotes_deployed(snapshot.traces[file], file, body)
            if quoted or quoted is None and failure.at >= self.since:
                snapshot.failed.add(file)

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

    def _get(self, path: str, query: dict[str, Any], absent_ok: bool = False) -> Any:
        """One GET of Airflow's REST API through MWAA. A failure that will not pass, or one
        before any answer, stops the gate; one that may pass is _AskAgain. `absent_ok`: a
        404 answers None."""
        from mwaa_deploy.instance.live_instance import CannotAsk

        try:
            status, answer = self.instance.call("GET", path, query)
        except CannotAsk as error:
            if self.since is None or not error.passing:
                raise self._unchecked(str(error)) from None
            raise _AskAgain from error
        if status >= 500 and self.since is not None:
            raise _AskAgain
        if status == 404 and absent_ok:
            return None
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
            copy = self.instance.copy_seconds
            self.since = self.instance.answered_at + timedelta(
                seconds=BUCKET_COPY_SECONDS if copy is None else copy
            )
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
