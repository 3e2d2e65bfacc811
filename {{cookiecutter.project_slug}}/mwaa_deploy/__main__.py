"""Command line behind the Makefile: `python -m mwaa_deploy {stamp,plan,deploy,clean} ENV`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mwaa_deploy import config, sync
from mwaa_deploy.stamp import ENVIRONMENTS, StampError, stamp, write_build


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
    args = parser.parse_args(argv)

    settings = config.load()
    try:
        if args.command == "clean":
            return _clean(settings, args.env)
        if args.command == "stamp":
            desired = stamp(_shown(settings.sources), args.env)
            build = write_build(desired, _shown(settings.build), args.env)
            print(f"Stamped {args.env}: {len(desired)} files in {build}")
            return 0
        desired = stamp(_shown(settings.sources), args.env)
        print(f"Stamped {args.env}: {len(desired)} files")
        bucket = open_bucket(settings)
        result = sync.plan(bucket, args.env, desired)
        if args.command == "plan":
            _print_plan(result, bucket)
            return 0
        return _deploy(result, bucket)
    except StampError as error:
        print("\n".join(error.problems), file=sys.stderr)
        print(f"Stamp failed: nothing was deployed to {args.env}.", file=sys.stderr)
    except (sync.SyncError, sync.BucketError) as error:
        print(error, file=sys.stderr)
    return 1


def open_bucket(settings: config.Settings) -> sync.Bucket:
    if not settings.s3_bucket:
        return sync.LocalBucket(_shown(settings.local_bucket))
    from mwaa_deploy.s3 import S3Bucket

    return S3Bucket.open(settings.s3_bucket, settings.aws_region)


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


def _deploy(result: sync.Plan, bucket: sync.Bucket) -> int:
    print(f"Deploying {result.env} to {bucket.description}")
    sync.apply(bucket, result, progress=sync.print_progress)
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


def _shown(path: Path) -> Path:
    """Paths in messages relative to where the command runs, as a person typed them."""
    return Path(os.path.relpath(path))


if __name__ == "__main__":
    sys.exit(main())
