"""Sandboxes: each story branch's own DEV copy, in the same bucket and the same Airflow.

Which owner a DEV command is for (on a story branch its sandbox, on the default branch the
shared DEV), what a sandbox holds (what its branch changes since it left the default
branch, unless the whole project is asked for), and which sandboxes a bucket holds.
"""

from __future__ import annotations

import ast
import getpass
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mwaa_deploy import config, history, owners
from mwaa_deploy.exceptions import SandboxError, StampError
from mwaa_deploy.stamp import Tree, read_text, scan

if TYPE_CHECKING:
    from mwaa_deploy.buckets import Bucket

HEAD, OID = "# branch.head ", "# branch.oid "
GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Checkout:
    """What git says of the project: its branch ("" on a detached HEAD) and commit, with a
    `+` when files differ from it; both "" outside a repository or without git."""

    branch: str = ""
    commit: str = ""

    @property
    def in_git(self) -> bool:
        return bool(self.commit)


@dataclass(frozen=True)
class Selection:
    """What a sandbox holds: the source files to ship (`x.py`, `common/y.py`), the DAG files
    among them, and the project's other DAG files, which it leaves out."""

    names: frozenset[str]
    dag_files: tuple[str, ...]
    left_out: tuple[str, ...]


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
    # What git says, where the owner depends on it (DEV); PROD leaves it to the deploy.
    here: Checkout | None
    # A sandbox: the branch (or SANDBOX's name) it is for, without the story prefix, and
    # whole: the sandbox belongs to that full name, never to one that only reads like it.
    sandbox_for: str = ""
    belongs_to: str = ""
    # A sandbox's part of the project (None: all of it) and what to say about it.
    only: frozenset[str] | None = None
    notes: tuple[str, ...] = ()


def target(settings: config.Settings, env: str, full: bool = False) -> Target:
    """PROD, or for DEV: the sandbox SANDBOX names, the branch's sandbox, or the shared DEV.

    A sandbox holds what its branch changes since it left the default branch, unless
    `full` asks for the whole project.
    """
    if env == "PROD":
        return Target("PROD", None)
    here = checkout(settings.root)
    given = config.variable("SANDBOX") or ""
    owner = dev_owner(settings, here, given)
    if not owners.is_sandbox(owner):
        alone = () if here.in_git else ("No git here: this deploys the shared DEV.",)
        return Target(owner, here, notes=alone)
    name, origin = owners.sandbox_name(owner), f"SANDBOX={given}" if given else here.branch
    belongs_to = given or here.branch
    sandbox_for = belongs_to.removeprefix(branch_prefix(settings.dev_branch_pattern))
    base, why_all = merge_base(settings.root, here, settings.default_branch)
    if full or not base:
        note = f"Sandbox {name} ({origin}): every DAG file" + ("" if full else f", as {why_all}")
        return Target(owner, here, sandbox_for, belongs_to, None, (note,))
    sources = config.shown(settings.sources)
    changed = changed_paths(settings.root, base)
    selection = select(sources, changed)
    total = len(selection.dag_files) + len(selection.left_out)
    notes = (
        f"Sandbox {name} ({origin}): {len(selection.dag_files)} of {total} DAG files, those"
        f" this branch changes since {settings.default_branch}; FULL=1 deploys every one",
        *references_left_out(sources, selection),
    )
    return Target(owner, here, sandbox_for, belongs_to, selection.names, notes)


def checkout(root: Path) -> Checkout:
    """The branch and commit the project is on (one git call)."""
    status = _git(root, "status", "--porcelain=v2", "--branch")
    if status is None:
        return Checkout()
    lines = status.splitlines()
    head = next((line[len(HEAD) :] for line in lines if line.startswith(HEAD)), "")
    commit = next((line[len(OID) :] for line in lines if line.startswith(OID)), "")
    if commit == "(initial)":
        commit = "none yet"
    changed = any(not line.startswith("#") for line in lines)
    return Checkout("" if head == "(detached)" else head, commit + ("+" if changed else ""))


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


def about_this_deploy(chosen: Target, here: Checkout, identity: str = "") -> history.About:
    """What the record of a deploy of `chosen` says of it; `identity`: the AWS identity
    it runs as."""
    actor = os.environ.get("GITHUB_ACTOR")
    by = f"{actor} (GitHub Actions)" if actor else f"{getpass.getuser()}@{socket.gethostname()}"
    sandbox = {"sandbox_for": chosen.sandbox_for, "belongs_to": chosen.belongs_to}
    return {
        **(sandbox if chosen.belongs_to else {}),
        "branch": here.branch,
        "commit": here.commit,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "by": by,
        **({"identity": identity} if identity else {}),
    }


def merge_base(root: Path, here: Checkout, default_branch: str) -> tuple[str, str]:
    """The commit where this branch left the default branch, or "" and why there is none
    to compare with; on the default branch itself (a sandbox named by SANDBOX) there is
    nothing to compare: the sandbox gets every DAG file of this checkout."""
    if not here.in_git:
        return "", "there is no git here to tell what changed"
    if here.branch == default_branch:
        return "", f"{default_branch} itself changes nothing since {default_branch}"
    for ref in (f"origin/{default_branch}", default_branch):
        if _git(root, "rev-parse", "--verify", "--quiet", ref + "^{commit}") is not None:
            base = (_git(root, "merge-base", "HEAD", ref) or "").strip()
            return base, "" if base else (
                f"git cannot tell where this branch left {ref} (a shallow clone, or unrelated"
                " history: `git fetch --unshallow` tells it)"
            )
    return "", f"there is no {default_branch} branch here to compare with"


