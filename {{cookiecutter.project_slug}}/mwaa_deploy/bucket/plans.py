"""A deploy's plan: what an owner's keys should hold (Desired), and what a deploy of it
would do (Plan), made by sync.plan and applied by sync.apply."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mwaa_deploy.bucket import history


class Desired(Protocol):
    """What an owner's keys should hold: the keys, each with its source key (what decides
    its content; "" where unknown), and their content, made when asked for (a Build)."""

    source_keys: Mapping[str, str]

    def keys(self) -> list[str]: ...

    def stamped(self, keys: Iterable[str]) -> dict[str, bytes]: ...


class Contents:
    """Desired content given whole (a rollback's files, or a build stamped already)."""

    def __init__(self, files: Mapping[str, bytes], source_keys: Mapping[str, str]) -> None:
        self.files = files
        self.source_keys = {key: source_keys.get(key, "") for key in files}

    def keys(self) -> list[str]:
        return sorted(self.files)

    def stamped(self, keys: Iterable[str]) -> dict[str, bytes]:
        return {key: self.files[key] for key in keys}


@dataclass
class Plan:
    """What a deploy of `owner` would do. Keys are sorted; `uploads` maps key to body."""

    owner: str
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict, repr=False)
    # Each key of the build with the SHA-256 of its content and the ETag the bucket lists
    # for it now ("" for a new key); and the last deploy's record of them, if it was read.
    files: history.Objects = field(default_factory=dict, repr=False)
    recorded: history.Objects = field(default_factory=dict, repr=False)
    # The ETag of the record planned from; None: there was none. Stale: it does not
    # describe the files as they are (lost, damaged, older), so a deploy writes it anew.
    record_etag: str | None = None
    record_stale: bool = False

    @property
    def is_empty(self) -> bool:
        return not (self.new or self.changed or self.deleted or self.record_stale)

    def counts(self, done: bool = False) -> str:
        """`2 new, 1 changed, 0 deleted, 5 unchanged`; once the deploy is done,
        `3 uploaded (2 new, 1 changed), 0 deleted, 5 unchanged`."""
        changes = f"{len(self.new)} new, {len(self.changed)} changed"
        if done:
            changes = f"{len(self.uploads)} uploaded ({changes})"
        only_record = self.record_stale and not (self.new or self.changed or self.deleted)
        written = "; its record written anew" if only_record else ""
        return f"{changes}, {len(self.deleted)} deleted, {len(self.unchanged)} unchanged{written}"

    def after(self, first: Plan) -> Plan:
        """This plan, made after `first` was applied as far as its uploads (the record had
        moved): what the two did together, as the deploy reports it and the parse gate
        waits for it."""
        done = first.uploads.keys() - self.uploads.keys()
        self.uploads = {key: first.uploads[key] for key in done} | self.uploads
        self.new = sorted({*self.new, *(done & set(first.new))})
        self.changed = sorted({*self.changed, *(done & set(first.changed))})
        self.unchanged = [key for key in self.unchanged if key not in done]
        return self
