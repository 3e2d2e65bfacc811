"""The history of the instance-wide files, and their rollback: `history-requirements`,
`rollback-requirements`, and the record each deploy-requirements ends with
(instance/instance_history.py keeps the records).

On S3 a rollback points the MWAA environment back at a recorded run's object versions
with UpdateEnvironment, the bucket unchanged; with the local bucket, where no environment
runs anything, it writes that run's files back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mwaa_deploy import config
from mwaa_deploy.bucket import history
from mwaa_deploy.checkout import Checkout
from mwaa_deploy.commands import sandboxes
from mwaa_deploy.commands.deploys import open_bucket
from mwaa_deploy.commands.prod_path import check_default_branch
from mwaa_deploy.exceptions import HistoryError
from mwaa_deploy.instance import instance_history
from mwaa_deploy.owners import INSTANCE_RECORD

if TYPE_CHECKING:
    from mwaa_deploy.bucket.buckets import Bucket

ROLLBACK = "make rollback-requirements"
# file -> object version
Files = dict[str, str]


@contextmanager
def recording(
    bucket: Bucket, said: dict[str, str], running: Files, changed: Files, known: dict[str, bytes]
) -> Iterator[dict[str, str]]:
    """Around an update that points the environment, `running` files (file -> version), at
    `changed`: record the run when the update has ended, however it ended; the update says
    how into the dictionary given (mwaa_environment.update_environment's `ended`). A run
    stopped before that (Ctrl-C) is not recorded: the environment then runs files no run
    names, and a rollback puts back the last run that ran. `known`: contents at hand."""
    outcome: dict[str, str] = {}
    try:
        yield outcome
    finally:
        if outcome:
            _record(bucket, said, changed, running | changed, outcome, known)


def record_local(bucket: Bucket, said: dict[str, str], changed: list[str]) -> None:
    """Record a run that wrote `changed` into the local bucket; `said`: its `about`."""
    held = _local_running(bucket)
    changes = {key: held.get(key, "") for key in changed}  # "": removed
    _record(bucket, said, changes, held, {"status": "WRITTEN"}, {})


def about(settings: config.Settings, **more: str) -> dict[str, str]:
    """Where this run comes from, as a DAG deploy's record says it."""
    here = Checkout.read(settings.root)
    return sandboxes.about_this_deploy(sandboxes.target(settings, "PROD", here=here), here) | more


def history_requirements(settings: config.Settings, last: int) -> int:
    """`history-requirements`: the last runs of deploy-requirements and rollback-requirements."""
    bucket = open_bucket(settings)
    runs, total = instance_history.recent(bucket, last)
    if not runs:
        print(f"No deploy-requirements is recorded in {bucket.description}.")
        return 0
    running = _running(settings, bucket, must_be_available=False)
    current = next((run for run in runs if run.ran and run.is_run_by(running)), None)
    where = f"the MWAA environment {settings.mwaa_environment}" if settings.s3_bucket else ""
    print(
        f"Runs of deploy-requirements on {where or bucket.description}, newest first: ID, when"
        " (UTC), branch @ commit, who; what it changed, how the update ended"
    )
    shown = history.shown_ids(run.id for run in runs)
    for run in runs:
        mark = "*" if run is current else " "
        if not run.readable:
            print(f"  {shown[run.id]:<12}  its record cannot be read ({INSTANCE_RECORD} damaged)")
            print(f"  {'':<12}  not a run a rollback can point back at")
            continue
        print(f"{mark} {shown[run.id]:<12}  {_origin(run)}")
        print(f"  {'':<12}  {instance_history.changes_line(run)}")
    if total > len(runs):
        print(f"  ... and {total - len(runs)} earlier (N={total} lists them all)")
    if current is None and total > len(runs):
        print(
            f"None of these {len(runs)} is what the environment runs now: an earlier one may be"
            f" (N={total} lists them all). {ROLLBACK} points it back at the run before that one."
        )
    elif current is None:
        print(
            "The environment runs files no run recorded here names (changed by hand, or a run"
            f" stopped part way): {ROLLBACK} points it back at the last run that ran;"
            f" {ROLLBACK} TO=<ID> another."
        )
    else:
        print(
            f"* what the environment runs now. {ROLLBACK} points it back at the run before"
            f" it that ran; {ROLLBACK} TO=<ID> another."
        )
    return 0


def rollback_requirements(settings: config.Settings, to: str | None, force: bool) -> int:
    """`rollback-requirements`: point the environment back at the files of an earlier run.

    From the default branch unless forced, as rollback-prod: it changes PROD (and DEV)."""
    if to == "":
        raise HistoryError(
            "TO is empty: give the ID of a run, as make history-requirements shows it, or leave"
            " TO out to go back to the run before the last"
        )
    if settings.s3_bucket and not force:
        check_default_branch(
            Checkout.read(settings.root), settings.default_branch, "rollback-requirements"
        )
    bucket = open_bucket(settings)
    running = _running(settings, bucket, must_be_available=True)
    run = instance_history.choose(bucket, to or "", running)
    bodies = instance_history.check_kept(bucket, run)
    versions = {key: v for key, v in run.versions.items() if running.get(key) != v}
    which = f"run {run.short_id} (files of {instance_history.files_from(run)})"
    # A file the run had none of: the local bucket drops it; MWAA's is cleared by hand.
    dropped = sorted(running.keys() - run.objects.keys()) if not settings.s3_bucket else []
    for key in sorted(running.keys() - run.objects.keys() - set(dropped)):
        print(f"{key} was not part of {which}: it stays as it is (clear it in the MWAA console).")
    if not versions and not dropped:
        print(f"The environment already runs the files of {which}: nothing to do.")
        return 0
    said = about(settings, rollback_to=run.id, files_from=instance_history.files_from(run))
    print(f"Rolling back {', '.join([*versions, *dropped])} to {which}")
    if not settings.s3_bucket:
        for key in versions:
            bucket.put(key, bodies[key])
        bucket.delete(dropped)
        record_local(bucket, said, [*versions, *dropped])
        written = f"{', '.join(versions)} written back" if versions else "nothing written"
        gone = f"; {', '.join(dropped)} removed, as {which} had none" if dropped else ""
        print(f"{written} to {bucket.description}{gone}.")
        return 0
    from mwaa_deploy.instance import live_instance, mwaa_environment

    mwaa, name = live_instance.client(settings), settings.mwaa_environment
    with recording(bucket, said, running, versions, bodies) as outcome:
        mwaa_environment.update_environment(mwaa, name, versions, outcome.update)
    return 0


def _record(
    bucket: Bucket,
    said: dict[str, str],
    changed: Files,
    pointed_at: Files,
    update: dict[str, str],
    known: dict[str, bytes],
) -> None:
    """Write the record of a run that pointed the environment at `pointed_at`, of which
    `changed` are new; the contents not `known` are read back."""
    bodies = {
        key: known[key] if key in known else bucket.get(key, version)
        for key, version in pointed_at.items()
    }
    files = {key: (pointed_at[key], body) for key, body in bodies.items() if body is not None}
    instance_history.write(bucket, instance_history.document(said, list(changed), files, update))


def _running(settings: config.Settings, bucket: Bucket, must_be_available: bool) -> Files:
    """What the environment runs, file -> version; with the local bucket, what it holds."""
    if not settings.s3_bucket:
        return _local_running(bucket)
    from mwaa_deploy.instance import live_instance, mwaa_environment

    mwaa, name = live_instance.client(settings), settings.mwaa_environment
    if must_be_available:
        return mwaa_environment.running_versions(mwaa, name, settings.s3_bucket)
    return mwaa_environment.versions_in(mwaa_environment.describe(mwaa, name, "cannot read"))


def _local_running(bucket: Bucket) -> Files:
    """The local bucket's versions are the hashes of their content (local_bucket.py)."""
    from mwaa_deploy.instance.instance_files import INSTANCE_KEYS

    held = {key: bucket.get(key) for key in INSTANCE_KEYS}
    return {key: hashlib.sha256(body).hexdigest() for key, body in held.items() if body is not None}


def _origin(run: instance_history.Run) -> str:
    return f"{history.origin(run.about)}  {run.about.get('by', '')}"
