"""The shape of a record of the instance-wide files' history (instance_history.py), checked
whole before any of it is used: a record edited by hand, or by anyone who may write the
bucket, must never lead a rollback to write, remove or point MWAA at anything else.
"""

from __future__ import annotations

import re
from typing import Any

from mwaa_deploy.instance.instance_files import INSTANCE_KEYS

SHA256 = re.compile(r"[0-9a-f]{64}")


def well_formed(record: dict[str, Any], schema: int) -> bool:
    """Whether `record` is of the form the `schema` deploy-requirements writes: every field
    a run is read from of its type, and files named only among the instance-wide ones."""
    changed, objects, update = record.get("changed"), record.get("objects"), record.get("update")
    return (
        record.get("schema") == schema
        and _strings(record.get("deploy"))
        and isinstance(changed, list)
        and all(isinstance(key, str) and key in INSTANCE_KEYS for key in changed)
        and isinstance(objects, dict)
        and bool(objects)
        and all(key in INSTANCE_KEYS and _entry(entry) for key, entry in objects.items())
        and _strings(update)
        and isinstance(update.get("status"), str)
    )


def _entry(entry: Any) -> bool:
    """A file's entry: the object version it was at, and the SHA-256 of its content."""
    return (
        _strings(entry)
        and bool(entry.get("version"))
        and SHA256.fullmatch(entry.get("sha256", "")) is not None
    )


def _strings(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )
