"""Stamped files kept by what decides them, so that a stamp redoes only what changed.

A stamped file is a function of its source text, its kind (DAG file or helper module), the
owner, the project's helper packages and this tool's code; the key is a hash of all of
them. Only files that passed every check are kept, so a cached file is one a full stamp
would give, byte for byte. Each owner has a file of its own in build/.stamp-cache/, holding
what its last stamp used: it never grows beyond one stamp's worth.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

FOLDER = ".stamp-cache"
# The modules whose code decides a stamped file: a change to any of them empties the cache.
PACKAGE = Path(__file__).parent.parent
DECIDING = ("stamping/stamp.py", "stamping/sources.py", "stamping/run_time_rules.py", "owners.py")
CODE = hashlib.sha256(
    b"".join((PACKAGE / name).read_bytes() for name in (*DECIDING, "stamping/stamp_cache.py"))
).hexdigest()


class StampCache:
    """The stamped files of one owner, read from and written to `build`; None: none kept."""

    def __init__(self, build: Path | None, owner: str) -> None:
        self.path = build / FOLDER / f"{owner}.json" if build else None
        self.owner = owner
        self.kept: dict[str, str] = {}
        self.used: dict[str, str] = {}
        if self.path is None:
            return
        with contextlib.suppress(OSError, ValueError):
            found = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(found, dict):
                self.kept = {k: v for k, v in found.items() if isinstance(v, str)}

    def key(self, kind: str, source: str, helper_packages: frozenset[str]) -> str:
        parts = [CODE, kind, self.owner, *sorted(helper_packages), source]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def get(self, key: str) -> str | None:
        text = self.kept.get(key)
        if text is not None:
            self.used[key] = text
        return text

    def put(self, key: str, text: str) -> None:
        self.used[key] = text

    def save(self) -> None:
        """Keep what this stamp used, whole or not at all; a cache that cannot be written
        only makes the next stamp slower."""
        if self.path is None or self.used == self.kept:
            return
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Ignored by git wherever it lies, as pytest's cache is: git status stays clean,
            # which the PROD path asks for.
            ignore = self.path.parent / ".gitignore"
            if not ignore.is_file():
                ignore.write_text("# A cache of the stamp's, never committed.\n*\n")
            partial.write_text(json.dumps(self.used), encoding="utf-8")
            partial.replace(self.path)
