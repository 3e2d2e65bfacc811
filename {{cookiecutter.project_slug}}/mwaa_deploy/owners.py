"""Owners: who owns which keys of the bucket's shared dags/ folder.

An owner is PROD, DEV, or the DEV sandbox of one story branch, `SBX_<name>`. It owns the
keys `dags/<owner>_*` and nothing else, and the same prefix starts its DAG ids, task ids
and tags. A sandbox name is lowercase letters and digits only, never `_`: so no owner's
prefix `dags/<owner>_` is the start of another's (`dags/DEV_` cannot swallow a sandbox's
keys, nor `dags/SBX_ali_` those of `SBX_alice`), and `SBX_<name>_common` stays a Python
identifier for the sandbox's copy of a helper package.

A sandbox runs with DEV's settings: its files keep `DEV = True`.
"""

from __future__ import annotations

import hashlib
import re

ENVIRONMENTS = ("DEV", "PROD")
SANDBOX = "SBX"
# Short, so a sandbox's prefix leaves room within Airflow's 250 characters for DAG ids.
NAME_LENGTH = 20
LOCK_NAME = ".lock"
# The record of the instance-wide files' deploys (instance/instance_history.py): under
# PROD's prefix, since only PROD's path and role change those files; no stamped file can
# have its name (stamping skips hidden sources), and PROD's DAG deploys leave it alone.
INSTANCE_RECORD = "dags/PROD_.instance.deployed.json"
OWNER = re.compile(f"DEV|PROD|{SANDBOX}_[a-z0-9]+")


def is_owner(text: str) -> bool:
    return bool(OWNER.fullmatch(text)) and len(text) <= len(SANDBOX) + 1 + NAME_LENGTH


def check_owner(owner: str) -> str:
    if not is_owner(owner):
        raise ValueError(f"unknown owner {owner!r}: DEV, PROD or {SANDBOX}_<name>")
    return owner


def environment_of(owner: str) -> str:
    """The environment whose settings an owner's DAGs run with: a sandbox runs as DEV."""
    return "PROD" if check_owner(owner) == "PROD" else "DEV"


def is_sandbox(owner: str) -> bool:
    return check_owner(owner).startswith(f"{SANDBOX}_")


def prefix(owner: str) -> str:
    """The start of every key the owner owns."""
    return f"dags/{check_owner(owner)}_"


def lock_key(owner: str) -> str:
    """The key that holds the owner's lock while one of its deploys runs (bucket/s3_lock.py)."""
    return prefix(owner) + LOCK_NAME


def owns(owner: str, key: str) -> bool:
    """The key is the owner's: under its prefix, and no `..` leads out of it."""
    return key.startswith(prefix(owner)) and "/../" not in f"/{key}/"


def sandbox_of(text: str, branch_prefix: str = "") -> str:
    """The sandbox owner for a branch name, or for a name given by hand: `story/Alice-2`
    with the branch prefix `story/` is `SBX_alice2`. Stable: the same text always gives the
    same sandbox. Two branches that read alike (`story/a-b`, `story/a_b`; `story/ann`, `ann`)
    give one name; the deploy refuses the second branch (see bucket/claims.py). A
    name too long is cut, and keeps a hash of the whole text so that long names sharing a
    start differ."""
    readable = re.sub(r"[^a-z0-9]", "", text.removeprefix(branch_prefix).lower())
    if len(readable) > NAME_LENGTH or not readable:
        digest = hashlib.sha256(text.encode()).hexdigest()
        readable = readable[: NAME_LENGTH - 7] + "x" + digest[:6]
    return f"{SANDBOX}_{readable}"


def sandbox_name(owner: str) -> str:
    """`alice` for the owner `SBX_alice`."""
    return owner.removeprefix(f"{SANDBOX}_")


def owner_of_key(key: str) -> str | None:
    """The owner of a key under dags/, or None when no owner has it (a foreign key)."""
    name = key.removeprefix("dags/")
    if name == key:
        return None
    if name.startswith(f"{SANDBOX}_"):
        owner = "_".join(name.split("_", 2)[:2])
    else:
        owner = name.split("_", 1)[0]
    return owner if is_owner(owner) and name.startswith(f"{owner}_") else None
