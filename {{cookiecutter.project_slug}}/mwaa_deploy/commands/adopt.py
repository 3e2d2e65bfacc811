"""`make adopt [FILES=...]`: existing DAG files turned into the convention, in place; and
`make retire-unprefixed [DELETE=1]`: the old copies they replace, out of the bucket."""

from __future__ import annotations

import time
from pathlib import Path

from mwaa_deploy import config
from mwaa_deploy.checkout import Checkout
from mwaa_deploy.commands.prod_path import check_default_branch
from mwaa_deploy.exceptions import ConfigError
from mwaa_deploy.stamping.stamp import read_text

TASK_ID_PREFIX = "task_id_prefix"
KEEPS_TASK_IDS = (
    "task ids kept as written, since strings may name them (branches, xcom_pull, templates);"
    " they are scoped by their DAG, whose id carries the environment"
)


def adopt(settings: config.Settings, files: str | None) -> int:
    """Adopt `files` (whitespace-separated paths; default: every DAG file of dags/) and
    print one line per file left to finish by hand. 1 where there is such a line."""
    from mwaa_deploy.adopt.codemod import adopt_source  # libcst, for this command only

    started = time.monotonic()
    paths = chosen(settings, files)
    lines: list[str] = []
    changed = 0
    keeps_task_ids = False
    for path in paths:
        shown = config.shown(path).as_posix()
        text = read_text(path)
        adopted = adopt_source(shown, text)
        if adopted.text != text:
            with open(path, "w", encoding="utf-8", newline="") as file:
                file.write(adopted.text)
            changed += 1
        lines += adopted.report
        keeps_task_ids |= adopted.keeps_task_ids
    seconds = time.monotonic() - started
    print(
        f"Adopted {len(paths)} DAG files in {seconds:.1f} s: {changed} changed,"
        f" {len(paths) - changed} already in the convention."
    )
    if keeps_task_ids:
        _keep_task_ids(settings.root / "pyproject.toml")
    if lines:
        print("Left to do by hand (file:line: what to do):")
        print("\n".join(lines))
    print(
        "Next: make test; once the adopted DAGs run in DEV_ and PROD_, make"
        " retire-unprefixed lists the old copies in the bucket that they replace."
    )
    return 1 if lines else 0


def chosen(settings: config.Settings, files: str | None) -> list[Path]:
    """The DAG files named, each directly in dags/; all of them when none are named."""
    dags = settings.sources / "dags"
    if not files:
        return sorted(p for p in dags.glob("*.py") if not p.name.startswith("."))
    paths = [Path(name).resolve() for name in files.split()]
    for path in paths:
        if path.parent != dags.resolve() or path.suffix != ".py" or not path.is_file():
            raise ConfigError(
                f"FILES: {path} is not a DAG file of {config.shown(dags)}/: name .py files"
                " directly in it (helper packages get no flag)"
            )
    return paths


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