def changed_paths(root: Path, base: str) -> frozenset[Path]:
    """The files under bucket_contents/ that differ from the commit `base`: committed,
    staged, edited or new."""
    where = ("--", "bucket_contents")
    diff = _git(root, "diff", "--name-only", "-z", "--no-renames", "--relative", base, *where)
    new = _git(root, "ls-files", "-z", "--others", "--exclude-standard", *where)
    names = filter(None, f"{diff}\0{new}".split("\0"))
    return frozenset((root / name).absolute() for name in names)


def select(sources: Path, changed: frozenset[Path]) -> Selection:
    """The part of the project a sandbox holds: the DAG files the branch added or edited,
    those that import (at any depth) a helper module it edited, and the helper packages
    those DAG files import, whole."""
    tree = scan(sources)
    resolved = {path.resolve() for path in changed}
    edited = {
        name
        for name, path in tree.files.items()
        if path.absolute() in changed or tree.real[name] in resolved
    }
    dags_folder = (sources / "dags").absolute()
    # A change to a package that no module import can pin down (a deleted or data file)
    # counts for every module of the package.
    whole_packages = {
        path.relative_to(dags_folder).parts[0]
        for path in changed
        if path.is_relative_to(dags_folder)
        and len(path.relative_to(dags_folder).parts) > 1
        and (path.suffix != ".py" or not path.exists())
    }
    graph = _ImportGraph(tree)
    dag_files = sorted(name for name in tree.files if "/" not in name)
    helpers_changed = whole_packages or any("/" in name for name in edited)
    chosen = []
    for dag in dag_files:
        if dag in edited:
            chosen.append(dag)
        elif helpers_changed:
            helpers = graph.closure(dag)
            packages = {helper.split("/")[0] for helper in helpers}
            if helpers & edited or packages & whole_packages:
                chosen.append(dag)
    packages = {helper.split("/")[0] for dag in chosen for helper in graph.closure(dag)}
    names = set(chosen) | {name for name in tree.files if name.split("/")[0] in packages}
    left_out = tuple(name for name in dag_files if name not in chosen)
    return Selection(frozenset(names), tuple(chosen), left_out)


def references_left_out(sources: Path, selection: Selection) -> list[str]:
    """A line for each DAG the sandbox leaves out that a DAG file of it names, as in
    `trigger_dag_id=f"{dev_prod_flag}_orders"` with orders.py left out: a heads-up, read
    off the text; the integrity tests check the references Airflow actually sees."""
    stems = {name.removesuffix(".py"): name for name in selection.left_out}
    if not stems:
        return []
    named = re.compile(r"\}_(" + "|".join(map(re.escape, stems)) + r")\b")
    naming: dict[str, list[str]] = {}
    for dag in selection.dag_files:
        try:
            text = read_text(sources / "dags" / dag)
        except (OSError, StampError):
            continue  # the stamp reports it
        for found in set(named.findall(text)):
            naming.setdefault(stems[found], []).append(dag)
    lines = []
    for left_out, files in sorted(naming.items()):
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        lines.append(
            f"  note: {shown} name(s) the DAG of {left_out}, which the sandbox leaves out:"
            " a trigger of it or a wait for it fails there"
        )
    return lines


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


class _ImportGraph:
    """Which helper files a module imports, directly or through other helper modules."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.modules = {
            _dotted(name): name for name in tree.files if "/" in name and name.endswith(".py")
        }
        self.known: dict[str, frozenset[str]] = {}

    def closure(self, name: str) -> frozenset[str]:
        """The helper files `name` reaches through imports."""
        if name not in self.known:
            self.known[name] = frozenset()  # an import cycle ends here
            reached = set(self._direct(name))
            for helper in list(reached):
                reached |= self.closure(helper)
            self.known[name] = frozenset(reached)
        return self.known[name]

    def _direct(self, name: str) -> Iterator[str]:
        try:
            module = ast.parse(read_text(self.tree.files[name]))
        except (SyntaxError, ValueError, OSError, StampError):
            return  # the stamp reports it
        package = _dotted(name).split(".")
        if not name.endswith("__init__.py"):
            package = package[:-1]
        for node in ast.walk(module):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module_name = ".".join([*base, *filter(None, [node.module])])
                wanted = [module_name] + [f"{module_name}.{alias.name}" for alias in node.names]
            else:
                continue
            for dotted in wanted:
                parts = dotted.split(".")
                for end in range(1, len(parts) + 1):
                    if found := self.modules.get(".".join(parts[:end])):
                        yield found


def _dotted(name: str) -> str:
    """`common.conventions` for common/conventions.py; `common` for common/__init__.py."""
    return name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _git(root: Path, *args: str) -> str | None:
    """git's answer, or None where git cannot answer (no repository, no git, no such ref)."""
    try:
        answer = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return None
    return answer.stdout if answer.returncode == 0 else None
