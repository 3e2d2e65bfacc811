"""Command line behind the Makefile: `python -m mwaa_deploy COMMAND`; `--help` lists them."""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import signal
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from mwaa_deploy import DeployError, config, sync
from mwaa_deploy.prod_path import check_committed, check_prod_path
from mwaa_deploy.stamp import ENVIRONMENTS, StampError, read_paths, stamp, write_build

if TYPE_CHECKING:
    from botocore.client import BaseClient

# What changes PROD or the shared instance runs from a clean checkout of the default branch.
FORCE_HELP = "run although not on the default branch, or with uncommitted changes"
STAMP_FAILED = {
    "deploy": "nothing was deployed to {env}",
    "plan": "no plan for {env} until every file stamps",
    "stamp": "build/{env}/ is left as it was",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mwaa_deploy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [
        ("stamp", "write build/<ENV>/ from bucket_contents/, checking every DAG file"),
        ("plan", "stamp, then show what a deploy would change; changes nothing"),
        ("deploy", "stamp, then upload new and changed files and delete stale ones"),
        ("clean", "delete every file the environment owns in the bucket"),
    ]:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("env", choices=ENVIRONMENTS if name != "clean" else ["DEV"])
        if name == "deploy":
            command.add_argument("--force", action="store_true", help=f"PROD: {FORCE_HELP}")
    commands.add_parser(
        "check-requirements", help="check requirements.txt, startup.sh and plugins/ for MWAA"
    )
    commands.add_parser(
        "deploy-requirements",
        help="check, upload the changed instance-wide files and update the MWAA environment",
    ).add_argument("--force", action="store_true", help=FORCE_HELP)
    commands.add_parser(
        "airflow-local", help="run Airflow on the local bucket's dags/, DEV and PROD, until Ctrl-C"
    ).add_argument("--port", type=int, default=8080, help="where the UI listens (default 8080)")
    args = parser.parse_args(argv)

    try:
        return _run(args)
    except DeployError as error:
        print(error, file=sys.stderr)
        if isinstance(error, StampError):
            print(
                f"Stamp failed: {STAMP_FAILED[args.command].format(env=args.env)}.", file=sys.stderr
            )
        return 130 if isinstance(error, sync.Interrupted) else 1
    except KeyboardInterrupt:
        if args.command == "deploy":
            print(f"Interrupted: nothing was deployed to {args.env}.", file=sys.stderr)
        else:
            print("Interrupted.", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    settings = config.load()
    # Each command imports what it needs only: a deploy starts in a fraction of a second.
    if args.command == "airflow-local":
        from mwaa_deploy import airflow_local

        return airflow_local.run(settings, args.port)
    if args.command == "check-requirements":
        from mwaa_deploy import instance

        files = instance.build(settings, config.shown(settings.sources))
        print(f"Checked for MWAA: {', '.join(files) or 'no instance-wide files'}.")
        return 0
    if args.command == "deploy-requirements":
        return _deploy_requirements(settings, force=args.force)
    if args.command == "clean":
        return _clean(settings, args.env)
    if args.command == "stamp":
        desired = stamp(config.shown(settings.sources), args.env)
        build = write_build(desired, config.shown(settings.build), args.env)
        print(f"Stamped {args.env}: {len(desired)} files in {build}")
        return 0
    on_prod_path = (
        args.command == "deploy" and args.env == "PROD" and settings.s3_bucket and not args.force
    )
    if on_prod_path:
        check_prod_path(settings.root, settings.default_branch, "deploy-prod")
        check_committed(settings.root, read_paths(settings.sources), "deploy-prod")
    desired, bucket = _stamp_and_open_bucket(settings, args.env)
    print(f"Stamped {args.env}: {len(desired)} files")
    if args.command == "plan":
        _print_plan(sync.plan(bucket, args.env, desired), bucket)
        return 0
    return _deploy(bucket, args.env, desired)


def _deploy_requirements(settings: config.Settings, force: bool) -> int:
    from mwaa_deploy import instance

    if settings.s3_bucket and not force:
        check_prod_path(settings.root, settings.default_branch, "deploy-requirements")
    files = instance.build(settings, config.shown(settings.sources))
    if not settings.s3_bucket:
        local = open_bucket(settings)
        changed = instance.changed_files(files, local.get)
        instance.write_local(local, changed)
        written = ", ".join(changed) or "nothing"
        print(f"{written} written to {local.description}; no MWAA environment to update.")
        return 0
    from mwaa_deploy.s3 import S3Bucket

    bucket = S3Bucket.open(settings.s3_bucket, settings.aws_region)
    mwaa = mwaa_client(settings)
    name = settings.mwaa_environment
    running = instance.running_versions(mwaa, name, bucket.name)
    changed = instance.changed_files(
        files, lambda key: bucket.get(key, running[key]) if key in running else None
    )
    if not changed:
        print(f"{name} already runs these instance-wide files: no upload, no update.")
        return 0
    versions = instance.upload(bucket, changed)
    print(f"Uploaded {', '.join(f'{key} (version {v})' for key, v in versions.items())}.")
    instance.update_environment(mwaa, name, versions)
    return 0


def mwaa_client(settings: config.Settings) -> BaseClient:
    """The MWAA API client (tests replace it with one that checks every call)."""
    from mwaa_deploy.s3 import aws_client

    return aws_client("mwaa", settings.aws_region)


def open_bucket(settings: config.Settings) -> sync.Bucket:
    if not settings.s3_bucket:
        return sync.LocalBucket(config.shown(settings.local_bucket))
    from mwaa_deploy.s3 import S3Bucket

    return S3Bucket.open(settings.s3_bucket, settings.aws_region)


def _stamp_and_open_bucket(
    settings: config.Settings, env: str
) -> tuple[dict[str, bytes], sync.Bucket]:
    """The build and the bucket; a stamp problem is reported first, as the one to fix first.

    Opening an S3 bucket loads the AWS SDK and its S3 model, CPU work like stamping, so
    stamping runs meanwhile in a second process (a thread would wait for the first): an
    unchanged deploy of hundreds of DAG files takes about a quarter less time.
    """
    sources = config.shown(settings.sources)
    if not settings.s3_bucket:
        return stamp(sources, env), open_bucket(settings)
    # A fork starts at once, and is safe on Linux while no other thread runs, as on the
    # command line; elsewhere (macOS, a process with threads) a fresh interpreter.
    alone = sys.platform == "linux" and threading.active_count() == 1
    start = multiprocessing.get_context("fork" if alone else "spawn")
    receiving, sending = start.Pipe(duplex=False)
    # A daemon: ended with this process, Ctrl-C included, however far it got.
    stamper = start.Process(target=_stamp_into, args=(sending, sources, env), daemon=True)
    stamper.start()
    sending.close()
    try:
        bucket = open_bucket(settings)
    except DeployError:
        _received(receiving)
        raise
    return _received(receiving), bucket


def _stamp_into(sending: Connection, sources: Path, env: str) -> None:
    """The stamping process: send the build, or the StampError, back."""
    # Ctrl-C is the parent's to handle: a stamper stopped while sending the build would
    # leave the parent waiting for the rest of it, for ever.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sending.send(stamp(sources, env))
    except StampError as error:
        sending.send(error)


def _received(receiving: Connection) -> dict[str, bytes]:
    try:
        outcome = receiving.recv()
    except EOFError:
        raise DeployError(
            "stamping stopped without a result; run it alone: make stamp-dev"
        ) from None
    if isinstance(outcome, StampError):
        raise outcome
    return outcome


def _print_plan(result: sync.Plan, bucket: sync.Bucket) -> None:
    print(f"Plan for {result.env} on {bucket.description} (keys {sync.owned_prefix(result.env)}*):")
    for label, keys in [
        ("new", result.new),
        ("changed", result.changed),
        ("delete", result.deleted),
    ]:
        for key in keys:
            print(f"  {label:<8} {key}")
    print(f"  {result.counts()}" + (" - nothing to do" if result.is_empty else ""))


def _deploy(bucket: sync.Bucket, env: str, desired: dict[str, bytes]) -> int:
    print(f"Deploying {env} to {bucket.description}")
    result = sync.deploy(bucket, env, desired, progress=sync.print_progress)
    print(
        f"{result.env} deployed: {len(result.uploads)} uploaded"
        f" ({len(result.new)} new, {len(result.changed)} changed),"
        f" {len(result.deleted)} deleted, {len(result.unchanged)} unchanged."
    )
    return 0


def _clean(settings: config.Settings, env: str) -> int:
    bucket = open_bucket(settings)
    deleted = sync.clean(bucket, env)
    print(f"{env} cleaned from {bucket.description}: {len(deleted)} files deleted.")
    return 0


if __name__ == "__main__":
    # Reference counting frees what a command lets go of; the cycle collector would only
    # walk the AWS SDK's hundreds of thousands of objects over and over while they load,
    # and once more at exit: about a fifth of an unchanged deploy's time.
    gc.disable()
    status = main()
    gc.freeze()
    sys.exit(status)
