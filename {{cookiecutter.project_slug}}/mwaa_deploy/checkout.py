"""What git says of the project: read once per command, passed down, never asked again.

One `git status` gives the branch, the commit, the changed files and the untracked ones.
What only some commands need (where a story branch left the default branch, what it
changed since, the index's blobs for the PROD path) is asked for when it is first needed, once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

HEAD, OID = "# branch.head ", "# branch.oid "
# Why a checkout can be unreadable, besides what git itself says.
NO_GIT, NO_REPOSITORY = "git is not installed (or not on PATH)", "not in a git repository"


@dataclass(frozen=True)
class Checkout:
    """The project at `root` as git sees it.

    branch: "" on a detached HEAD; commit: HEAD's id, with a `+` when files differ from it
    ("none yet" before the first commit). Outside a repository, or without git, both are ""
    and `unreadable` says why: NO_GIT, NO_REPOSITORY, or git's own words.
    """

    root: Path
    branch: str = ""
    commit: str = ""
    changes: tuple[str, ...] = ()  # git status's lines of changed files
    untracked: tuple[str, ...] = ()  # paths from `root`, each file (not its folder)
    unreadable: str = ""
    _asked: dict[tuple[str, ...], str | None] = field(default_factory=dict, compare=False)

    @property
    def in_git(self) -> bool:
        return bool(self.commit)

    @classmethod
    def read(cls, root: Path) -> Checkout:
        """The checkout at `root`, in one git call."""
        answer = _git(root, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all")
        if isinstance(answer, str):
            return cls(root, unreadable=answer)
        if _ignored_by_the_repository_around(root):
            return cls(root, unreadable=NO_REPOSITORY)
        head = commit = ""
        changes, untracked = [], []
        entries = iter(answer.stdout.split("\0"))
        for entry in entries:
            if entry.startswith(HEAD):
                head = entry[len(HEAD) :]
            elif entry.startswith(OID):
                commit = "none yet" if entry[len(OID) :] == "(initial)" else entry[len(OID) :]
            elif entry and not entry.startswith("#"):
                changes.append(entry)
                if entry.startswith("? "):
                    untracked.append(entry[2:])
                elif entry.startswith("2 "):
                    next(entries, None)  # a rename's original path, in the next entry
        branch = "" if head == "(detached)" else head
        return cls(root, branch, commit + ("+" if changes else ""), (*changes,), (*untracked,))

    def commit_of(self, folder: str) -> str:
        """HEAD's id as a deploy of `folder` (from `root`) records it: with a `+` where
        files under it differ from HEAD; changes elsewhere reach no bucket."""
        inside = any(_path_of(change).startswith(f"{folder}/") for change in self.changes)
        return self.commit.rstrip("+") + ("+" if inside else "")

    def branch_run_for(self) -> str:
        """The branch this run is for: on GitHub Actions, whose checkout is a detached
        commit, the one the workflow runs for (GITHUB_REF_NAME); else git's."""
        if os.environ.get("GITHUB_ACTIONS") == "true":
            on_branch = os.environ.get("GITHUB_REF_TYPE") == "branch"
            return os.environ.get("GITHUB_REF_NAME", "") if on_branch else ""
        return self.branch

    def merge_base(self, default_branch: str) -> tuple[str, str]:
        """The commit where this branch left the default branch, or "" and why there is
        none to compare with; on the default branch itself (a sandbox named by SANDBOX)
        there is nothing to compare: the sandbox gets every DAG file of this checkout."""
        if not self.in_git:
            return "", "there is no git here to tell what changed"
        if self.branch == default_branch:
            return "", f"{default_branch} itself changes nothing since {default_branch}"
        for ref in (f"origin/{default_branch}", default_branch):
            if self.ask("rev-parse", "--verify", "--quiet", ref + "^{commit}") is not None:
                base = (self.ask("merge-base", "HEAD", ref) or "").strip()
                return base, "" if base else (
                    f"git cannot tell where this branch left {ref} (a shallow clone, or"
                    " unrelated history: `git fetch --unshallow` tells it)"
                )
        return "", f"there is no {default_branch} branch here to compare with"

    def changed_since(self, base: str, folder: str) -> frozenset[Path]:
        """The files under `folder` (from `root`) that differ from the commit `base`:
        committed, staged, edited or new."""
        diff = self.ask(
            "diff", "--name-only", "-z", "--no-renames", "--relative", base, "--", folder
        )
        names = [*filter(None, (diff or "").split("\0"))]
        names += [name for name in self.untracked if name.startswith(f"{folder}/")]
        return frozenset((self.root / name).absolute() for name in names)

    def top(self) -> Path:
        """The repository's top folder (the project's root may be below it)."""
        return Path((self.ask("rev-parse", "--show-toplevel") or "").strip() or self.root).resolve()

    def indexed(self) -> dict[str, tuple[str, str]]:
        """Every file git's index holds, by path from the repository's top: its tag as `git
        ls-files -v` gives it (`H`; `S` where a sparse checkout leaves it out; lowercase
        where marked assume-unchanged) and its blob's id."""
        listing = self.ask("-C", str(self.top()), "ls-files", "-s", "-v", "-z") or ""
        entries = (entry.partition("\t") for entry in filter(None, listing.split("\0")))
        fields = ((meta.split(), name) for meta, _, name in entries)
        return {name: (meta[0], meta[2]) for meta, name in fields}

    def worktree_blobs(self, names: dict[Path, str]) -> dict[str, str]:
        """The blob id git would give each file (`names`: path -> its name from the top) as
        it is now: through git's own filters for a file, from the link's text for a
        symlink (as git stores one)."""
        files = [name for path, name in names.items() if not path.is_symlink()]
        feed = "\n".join(files)
        asked = ("-C", str(self.top()), "hash-object", "--stdin-paths")
        hashed = (self.ask(*asked, feed=feed) or "") if files else ""
        blobs = dict(zip(files, hashed.split(), strict=True))
        for path, name in names.items():
            if path.is_symlink():
                link = os.readlink(path).encode()
                blob = hashlib.sha1(b"blob %d\0" % len(link) + link, usedforsecurity=False)
                blobs[name] = blob.hexdigest()
        return blobs

    def ask(self, *args: str, feed: str = "") -> str | None:
        """git's answer, asked once; None where git gives none (no such ref, no repository)."""
        question = (*args, feed)
        if question not in self._asked:
            answer = _git(self.root, *args, feed=feed)
            done = not isinstance(answer, str) and answer.returncode == 0
            self._asked[question] = answer.stdout if done else None  # type: ignore[union-attr]
        return self._asked[question]


