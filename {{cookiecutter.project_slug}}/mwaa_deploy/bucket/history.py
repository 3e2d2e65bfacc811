"""History: what each deploy of an owner left in the bucket, and the deploy a rollback restores.

Every deploy that changes something ends by writing its record, `dags/<owner>_.deployed.json`,
the last object it writes: where the deploy came from (branch, commit, time, who), what
it changed, and for every key the owner then holds, the SHA-256 of the content, the ETag
and the object version the bucket gave it, and the source key of its stamp. The bucket
keeps every version of the record, as MWAA's versioned bucket keeps every version of
every object: the record's versions, newest first, are the owner's history, and the
object versions one of them names are that deploy's exact files. The id of a deploy is
the version id of its record.

The record also lets syncing recognise content whose ETag is not an MD5 (SSE-KMS,
multipart uploads; see sync.plan). A stamped file can never have its name: stamping
skips hidden source files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from mwaa_deploy.exceptions import HistoryError
from mwaa_deploy.owners import owns, prefix

if TYPE_CHECKING:
    from mwaa_deploy.bucket.buckets import Bucket

RECORD_NAME = ".deployed.json"
# Records of this form list every file of their deploy with its version; older ones listed
# only the files whose ETag is not an MD5.
RECORD_SCHEMA = 2
# Requests at once when reading many objects: as many as a deploy's uploads.
READ_THREADS = 16
# The characters of a deploy's id shown, and the fewest a rollback takes: enough to tell
# deploys apart, and to make a typo name none rather than another.
SHORT_ID = 12
FEWEST_ID_CHARACTERS = 6

# key -> {"sha256": ..., "etag": ..., "version": ..., "source": ...}: the content a key
# held, the ETag and the version the bucket gave it, and the source key of its stamp
# (stamp_cache.py; "" in records older than it).
Objects = dict[str, dict[str, str]]
OBJECT_FIELDS = ("sha256", "etag", "version", "source")
# Where a deploy came from: "branch", "commit", "time", "by" (older records: "identity",
# the AWS identity it ran as, which cost every deploy a request); for a sandbox
# "belongs_to" (the full branch name or SANDBOX's text it is for) and "sandbox_for" (the
# same without the story prefix) and "left_at" (the commit where its branch left the
# default branch); for a rollback "rollback_to", the id of the deploy it restored. A `+`
# after "commit": edits under bucket_contents/ that no commit holds.
About = dict[str, str]

_T = TypeVar("_T")
_R = TypeVar("_R")


def record_key(owner: str) -> str:
    return prefix(owner) + RECORD_NAME


@dataclass(frozen=True)
class Deploy:
    """One deploy of an owner, as its record tells it."""

    id: str
    about: About
    changes: str
    objects: Objects
    lists_every_file: bool

    @property
    def short_id(self) -> str:
        return self.id[:SHORT_ID]


def origin(about: About) -> str:
    """`2026-11-28 19:33:34  story/ann @ 0a551ae4+` (+: with uncommitted edits), from a
    deploy's record."""
    if "time" not in about:
        return "no record of its deploys"
    branch = about.get("branch") or "no branch"
    branch = branch if len(branch) <= 40 else branch[:39] + "…"
    commit = about.get("commit", "")
    when = about["time"].replace("T", " ").removesuffix("Z")
    return f"{when}  {branch} @ {commit[:8]}{'+' if commit.endswith('+') else ''}"


def document(about: About, changes: str, objects: Objects) -> bytes:
    """The record of a deploy, as the bucket keeps it."""
    record = {
        "about": "Written by mwaa_deploy at the end of each deploy that changed something:"
        " where it came from, and the content, ETag and version of each file it left.",
        "schema": RECORD_SCHEMA,
        "deploy": about,
        "changes": changes,
        "objects": dict(sorted(objects.items())),
    }
    # Not indented: json's fast encoder then writes it, which matters at thousands of files.
    return json.dumps(record).encode() + b"\n"


