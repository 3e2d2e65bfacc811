"""Stamped files kept by what decides them, so that a stamp redoes only what changed.

A stamped file is a function of its source text, its kind (DAG file or helper module), the
owner, the project's helper packages and this tool's code; its key (`source_key`) is a
hash of all of them, and a deploy's record keeps it beside each file it left. Only files
that passed every check are kept, so a cached file is one a full stamp would give, byte
for byte. Each is a file of its own, named by its key, in build/.stamp-cache/<owner>/: a
stamp reads and writes only what it needs, and drops what no source gives any more.

Beside them, the source index keeps each source's key by what the file system says of the
file (size, modification and change times, inode), as git's index keeps its files' ids: a
build reads and hashes only the sources whose file changed since the last build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

FOLDER = ".stamp-cache"
INDEX = ".source-index.json"
# A file changed this recently may change again within its file system's clock resolution,
# its size kept: such a file's key is not kept in the index, and the next build reads it.
RACY_NS = 2_000_000_000
# An entry of the index: a file's state (file_state), then its source key.
ENTRY_LENGTH = 5
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
        """The last build's index: name -> [size, mtime_ns, ctime_ns, inode, source key];
        empty where none is kept or it was written under another `context` (what the keys
        depend on beyond each source: this tool's code, the owner, the helper packages)."""
        if self.folder is None:
            return {}
        try:
            kept = json.loads((self.folder / INDEX).read_bytes())
            sources = kept["sources"] if kept["context"] == context else {}
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return {}
        entries = sources.values() if isinstance(sources, dict) else [None]
        return sources if all(map(_well_formed, entries)) else {}

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


def _well_formed(entry: object) -> bool:
    """An entry a build can compare a file's state with and take a key from (a state of
    other types only compares unequal: the file is read)."""
    return isinstance(entry, list) and len(entry) == ENTRY_LENGTH and isinstance(entry[-1], str)


def file_state(stat: os.stat_result) -> list[int]:
    """What the source index compares of a file: a change to its content changes one of these."""
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def settled(stat: os.stat_result) -> bool:
    """Whether a file last changed long enough ago for its state to be trusted next time."""
    return max(stat.st_mtime_ns, stat.st_ctime_ns) < time.time_ns() - RACY_NS
