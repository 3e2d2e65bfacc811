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

    For a checkout check_prod_path found clean: git's status then vouches that the index is
    HEAD and that each file it tracks is as committed (judged as git judges, by size and
    mtime, content where those cannot tell). What status cannot see is checked here: a
    file git does not track (ignored), and one marked assume-unchanged or left out by a
    sparse checkout, compared with its blob as git would store it (its filters and line
    endings applied).
    """
    top = here.top()
    indexed = here.indexed()
    # Text, not Path methods: this runs on every file of every PROD deploy.
    under = f"{top}{os.sep}"
    names = {path: str(path)[len(under) :] for path in paths if str(path).startswith(under)}
    wrong = [f"{path} (outside the repository)" for path in paths if path not in names]
    wrong += [
        f"{name} (untracked or ignored by git)" for name in names.values() if name not in indexed
    ]
    unvouched = {
        path: name for path, name in names.items() if name in indexed and indexed[name][0] != "H"
    }
    wrong += [
        f"{name} (differs from the commit)"
        for name, blob in here.worktree_blobs(unvouched).items()
        if indexed[name][1] != blob
    ]
    dags = (sources / "dags").resolve().relative_to(top).as_posix() + "/"
    wrong += [
        f"{name} (committed, but missing from the checkout)"
        for name in indexed
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