def _ignored_by_the_repository_around(root: Path) -> bool:
    """Whether the repository `root` is in ignores it and holds none of its files: a project
    baked into an ignored folder (the template's demo/) is in no repository of its own, and
    that repository's branch is not the project's. A project with a .git of its own is at
    its repository's top: git is not asked."""
    if (root / ".git").exists():
        return False
    ignored = _git(root, "check-ignore", "--quiet", ".")
    if isinstance(ignored, str) or ignored.returncode:
        return False
    tracked = _git(root, "ls-files", "-z", "--", ".")
    return not isinstance(tracked, str) and tracked.returncode == 0 and not tracked.stdout


def _path_of(change: str) -> str:
    """The path of a line of `git status --porcelain=v2`: after the fields its kind has."""
    fields = {"1": 8, "2": 9, "u": 10}.get(change[:1], 1)
    parts = change.split(" ", fields)
    return parts[fields] if len(parts) > fields else ""


def _git(root: Path, *args: str, feed: str = "") -> subprocess.CompletedProcess[str] | str:
    """git's answer; or why there is none, in one line, where git is missing, `root` is in
    no repository, or the status itself failed."""
    try:
        answer = subprocess.run(
            ["git", "-C", str(root), *args],
            input=feed,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return NO_GIT
    if answer.returncode and "not a git repository" in answer.stderr:
        return NO_REPOSITORY
    if answer.returncode and args[0] == "status":
        return next(iter(answer.stderr.strip().splitlines()), f"exit status {answer.returncode}")
    return answer
