"""The commands behind the Makefile, one function each; __main__.py parses the arguments.

Each command imports what it needs only, so that a stamp, or a deploy to the local bucket,
never loads the AWS SDK.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from mwaa_deploy import config, owners
from mwaa_deploy.bucket import claims, history, sync
from mwaa_deploy.bucket.buckets import Bucket
from mwaa_deploy.bucket.local_bucket import LocalBucket
from mwaa_deploy.bucket.plans import Plan
from mwaa_deploy.bucket.s3_bucket import S3Bucket
from mwaa_deploy.checkout import Checkout
from mwaa_deploy.commands import airflow_cleanup, branch_state, sandboxes
from mwaa_deploy.commands.prod_path import (
    check_committed,
    check_default_branch,
    check_prod_path,
)
from mwaa_deploy.exceptions import (
    DeployError,
    HistoryError,
    Interrupted,
    SandboxError,
    StampError,
)
from mwaa_deploy.instance import parse_gate, pools
from mwaa_deploy.stamping import build as building
from mwaa_deploy.stamping.build import Build
from mwaa_deploy.stamping.stamp import read_paths, write_build

# Deploys of fewer files finish before progress would help.
PROGRESS_FROM = 20


def stamp(settings: config.Settings, env: str, full: bool) -> int:
    """`stamp ENV`: write build/<owner>/ from bucket_contents/, checking every DAG file."""
    chosen = _target(settings, env, full)
    with _if_stamp_fails(f"build/{chosen.owner}/ is left as it was"):
        desired = building.stamp(
            config.shown(settings.sources), chosen.owner, chosen.only, settings.build
        )
    build = write_build(desired, config.shown(settings.build), chosen.owner)
    print(f"Stamped {chosen.owner}: {len(desired)} files in {build}")
    return 0


def plan(settings: config.Settings, env: str, full: bool) -> int:
    """`plan ENV`: stamp, then show what a deploy would change; change nothing."""
    chosen = _target(settings, env, full)
    owner = chosen.owner
    with _if_stamp_fails(f"no plan for {owner} until every file stamps"):
        build, bucket = _build_and_bucket(settings, chosen)
        result = sync.plan(bucket, owner, build)
    print(f"Stamped {owner}: {len(build.keys())} files")
    print(f"Plan for {owner} on {bucket.description} (keys {owners.prefix(owner)}*):")
    for label, keys in [
        ("new", result.new),
        ("changed", result.changed),
        ("delete", result.deleted),
    ]:
        for key in keys:
            print(f"  {label:<8} {key}")
    print(f"  {result.counts()}" + (" - nothing to do" if result.is_empty else ""))
    claim = claims.Claim(chosen.belongs_to, chosen.sandbox_for)
    if not result.is_empty and (refused := claims.refused(bucket, owner, claim)):
        print(f"make deploy-dev would refuse: {refused}")
    return 0


def deploy(settings: config.Settings, env: str, force: bool, full: bool) -> int:
    """`deploy ENV`: stamp, then upload new and changed files and delete stale ones.

    What changes PROD runs from a clean checkout of the default branch, unless forced.
    """
    chosen = _target(settings, env, full)
    owner = chosen.owner
    nothing_done = f"nothing was deployed to {owner}"
    try:
        with _if_stamp_fails(nothing_done):
            if owner == "PROD" and settings.s3_bucket and not force:
                check_prod_path(chosen.here, settings.default_branch, "deploy-prod")
                check_committed(chosen.here, settings.sources, read_paths(settings.sources))
            build, bucket = _build_and_bucket(settings, chosen)
            planned = sync.plan(bucket, owner, build)
        print(f"Stamped {owner}: {len(build.keys())} files")
        _check_the_instance_answers(settings, owner)
        print(f"Deploying {owner} to {bucket.description}")
        result = sync.deploy(bucket, owner, build, _print_progress, _about(chosen), planned)
        print(f"{owner} deployed: {result.counts(done=True)}.")
    except KeyboardInterrupt:
        raise Interrupted(f"Interrupted: {nothing_done}.") from None
    if owner == "PROD":  # DEV's share of the workers is the instance's, set from PROD's path
        pools.on_mwaa(settings)
    _wait_for_the_parse(settings, result)
    return 0


def show_history(settings: config.Settings, env: str, last: int) -> int:
    """`history ENV`: the last deploys of the environment (or of the branch's sandbox)."""
    owner = sandboxes.target(settings, env, full=True).owner
    bucket = open_bucket(settings)
    ids = history.deploy_ids(bucket, owner)
    deploys = history.recent(bucket, owner, last)
    if not deploys:
        print(f"No deploy of {owner} is recorded in {bucket.description}.")
        return 0
    files = sync.owned_keys(bucket, owner)
    cleaned = files.pop(history.record_key(owner), None) is None
    # What the bucket holds now, where it is not what the last deploy left.
    drift = [] if cleaned else history.differences(files, deploys[0])
    print(
        f"Deploys of {owner} to {bucket.description}, newest first: ID, when (UTC),"
        " branch @ commit (+: with uncommitted edits), who; what it changed"
    )
    shown = history.shown_ids(ids)
    for deploy in deploys:
        mark = " " if cleaned or drift or deploy is not deploys[0] else "*"
        print(f"{mark} {shown[deploy.id]:<{history.SHORT_ID}}  {history.origin_line(deploy)}")
        print(f"  {'':<{history.SHORT_ID}}  {history.changes_line(deploy)}")
    if len(ids) > len(deploys):
        print(f"  ... and {len(ids) - len(deploys)} earlier (N={len(ids)} lists them all)")
    rollback = f"make rollback-{env.lower()}"
    if cleaned:
        print(
            f"{owner} holds no files now (cleaned): {rollback} puts back the last deploy;"
            f" {rollback} TO=<ID> another."
        )
    elif drift:
        keys = f"{len(drift)} key{'' if len(drift) == 1 else 's'}, {drift[0]}"
        keys += f" and {len(drift) - 1} more" if len(drift) > 1 else ""
        print(
            f"{owner}'s files differ from its last deploy's record ({keys}: a deploy stopped"
            f" part way, or an edit by hand): {rollback} puts back the last deploy;"
            f" {rollback} TO=<ID> another."
        )
    else:
        print(
            f"* what the bucket holds now. {rollback} puts back the deploy before the last;"
            f" {rollback} TO=<ID> another."
        )
    return 0


def rollback(settings: config.Settings, env: str, to: str | None, force: bool) -> int:
    """`rollback ENV`: put back the exact files of an earlier deploy, as a new deploy.

    PROD rolls back from the default branch, unless forced, as it deploys from there.
    """
    if to == "":
        raise HistoryError(
            f"TO is empty: give the ID of a deploy, as make history-{env.lower()} shows it, or"
            " leave TO out to put back the deploy before the last"
        )
    chosen = sandboxes.target(settings, env, full=True)
    owner = chosen.owner
    if owner == "PROD" and settings.s3_bucket and not force:
        check_default_branch(chosen.here, settings.default_branch, "rollback-prod")
    bucket = open_bucket(settings)
    print(f"Rolling back {owner} on {bucket.description}")
    try:
        _check_the_instance_answers(settings, owner)
        earlier, result = sync.rollback(bucket, owner, to or "", _print_progress, _about(chosen))
    except KeyboardInterrupt:
        raise Interrupted(f"Interrupted: nothing was rolled back in {owner}.") from None
    which = f"deploy {earlier.short_id} (files of {history.files_from(earlier)})"
    if result.is_empty:
        print(f"{owner} already holds the files of {which}: nothing to do.")
        return 0
    print(f"{owner} rolled back to {which}: {result.counts(done=True)}.")
    _wait_for_the_parse(settings, result)
    return 0


def clean(settings: config.Settings, env: str, port: int) -> int:
    """`clean DEV`: delete every file of the branch's sandbox (or of DEV) from the bucket."""
    chosen = sandboxes.target(settings, env, full=True)
    bucket = open_bucket(settings)
    deleted = sync.clean(bucket, chosen.owner, claims.Claim(chosen.belongs_to, chosen.sandbox_for))
    if not deleted and owners.is_sandbox(chosen.owner):
        print(
            f"No sandbox {owners.sandbox_name(chosen.owner)} in {bucket.description}: nothing"
            " to clean (make sandboxes lists them)."
        )
    else:
        print(f"{chosen.owner} cleaned from {bucket.description}: {len(deleted)} files deleted.")
    # Also when no file was left: a rerun removes what an earlier clean left in Airflow.
    airflow_cleanup.remove_from_airflow(settings, chosen.owner, port)
    return 0


def list_sandboxes(settings: config.Settings) -> int:
    """`sandboxes`: the story branches' sandboxes in the bucket, stale ones marked."""
    bucket = open_bucket(settings)
    found = sandboxes.listed(bucket)
    days = settings.sandbox_stale_days
    if not found:
        print(f"No sandboxes in {bucket.description}.")
        return 0
    try:
        mine = sandboxes.target(settings, "DEV", full=True).owner
    except SandboxError:  # a detached HEAD: no branch, so no sandbox is this checkout's
        mine = ""
    print(
        f"Sandboxes in {bucket.description}: files, the last deploy that changed them (UTC),"
        f" its branch @ commit (+: with uncommitted edits); stale: no change for {days} days"
    )
    now = datetime.now(UTC)
    here, prefix = (
        Checkout.read(settings.root),
        sandboxes.branch_prefix(settings.dev_branch_pattern),
    )
    for sandbox in found:
        mark = "*" if sandbox.owner == mine else " "
        files = f"{sandbox.files:>5} file{'' if sandbox.files == 1 else 's'}"
        stale = "  stale" if sandboxes.is_stale(sandbox, days, now) else ""
        branch = branch_state.state(here, sandbox.about, settings.default_branch, prefix)
        stale += f"  {branch}" if branch else ""
        print(f"{mark} {sandbox.name:<20} {files}  {history.origin(sandbox.about)}{stale}")
    if any(sandbox.owner == mine for sandbox in found):
        print("* this branch's sandbox")
    return 0


def _about(chosen: sandboxes.Target) -> Callable[[], history.About]:
    """What the record of this deploy will say of it, asked once the deploy has work."""
    return lambda: sandboxes.about_this_deploy(chosen, chosen.here)


def _check_the_instance_answers(settings: config.Settings, owner: str) -> None:
    """A deploy that will ask the MWAA environment (DEV's pool, the parse gate) asks it
    first, so that one it cannot ask stops the deploy before it uploads anything."""
    if settings.s3_bucket and settings.mwaa_environment:  # else the SDK stays unloaded
        from mwaa_deploy.instance import live_instance

        live_instance.check_can_ask(settings, owner)


def _wait_for_the_parse(settings: config.Settings, result: Plan) -> None:
    """Run the parse gate on what the instance must parse anew: the DAG files written, or
    all of them when a helper module they may import was; a deploy that wrote nothing
    waits for nothing."""
    helper_written = any("/" in key.removeprefix("dags/") for key in result.uploads)
    if helper_written:  # any file may import it: which bytes a parse read cannot be told
        parse_gate.check(settings, result.owner, result.files, written={})
    else:
        parse_gate.check(settings, result.owner, result.uploads, written=result.uploads)


def _target(settings: config.Settings, env: str, full: bool) -> sandboxes.Target:
    """Who the command is for, said first when it is a sandbox."""
    chosen = sandboxes.target(settings, env, full)
    for note in chosen.notes:
        print(note)
    return chosen


@contextmanager
def _if_stamp_fails(not_done: str) -> Iterator[None]:
    """A stamp's problems, reported with what the command therefore did not do."""
    try:
        yield
    except StampError as error:
        raise StampError(error.problems, f"Stamp failed: {not_done}.") from None


def open_bucket(settings: config.Settings) -> LocalBucket | S3Bucket:
    """The bucket the settings name: S3 when `s3_bucket` is set, else the local folder."""
    if not settings.s3_bucket:
        return LocalBucket(config.shown(settings.local_bucket))
    return S3Bucket.open(settings.s3_bucket, settings.aws_region)


def _build_and_bucket(settings: config.Settings, chosen: sandboxes.Target) -> tuple[Build, Bucket]:
    """The build, whose files are stamped as the plan asks for them, and the bucket. Where
    the bucket cannot be opened, a stamp problem is still reported first, as the one to
    fix first."""
    build = Build(config.shown(settings.sources), chosen.owner, chosen.only, settings.build)
    try:
        return build, open_bucket(settings)
    except DeployError:
        build.stamped(build.keys())
        raise


def _print_progress(done: int, total: int) -> None:
    """Progress of long deploys: one line rewritten in place on a terminal, every 10% otherwise."""
    if total < PROGRESS_FROM:
        return
    if sys.stderr.isatty():
        end = "\n" if done == total else ""
        print(f"\r  uploaded {done}/{total}", end=end, file=sys.stderr, flush=True)
    elif done % (total // 10) == 0 or done == total:
        print(f"  uploaded {done}/{total}", file=sys.stderr, flush=True)
