"""`make adopt [FILES=...]`: existing DAG files turned into the convention, in place; and
`make retire-unprefixed [DELETE=1]`: the old copies they replace, out of the bucket."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from mwaa_deploy import config
from mwaa_deploy.checkout import Checkout
from mwaa_deploy.commands.prod_path import check_default_branch

TASK_ID_PREFIX = "task_id_prefix"
KEEPS_TASK_IDS = (
    "task ids kept as written, since strings may name them (branches, xcom_pull, templates);"
    " they are scoped by their DAG, whose id carries the environment"
)


def adopt(settings: config.Settings, files: str | None) -> int:
    """Adopt `files` (paths as the shell splits words; default: every DAG file of dags/)
    and print one line per file left to finish by hand. 1 where there is such a line."""
    from mwaa_deploy.adopt import codemod  # libcst, for this command only
    from mwaa_deploy.adopt import files as sources

    started = time.monotonic()
    paths = sources.chosen(settings.sources / "dags", files)
    lines: list[str] = []
    changed: list[Path] = []
    laid_out = sources.laid_out_by_ruff(settings.root, paths)
    done = left = 0  # left: files not adopted (a symlink, not UTF-8, not parsed, a name taken)
    keeps_task_ids = False
    try:
        for path in paths:
            source = sources.read(path)
            if source.problem:
                lines.append(source.problem)
                left += 1
            else:
                adopted = codemod.adopt_source(config.shown(path).as_posix(), source.text)
                if adopted.text != source.text:
                    _write_whole(path, adopted.text)
                    changed.append(path)
                lines += adopted.report
                left += adopted.left
                keeps_task_ids |= adopted.keeps_task_ids
            done += 1
    except KeyboardInterrupt:
        last = f", the last {config.shown(paths[done - 1]).as_posix()}" if done else ""
        print(
            f"Interrupted: {done} of {len(paths)} DAG files adopted, in the order taken{last};"
            " make adopt again finishes the rest and leaves those done as they are.",
            file=sys.stderr,
        )
        return 130
    finally:
        sources.format_as_the_project(settings.root, [p for p in changed if p in laid_out])
        if keeps_task_ids:
            _keep_task_ids(settings.root / "pyproject.toml")
    seconds = time.monotonic() - started
    print(
        f"Adopted {len(paths)} DAG files in {seconds:.1f} s: {len(changed)} changed,"
        f" {len(paths) - len(changed) - left} already in the convention"
        + (f", {left} left as they are (below)." if left else ".")
    )
    if lines:
        print("Left to do by hand (file:line: what to do):")
        print("\n".join(lines))
    print(
        f"Next: {'make format (for make lint); ' if set(paths) - laid_out else ''}make test;"
        " once the adopted DAGs run in DEV_ and PROD_, make retire-unprefixed lists the old"
        " copies in the bucket that they replace."
    )
    return 1 if lines else 0


def _write_whole(path: Path, text: str) -> None:
    """`path` holds `text` or what it held, never a part: Ctrl-C may come mid-write."""
    partial = path.with_name(f".{path.name}.adopting")
    try:
        partial.write_text(text, encoding="utf-8", newline="")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _keep_task_ids(pyproject: Path) -> None:
    """Turn the task-id prefix convention, which adds no isolation, off."""
    from mwaa_deploy.adopt import settings as conventions

    if conventions.turn_off(pyproject, TASK_ID_PREFIX, KEEPS_TASK_IDS):
        print(f"{config.shown(pyproject)}: {TASK_ID_PREFIX} = false: {KEEPS_TASK_IDS}.")


def retire_unprefixed(settings: config.Settings, delete: bool, force: bool) -> int:
    """List the bucket's old un-prefixed copies of adopted DAG files; with `delete`, from
    the default branch (the adopted files must have reached PROD), delete them."""
    from mwaa_deploy.adopt import retire
    from mwaa_deploy.commands.deploys import open_bucket  # the AWS SDK only for this command

    if delete and not force:
        check_default_branch(
            Checkout.read(settings.root), settings.default_branch, "retire-unprefixed"
        )
    bucket = open_bucket(settings)
    old, other = retire.plan(settings, bucket)
    for key in other:
        print(
            f"{key}: not a committed version of bucket_contents/{key}: kept; after a look,"
            f" delete it by hand: {bucket.removal_command(key)}"
        )
    if not old:
        print(f"No old un-prefixed copy of an adopted DAG file in {bucket.description}.")
        return 0
    if not delete:
        print(f"Old un-prefixed copies in {bucket.description}, replaced by DEV_ and PROD_ ones:")
        print("\n".join(f"  {key}" for key in old))
        print("Nothing deleted: make retire-unprefixed DELETE=1 deletes them.")
        return 0
    retire.delete(bucket, old)
    print(f"Deleted {len(old)} old un-prefixed copies from {bucket.description}.")
    return 0