def read_record(bucket: Bucket, key: str, version: str = "") -> dict[str, Any] | None:
    """The record at `key` (at `version`) as JSON; {} where it cannot be understood, None
    where there is none."""
    body = bucket.get(key, version)
    if body is None:
        return None
    try:
        record = json.loads(body)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def read(bucket: Bucket, owner: str, version: str = "") -> Deploy | None:
    """The owner's last deploy (or the one whose record is `version`); None when there is
    no record. A record that cannot be understood reads as a deploy of unknown origin
    with no objects: syncing then re-uploads what it cannot recognise."""
    record = read_record(bucket, record_key(owner), version)
    if record is None:
        return None
    about, objects = record.get("deploy"), record.get("objects")
    return Deploy(
        id=version,
        about={str(k): str(v) for k, v in about.items()} if isinstance(about, dict) else {},
        changes=str(record.get("changes", "")),
        objects=_objects(objects) if isinstance(objects, dict) else {},
        lists_every_file=record.get("schema") == RECORD_SCHEMA and isinstance(objects, dict),
    )


def deploy_ids(bucket: Bucket, owner: str) -> list[str]:
    """The ids of the owner's recorded deploys, newest first."""
    return bucket.versions(record_key(owner))


def recent(bucket: Bucket, owner: str, count: int) -> list[Deploy]:
    """The owner's last `count` deploys, newest first."""
    ids = deploy_ids(bucket, owner)[:count]
    found = concurrently(lambda version: read(bucket, owner, version), ids)
    return [deploy for deploy in found.values() if deploy is not None]


def differences(files: dict[str, str], deploy: Deploy) -> list[str]:
    """The keys where `files`, an owner's files in the bucket now (key: ETag, bookkeeping
    left out), differ from what `deploy` left: changed, added or gone since, as by a deploy
    that stopped part way or an edit by hand. A record older than this history does not
    list every file: nothing can be told from it."""
    if not deploy.lists_every_file:
        return []
    left = {key: entry["etag"] for key, entry in deploy.objects.items()}
    return sorted(key for key in files.keys() | left.keys() if files.get(key) != left.get(key))


def choose(bucket: Bucket, owner: str, to: str, holds_last: bool) -> Deploy:
    """The deploy a rollback restores: the one whose id starts with `to`, or by default the
    one before the owner's last where the bucket holds the last one's files (`holds_last`),
    else the last itself: after a clean, a deploy that stopped part way, an edit by hand."""
    ids = deploy_ids(bucket, owner)
    where = bucket.description
    if not ids:
        raise HistoryError(f"no deploy of {owner} is recorded in {where}: nothing to roll back to")
    listing = f"make history-{'prod' if owner == 'PROD' else 'dev'}"
    if to:
        chosen = by_start(ids, to, (f"deploy of {owner}", f"deploys of {owner}"), where, listing)
    else:
        if len(ids) < 2 and holds_last:
            raise HistoryError(
                f"{owner} has one recorded deploy in {where}, its current one: nothing before"
                " it to roll back to"
            )
        chosen = ids[1] if holds_last else ids[0]
    deploy = read(bucket, owner, chosen)
    if deploy is None:
        raise HistoryError(f"the record of deploy {chosen[:SHORT_ID]} of {owner} is gone")
    return deploy


def by_start(ids: list[str], to: str, what: tuple[str, str], where: str, listing: str) -> str:
    """The one id that starts with `to`, of the ids of `what` (("deploy of PROD", "deploys of
    PROD")) in `where`."""
    matching = [version for version in ids if version.startswith(to)]
    if not matching:
        raise HistoryError(
            f"no {what[0]} in {where} has an ID starting with {to!r}: {listing} lists them"
        )
    if len(to) < FEWEST_ID_CHARACTERS:
        raise HistoryError(
            f"TO={to!r} is too short to name a deploy safely: give at least"
            f" {FEWEST_ID_CHARACTERS} characters of the ID that {listing} shows"
        )
    if len(matching) > 1:
        shown = ", ".join(shown_ids(matching[:5]).values())
        raise HistoryError(
            f"{len(matching)} {what[1]} have an ID starting with {to!r} ({shown}):"
            " give more of the one you mean"
        )
    return matching[0]


