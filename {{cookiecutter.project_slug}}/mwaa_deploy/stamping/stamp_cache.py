"""Stamped files kept by what decides them, so that a stamp redoes only what changed.

A stamped file is a function of its source text, its kind (DAG file or helper module), the
owner, the project's helper packages and this tool's code; its key (`source_key`) is a
hash of all of them, and a deploy's record keeps it beside each file it left. Only files
that passed every check are kept, so a cached file is one a full stamp would give, byte
for byte. Each is a file of its own, named by its key, in build/.stamp-cache/<owner>/: a
stamp reads and writes only what it needs, and drops what no source gives any more.

Beside them, the source index keeps each source's key by its file's state (file_state.py):
a build reads and hashes only the sources whose file changed since the last build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

FOLDER = ".stamp-cache"
INDEX = ".source-index.json"
# The modules whose code decides a stamped file or its key: a change to any of them
# changes every key, so a deploy stamps every file again.
PACKAGE = Path(__file__).parent.parent
DECIDING = (
    "stamping/stamp.py",
    "stamping/sources.py",
    "stamping/run_time_rules.py",
    "stamping/build.py",
    "stamping/stamp_cache.py",
    "owners.py",
)
CODE = hashlib.sha256(b"".join((PACKAGE / name).read_bytes() for name in DECIDING)).hexdigest()


def source_key(kind: str, owner: str, helper_packages: frozenset[str], source: bytes) -> str:
    """What decides a stamped file, hashed: equal keys give equal files."""
    parts = [
        CODE.encode(),
        kind.encode(),
        owner.encode(),
        *map(str.encode, sorted(helper_packages)),
    ]
    return hashlib.sha256(b"\0".join([*parts, source])).hexdigest()


class StampCache:
    """The stamped files of one owner, in `build`; None: none kept."""

    def __init__(self, build: Path | None, owner: str) -> None:
        self.folder = build / FOLDER / owner if build else None

    def get(self, key: str) -> str | None:
        if self.folder is None:
            return None
        try:  # bytes: a stamped file's line endings are the source's, kept as they are
            return (self.folder / key).read_bytes().decode("utf-8")
        except (OSError, ValueError):
            return None

    def put(self, key: str, text: str) -> None:
        """Keep one stamped file, whole or not at all; a cache that cannot be written only
        makes the next stamp slower."""
        self._write(key, text.encode("utf-8"))

    def keep_only(self, keys: Iterable[str]) -> None:
        """Drop the kept files no source gives now: the cache holds one stamp's worth."""
        if self.folder is None:
            return
        wanted = {*keys, INDEX}
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.folder):
                if entry.name not in wanted:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    def source_index(self, context: str) -> dict[str, list[int | str]]:
        """The last build's index: name -> [*file state, source key] (file_state.py);
        empty where none is kept or it was written under another `context` (what the keys
        depend on beyond each source: this tool's code, the owner, the helper packages)."""
        if self.folder is None:
            return {}
        try:
            kept = json.loads((self.folder / INDEX).read_bytes())
            sources = kept["sources"] if kept["context"] == context else {}
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return {}
        return sources if isinstance(sources, dict) else {}

    def keep_index(self, context: str, sources: dict[str, list[int | str]]) -> None:
        """Keep the index; one that cannot be written only makes the next build read every
        source."""
        self._write(INDEX, json.dumps({"context": context, "sources": sources}).encode())

    def _write(self, name: str, content: bytes) -> None:
        """Write one file of the cache whole or not at all, making the folder if need be."""
        if self.folder is None:
            return
        partial = self.folder / f".{name}.{os.getpid()}"
        with contextlib.suppress(OSError):
            if not self.folder.is_dir():
                self.folder.mkdir(parents=True)
                # Ignored by git wherever it lies, as pytest's cache is: git status stays
                # clean, which the PROD path asks for.
                (self.folder.parent / ".gitignore").write_text(
                    "# A cache of the stamp's, never committed.\n*\n"
                )
            partial.write_bytes(content)
            partial.replace(self.folder / name)
