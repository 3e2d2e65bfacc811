"""The PROD path: what changes the shared instance runs from the default branch, committed;
a rollback, which ships nothing of the checkout, from the default branch.

A deploy from a story branch or from uncommitted edits would put code into the instance
that nobody reviewed and that the next deploy from the default branch silently undoes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from mwaa_deploy.exceptions import OffProdPath
from mwaa_deploy.stamp import is_source_name

HEAD = "# branch.head "
# The one command that needs check_committed: the others ship no DAG file.
WHAT = "deploy-prod"


def check_prod_path(root: Path, default_branch: str, what: str) -> None:
    """Raise OffProdPath unless `root` is a clean checkout of `default_branch`."""
    lines = _status_on(root, default_branch, what, "merge first")
    changes = [line for line in lines if not line.startswith("#")]
    if changes:
        raise OffProdPath(
            f"{what} runs from committed code, and {len(changes)} file(s) have uncommitted"
            f" changes (git status); commit or stash them (or run `make {what} FORCE=1` if"
            " you must)"
        )


def check_default_branch(root: Path, default_branch: str, what: str) -> None:
    """Raise OffProdPath unless `root` is a checkout of `default_branch`, clean or not: for
    a command that changes PROD with nothing of the checkout (a rollback)."""
    _status_on(root, default_branch, what, f"git switch {default_branch}")


def _status_on(root: Path, default_branch: str, what: str, advice: str) -> list[str]:
    """git's status of `root`, once it is known to be a checkout of `default_branch`.

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
            f" {advice} (or run {override} if you must)"
        )
    return lines


def check_committed(root: Path, sources: Path, paths: list[Path]) -> None:
    """Raise OffProdPath unless the files a PROD deploy reads, `paths` (absolute, symlinks
    as links), are exactly what HEAD has for them, and HEAD has no DAG file they lack.

    git's status cannot see everything that ships: a file git ignores, one marked
    assume-unchanged, or one a sparse checkout left out reads as clean. Comparing each
    file with HEAD's blob, as git would store it (its filters and line endings applied), can.
    """
    top = Path((_git(root, WHAT, "rev-parse", "--show-toplevel") or "").strip() or root).resolve()
    committed = _committed_blobs(top)
    # Text, not Path methods: this runs on every file of every PROD deploy.
    under = f"{top}{os.sep}"
    names = {path: str(path)[len(under) :] for path in paths if str(path).startswith(under)}
    wrong = [f"{path} (outside the repository)" for path in paths if path not in names]
    for name, blob in _worktree_blobs(top, names).items():
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


def _committed_blobs(top: Path) -> dict[str, str]:
    """Every file HEAD holds, by path from the repository's top: its blob's id."""
    listing = _git(top, WHAT, "ls-tree", "-r", "-z", "HEAD") or ""
    entries = (entry.partition("\t") for entry in filter(None, listing.split("\0")))
    return {name: meta.split()[2] for meta, _, name in entries}


def _worktree_blobs(top: Path, names: dict[Path, str]) -> dict[str, str]:
    """The blob id git would give each file as it is now: through git's own filters for a
    file, from the link's text for a symlink (as git stores one)."""
    files = [name for path, name in names.items() if not path.is_symlink()]
    hashed = (_git(top, WHAT, "hash-object", "--stdin-paths", feed="\n".join(files)) or "").split()
    blobs = dict(zip(files, hashed, strict=True))
    for path, name in names.items():
        if path.is_symlink():
            link = os.readlink(path).encode()
            blob = hashlib.sha1(b"blob %d\0" % len(link) + link, usedforsecurity=False)
            blobs[name] = blob.hexdigest()
    return blobs


def _git(root: Path, what: str, *args: str, feed: str = "") -> str | None:
    """git's answer (given `feed` on its input); None when `root` is not in a repository.
    Any other failure stops."""
    override = f"(or run `make {what} FORCE=1` if you must)"
    try:
        answer = subprocess.run(
            ["git", "-C", str(root), *args],
            input=feed,
            capture_output=True,
            text=True,
            check=False,
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
