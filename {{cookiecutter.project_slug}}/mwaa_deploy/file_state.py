"""A file known by its state, as git's index knows its files: what its content hashed to is
kept beside its size, modification and change times and inode, and a file whose state is
as kept is not read again. The stamp cache keeps its sources' keys so
(stamping/stamp_cache.py), the local bucket its files' ETags (bucket/local_bucket.py).

A file changed in the last SETTLED_NS may change again within its clock's tick, its size
kept, unseen: what it hashed to is not kept, and the next look reads it again.
"""

from __future__ import annotations

import os
import time

SETTLED_NS = 2_000_000_000


def state(stat: os.stat_result) -> list[int]:
    """What is compared of a file: a change to its content changes one of these."""
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def known(entry: object, now: list[int]) -> str | None:
    """What `entry` (an index's [*state, hash]) says a file now in state `now` hashes to;
    None where it says nothing of that state (or is not an entry at all)."""
    if isinstance(entry, list) and entry[:-1] == now and isinstance(entry[-1], str):
        return entry[-1]
    return None


def entry(stat: os.stat_result, digest: str) -> list[int | str] | None:
    """What an index keeps of a file just hashed; None while the file is not settled."""
    if max(stat.st_mtime_ns, stat.st_ctime_ns) < time.time_ns() - SETTLED_NS:
        return [*state(stat), digest]
    return None
