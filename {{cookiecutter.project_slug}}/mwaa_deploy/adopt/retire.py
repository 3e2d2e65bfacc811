"""`make retire-unprefixed [DELETE=1]`: the old copies of adopted DAG files that the bucket
still holds under their own names (`dags/orders.py`, from before the convention), listed;
with DELETE=1, deleted.

A key is retired only if it is exactly such a copy: directly in dags/, named as a DAG file
of bucket_contents/dags/, owned by no owner (DEV_, PROD_ and the sandboxes' keys are never
touched), and holding bytes that git has committed for that file. Anything else under an
adopted file's name is listed with the command to delete it by hand after a look.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from mwaa_deploy import config
from mwaa_deploy.bucket.buckets import Bucket
from mwaa_deploy.exceptions import OwnershipError
from mwaa_deploy.owners import owner_of_key


def plan(settings: config.Settings, bucket: Bucket) -> tuple[list[str], list[str]]:
    """(keys that are committed copies of adopted DAG files, keys under their names that
    are not)."""
    names = {p.name for p in (settings.sources / "dags").glob("*.py")}
    listed = bucket.list("dags/")
    retire, keep = [], []
    for key in sorted(k for k in listed if k.count("/") == 1 and k[len("dags/") :] in names):
        if owner_of_key(key) is not None:
            continue  # a DAG file named like an owner's copy (DEV_x.py): not an old copy
        source = settings.sources / "dags" / key[len("dags/") :]
        body = bucket.get(key)
        if body is not None and _blob(body) in committed_blobs(settings.root, source):
            retire.append(key)
        else:
            keep.append(key)
    return retire, keep


def delete(bucket: Bucket, keys: list[str]) -> None:
    for key in keys:
        # The same owner rule as every deploy: an owner's key is never deleted here.
        if owner_of_key(key) is not None or key.count("/") != 1:
            raise OwnershipError(f"refusing to delete {key!r}: not an old un-prefixed DAG file")
    bucket.delete(keys)


def committed_blobs(root: Path, source: Path) -> set[str]:
    """The git blob ids `source` has had in any commit of the repository."""
    relative = source.relative_to(root).as_posix()
    done = subprocess.run(
        ["git", "log", "--all", "--format=", "--raw", "--no-abbrev", "--", relative],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    blobs = set()
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and line.startswith(":"):
            blobs |= {fields[2], fields[3]}
    return blobs


def _blob(body: bytes) -> str:
    """The id git gives a file holding `body`."""
    return hashlib.sha1(b"blob %d\0" % len(body) + body, usedforsecurity=False).hexdigest()