def shown_ids(ids: Iterable[str]) -> dict[str, str]:
    """Each id as a listing shows it: its first SHORT_ID characters, or as many more as
    tell it from the others of `ids` that begin alike."""
    ordered = sorted(set(ids))
    shared = [len(os.path.commonprefix(pair)) for pair in zip(ordered, ordered[1:], strict=False)]
    shown = {}
    for n, version in enumerate(ordered):
        alike = max(shared[n - 1] if n else 0, shared[n] if n < len(shared) else 0)
        shown[version] = version[: max(SHORT_ID, alike + 1)]
    return shown


def files_from(deploy: Deploy) -> str:
    """Where a deploy's files come from, `main @ 0a551ae4`: for a rollback, the deploy
    it put back (and so on, down to the deploy that built them)."""
    return files_of(deploy.about)


def files_of(about: About) -> str:
    """files_from, for any record's `about` (a deploy's, a deploy-requirements run's); a
    `+` after the commit: with edits no commit holds."""
    if "files_from" in about:
        return about["files_from"]
    commit = about.get("commit", "")
    shown = f"{commit[:8]}{'+' if commit.endswith('+') else ''}"
    return f"{about.get('branch') or 'no branch'} @ {shown or 'no commit'}"


def contents(bucket: Bucket, owner: str, deploy: Deploy) -> dict[str, bytes]:
    """The exact files of a deploy, read back by their versions and checked by their hash."""
    if not deploy.lists_every_file or not all(e["version"] for e in deploy.objects.values()):
        raise HistoryError(
            f"the record of deploy {deploy.short_id} of {owner} does not list its files with"
            " their versions (it is unreadable, or older than this tool's history): roll back"
            " to a later deploy"
        )
    foreign = sorted(key for key in deploy.objects if not owns(owner, key))
    if foreign:
        raise HistoryError(
            f"the record of deploy {deploy.short_id} of {owner} lists {foreign[0]!r}, which"
            f" {owner} does not own: it was not written by this tool; nothing was changed"
        )
    bodies = concurrently(
        lambda key: bucket.get(key, deploy.objects[key]["version"]), deploy.objects
    )
    for key, body in bodies.items():
        if body is None:
            raise HistoryError(
                f"{key} of deploy {deploy.short_id} is gone from {bucket.description} (a"
                " lifecycle rule may expire old versions): nothing was changed; roll back to a"
                " later deploy"
            )
        if hashlib.sha256(body).hexdigest() != deploy.objects[key]["sha256"]:
            raise HistoryError(
                f"{key} of deploy {deploy.short_id} does not hold what the deploy recorded:"
                " nothing was changed"
            )
    return {key: body for key, body in bodies.items() if body is not None}


def concurrently(work: Callable[[_T], _R], items: Iterable[_T]) -> dict[_T, _R]:
    """`work` on each item, READ_THREADS at a time; the first failure is raised."""
    items = list(items)
    if len(items) < 2:
        return {item: work(item) for item in items}
    pool = ThreadPoolExecutor(min(READ_THREADS, len(items)))
    try:
        return dict(zip(items, pool.map(work, items), strict=True))
    finally:
        # On a failure or Ctrl-C, start nothing more and do not wait for what runs: each
        # request ends within the SDK's timeouts.
        pool.shutdown(wait=False, cancel_futures=True)


def _objects(found: dict[Any, Any]) -> Objects:
    """A record's objects; an entry missing a field reads as one the bucket must confirm."""
    return {
        str(key): {field: str(entry.get(field, "")) for field in OBJECT_FIELDS}
        for key, entry in found.items()
        if isinstance(entry, dict)
    }


def origin_line(deploy: Deploy) -> str:
    """When, from where and by whom, as the record of the deploy says."""
    if not deploy.about:
        return "(its record cannot be read)"
    who = deploy.about.get("identity") or deploy.about.get("by", "")
    return f"{origin(deploy.about)}  {who}"


def changes_line(deploy: Deploy) -> str:
    """What it changed; for a rollback, also whose files it put back."""
    restored = deploy.about.get("rollback_to", "")
    if not restored:
        return deploy.changes
    files = deploy.about.get("files_from", "")
    whose = f", files of {files}" if files else ""
    return f"rollback to {restored[:SHORT_ID]}{whose}: {deploy.changes}"
