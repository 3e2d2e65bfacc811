"""The PROD path: what changes the shared instance runs from the default branch, committed.

A deploy from a story branch or from uncommitted edits would put code into the instance
that nobody reviewed and that the next deploy from the default branch silently undoes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from mwaa_deploy import DeployError

HEAD = "# branch.head "


class OffProdPath(DeployError):
    """Not on the default branch, or uncommitted changes; the message says which."""


def check_prod_path(
    root: Path, default_branch: str, what: str, environ: Mapping[str, str] = os.environ
) -> None:
    """Raise OffProdPath unless `root` is a clean checkout of `default_branch`.

    On GitHub Actions the checkout is a detached commit, so the branch is the one the
    workflow runs for (GITHUB_REF_NAME).
    """
    override = f"`make {what} FORCE=1`"
    # One git call answers both questions: the HEAD line names the branch (or says
    # `(detached)`); every line not starting with `#` is a changed file.
    status = _git(root, "status", "--porcelain=v2", "--branch")
    if status is None:
        raise OffProdPath(
            f"{what} runs from a git checkout of {default_branch}, and {root} is not one:"
            f" clone the repository (or run {override} if you must)"
        )
    lines = status.splitlines()
    if environ.get("GITHUB_ACTIONS") == "true":
        branch = (
            environ.get("GITHUB_REF_NAME", "") if environ.get("GITHUB_REF_TYPE") == "branch" else ""
        )
    else:
        head = next((line[len(HEAD) :] for line in lines if line.startswith(HEAD)), "")
        branch = "" if head == "(detached)" else head
    if branch != default_branch:
        raise OffProdPath(
            f"{what} runs from {default_branch}, not from {branch or 'a detached HEAD'}:"
            f" merge first (or run {override} if you must)"
        )
    changes = [line for line in lines if not line.startswith("#")]
    if changes:
        raise OffProdPath(
            f"{what} runs from committed code, and {len(changes)} file(s) have uncommitted"
            f" changes (git status); commit or stash them (or run {override} if you must)"
        )


def _git(root: Path, *args: str) -> str | None:
    """git's answer, stripped; None when `root` is not in a repository."""
    try:
        answer = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return None
    if answer.returncode != 0 and "not a git repository" in answer.stderr:
        return None
    return answer.stdout.strip()
