"""The PROD path: what changes the shared instance runs from the default branch, committed;
a rollback, which ships nothing of the checkout, from the default branch.

A deploy from a story branch or from uncommitted edits would put code into the instance
that nobody reviewed and that the next deploy from the default branch silently undoes.
"""

from __future__ import annotations

import os
from pathlib import Path

from mwaa_deploy.checkout import NO_GIT, NO_REPOSITORY, Checkout
from mwaa_deploy.exceptions import OffProdPath
from mwaa_deploy.stamping.stamp import is_source_name

# The one command that needs check_committed: the others ship no DAG file.
WHAT = "deploy-prod"


def check_prod_path(here: Checkout, default_branch: str, what: str) -> None:
    """Raise OffProdPath unless `here` is a clean checkout of `default_branch`."""
    _check_on(here, default_branch, what, "merge first")
    if here.changes:
        raise OffProdPath(
            f"{what} runs from committed code, and {len(here.changes)} file(s) have uncommitted"
            f" changes (git status); commit or stash them (or run `make {what} FORCE=1` if"
            " you must)"
        )


def check_default_branch(here: Checkout, default_branch: str, what: str) -> None:
    """Raise OffProdPath unless `here` is a checkout of `default_branch`, clean or not: for
    a command that changes PROD with nothing of the checkout (a rollback)."""
    _check_on(here, default_branch, what, f"git switch {default_branch}")


def _check_on(here: Checkout, default_branch: str, what: str, advice: str) -> None:
    override = f"(or run `make {what} FORCE=1` if you must)"
    if here.unreadable == NO_REPOSITORY:
        raise OffProdPath(
            f"{what} runs from a git checkout of {default_branch}, and {here.root} is not one:"
            f" clone the repository {override}"
        )
    if here.unreadable == NO_GIT:
        raise OffProdPath(
            f"{what} checks the checkout with git, and {NO_GIT}: install it {override}"
        )
    if here.unreadable:
        raise OffProdPath(
            f"{what} cannot tell whether this checkout is clean: git says: {here.unreadable};"
            f" fix the checkout {override}"
        )
    branch = here.branch_run_for()
    if branch != default_branch:
        raise OffProdPath(
            f"{what} runs from {default_branch}, not from {branch or 'a detached HEAD'}:"
            f" {advice} {override}"
        )


def check_committed(here: Checkout, sources: Path, paths: list[Path]) -> None:
    """Raise OffProdPath unless the files a PROD deploy reads, `paths` (absolute, symlinks
    as links), are exactly what HEAD has for them, and HEAD has no DAG file they lack.

    git's status cannot see everything that ships: a file git ignores, one marked
    assume-unchanged, or one a sparse checkout left out reads as clean. Comparing each
    file with HEAD's blob, as git would store it (its filters and line endings applied), can.
    """
    top = here.top()
    committed = here.committed_blobs()
    # Text, not Path methods: this runs on every file of every PROD deploy.
    under = f"{top}{os.sep}"
    names = {path: str(path)[len(under) :] for path in paths if str(path).startswith(under)}
    wrong = [f"{path} (outside the repository)" for path in paths if path not in names]
    for name, blob in here.worktree_blobs(names).items():
        if name not in committed:
            wrong.append(f"{name} (untracked or ignored by git)")
        elif committed[name] != blob:
            wrong.append(f"{name} (differs from the commit)")
    dags = (sources / "dags").resolve().relative_to(top).as_posix() + "/"
    wrong += [
        f"{name} (committed, but missing from the checkout)"
        for name in committed
        if name.startswith(dags)
        and all(map(is_source_name, name[len(dags) :].split("/")))
        and not os.path.lexists(top / name)
    ]
    if wrong:
        shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise OffProdPath(
            f"{WHAT} deploys only what is committed, and {len(wrong)} file(s) are not: {shown};"
            f" commit, restore or remove them (or run `make {WHAT} FORCE=1` if you must)"
        )
