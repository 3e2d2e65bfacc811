"""Sandboxes: each story branch's own DEV copy, in the same bucket and the same Airflow.

Which owner a DEV command is for (on a story branch its sandbox, on the default branch the
shared DEV), what a sandbox holds (what its branch changes since it left the default
branch, unless the whole project is asked for), and which sandboxes a bucket holds.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mwaa_deploy import config, owners
from mwaa_deploy.bucket import history
from mwaa_deploy.checkout import Checkout
from mwaa_deploy.exceptions import SandboxError
from mwaa_deploy.stamping.selection import select

if TYPE_CHECKING:
    from mwaa_deploy.bucket.buckets import Bucket

GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Sandbox:
    owner: str
    files: int
    about: history.About

    @property
    def name(self) -> str:
        return owners.sandbox_name(self.owner)


@dataclass(frozen=True)
class Target:
    """Who a DEV or PROD command is for, and what of the project it ships."""

    owner: str
    here: Checkout
    # A sandbox: the branch (or SANDBOX's name) it is for, without the story prefix, and
    # whole: the sandbox belongs to that full name, never to one that only reads like it.
    sandbox_for: str = ""
    belongs_to: str = ""
    # A sandbox's part of the project (None: all of it) and what to say about it.
    only: frozenset[str] | None = None
    notes: tuple[str, ...] = ()
    # HEAD's id, `+` where the sources hold edits (Checkout.commit_of); for a sandbox, the
    # commit where its branch left the default branch: the same one when it has no commits
    # of its own, so merging it merges nothing (branch_state.py).
    commit: str = ""
    left_at: str = ""


def target(
    settings: config.Settings, env: str, full: bool = False, here: Checkout | None = None
) -> Target:
    """PROD, or for DEV: the sandbox SANDBOX names, the branch's sandbox, or the shared DEV.

    A sandbox holds what its branch changes since it left the default branch, unless
    `full` asks for the whole project. `here`: the checkout, where the command has read it.
    """
    here = here or Checkout.read(settings.root)
    commit = here.commit_of(os.path.relpath(settings.sources, settings.root))
    if env == "PROD":
        return Target("PROD", here, commit=commit)
    given = config.variable("SANDBOX") or ""
    owner = dev_owner(settings, here, given)
    if not owners.is_sandbox(owner):
        alone = () if here.in_git else ("No git here: this deploys the shared DEV.",)
        return Target(owner, here, notes=alone, commit=commit)
    name, origin = owners.sandbox_name(owner), f"SANDBOX={given}" if given else here.branch
    belongs_to = given or here.branch
    sandbox_for = belongs_to.removeprefix(branch_prefix(settings.dev_branch_pattern))
    base, why_all = here.merge_base(settings.default_branch)
    if full or not base:
        note = f"Sandbox {name} ({origin}): every DAG file" + ("" if full else f", as {why_all}")
        return Target(owner, here, sandbox_for, belongs_to, None, (note,), commit, base)
    sources = config.shown(settings.sources)
    changed = here.changed_since(base, os.path.relpath(settings.sources, settings.root))
    selection = select(sources, changed)
    total = len(selection.dag_files) + len(selection.left_out)
    named = selection.named
    shown = ", ".join(named[:3]) + (f" and {len(named) - 3} more" if len(named) > 3 else "")
    also = f", and {shown}, whose DAG or asset they trigger, wait for or share" if named else ""
    notes = (
        f"Sandbox {name} ({origin}): {len(selection.dag_files)} of {total} DAG files, those"
        f" this branch changes since {settings.default_branch}{also}; FULL=1 deploys every one",
    )
    return Target(owner, here, sandbox_for, belongs_to, selection.names, notes, commit, base)


def dev_owner(settings: config.Settings, here: Checkout, given: str) -> str:
    """Who a DEV command is for: the sandbox `given` (a name or a branch), else the
    branch's sandbox, else (on the default branch, or outside git) the shared DEV."""
    prefix = branch_prefix(settings.dev_branch_pattern)
    if given:
        return owners.sandbox_of(given, prefix)
    if not here.in_git or here.branch == settings.default_branch:
        return "DEV"
    if not here.branch:
        raise SandboxError(
            "HEAD is detached, so no branch names a sandbox: check out your branch, or name"
            " the sandbox: SANDBOX=<name> make deploy-dev"
        )
    return owners.sandbox_of(here.branch, prefix)


def branch_prefix(pattern: str) -> str:
    """The fixed start of the story branches' pattern (`story/` of `story/**`), which
    sandbox names leave out."""
    return pattern[: m.start()] if (m := GLOB.search(pattern)) else ""


def about_this_deploy(chosen: Target, here: Checkout) -> history.About:
    """What the record of a deploy of `chosen` says of it."""
    actor = os.environ.get("GITHUB_ACTOR")
    by = f"{actor} (GitHub Actions)" if actor else f"{getpass.getuser()}@{socket.gethostname()}"
    sandbox = {"sandbox_for": chosen.sandbox_for, "belongs_to": chosen.belongs_to}
    left_at = {"left_at": chosen.left_at} if chosen.left_at else {}
    return {
        **(sandbox | left_at if chosen.belongs_to else {}),
        "branch": here.branch,
        "commit": chosen.commit,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "by": by,
    }


def listed(bucket: Bucket) -> list[Sandbox]:
    """Every sandbox in the bucket, with its file count and its last deploy's record."""
    counts: dict[str, int] = {}
    for key in bucket.list(f"dags/{owners.SANDBOX}_"):
        owner = owners.owner_of_key(key)
        if owner:
            bookkeeping = key in (history.record_key(owner), owners.lock_key(owner))
            counts[owner] = counts.get(owner, 0) + (not bookkeeping)
    lasts = history.concurrently(lambda owner: history.read(bucket, owner), sorted(counts))
    return [
        Sandbox(owner, counts[owner], last.about if last else {}) for owner, last in lasts.items()
    ]


def is_stale(sandbox: Sandbox, days: int, now: datetime) -> bool:
    """No deploy for `days` days, or no record of when."""
    try:
        deployed = datetime.fromisoformat(sandbox.about["time"])
    except (KeyError, ValueError):
        return True
    return (now - deployed).days >= days
