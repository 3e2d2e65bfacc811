"""The PROD path: what changes the shared instance runs from the default branch, committed.

A deploy from a story branch or from uncommitted edits would put code into the instance
that nobody reviewed and that the next deploy from the default branch silently undoes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from mwaa_deploy.exceptions import OffProdPath

HEAD = "# branch.head "


def check_prod_path(root: Path, default_branch: str, what: str) -> None:
    """Raise OffProdPath unless `root` is a clean checkout of `default_branch`.

    On GitHub Actions the checkout is a detached commit, so the branch is the one the
    workflow runs for (GITHUB_REF_NAME).
    """
    override = f"`make {what} FORCE=1`"
    # One git call answers both questions: the HEAD line names the branch (or says
    # `(detached)`); every line not starting with `#` is a changed file.
    status = _git(root, what, "status", "--porcelain=v2", "--branch")
    if status is None:
        raise OffProdPath(
            f"{what} runs from a git checkout of {default_branch}, and {root} is not one:"
            f" clone the repository (or run {override} if you must)"
        )
    lines = status.splitlines()
    if os.environ.get("GITHUB_ACTIONS") == "true":
        on_branch = os.environ.get("GITHUB_REF_TYPE") == "branch"
        branch = os.environ.get("GITHUB_REF_NAME", "") if on_branch else ""
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


def check_committed(root: Path, paths: Iterable[Path], what: str) -> None:
    """Raise OffProdPath unless each of `paths` (absolute; symlinks as links) holds exactly
    what HEAD has for it.

    git's status cannot see everything that ships: a file git ignores, or one marked
    assume-unchanged, reads as clean. Comparing each file's bytes with HEAD's blob can.
    """
    top = Path((_git(root, what, "rev-parse", "--show-toplevel") or "").strip() or root)
    listing = _git(root, what, "ls-tree", "-r", "-z", "--full-tree", "HEAD") or ""
    committed = {}
    for entry in filter(None, listing.split("\0")):
        meta, _, name = entry.partition("\t")
        committed[name] = meta.split()[2]
    wrong = []
    for path in paths:
        name = path.relative_to(top.resolve()).as_posix()
        content = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
        blob = hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False)
        if name not in committed:
            wrong.append(f"{name} (untracked or ignored by git)")
        elif committed[name] != blob.hexdigest():
            wrong.append(f"{name} (differs from the commit)")
    if wrong:
        shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise OffProdPath(
            f"{what} deploys only what is committed, and {len(wrong)} file(s) are not: {shown};"
            f" commit or remove them (or run `make {what} FORCE=1` if you must)"
        )


def _git(root: Path, what: str, *args: str) -> str | None:
    """git's answer; None when `root` is not in a repository. Any other failure stops."""
    override = f"(or run `make {what} FORCE=1` if you must)"
    try:
        answer = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise OffProdPath(
            f"{what} checks the checkout with git, and git is not installed (or not on PATH):"
            f" install it {override}"
        ) from None
    if answer.returncode == 0:
        return answer.stdout
    if "not a git repository" in answer.stderr:
        return None
    said = next(iter(answer.stderr.strip().splitlines()), f"exit status {answer.returncode}")
    raise OffProdPath(
        f"{what} cannot tell whether this checkout is clean: git says: {said}; fix the"
        f" checkout {override}"
    )
