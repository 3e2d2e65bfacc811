"""One owner's build of bucket_contents/: each file's key read at once, its stamp made when
first asked for.

A deploy compares each file's source key (stamp_cache.py) with the one the bucket's record
keeps for it, and stamps only the files whose source changed since: an unchanged redeploy
from a fresh clone stamps nothing. Whatever a deploy stamps is checked in full first, so a
stamp problem still stops it before any upload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from mwaa_deploy import file_state
from mwaa_deploy.exceptions import StampError
from mwaa_deploy.owners import check_owner
from mwaa_deploy.stamping.stamp import (
    HELPER_AIRFLOWIGNORE,
    read_text,
    scan,
    stamp_dag_file,
    stamp_helper_module,
)
from mwaa_deploy.stamping.stamp_cache import StampCache, source_key


class Build:
    """The bucket keys of `owner`'s build of `sources`, with each key's source key.

    `only`: the names (`x.py`, `common/y.py`) of the files to ship, for a sandbox that holds
    part of the project; None ships every file. `build`: where stamped files are kept.
    """

    def __init__(
        self,
        sources: Path,
        owner: str,
        only: frozenset[str] | None = None,
        build: Path | None = None,
    ) -> None:
        check_owner(owner)
        tree = scan(sources)
        self.owner = owner
        self.helper_packages = frozenset(tree.packages)
        self.problems = list(tree.problems)
        self.problems += [
            f"{sources / 'dags' / package}: helper package name is not a Python identifier;"
            " rename it"
            for package in sorted(self.helper_packages)
            if not package.isidentifier()
        ]
        dag_names = {name.removesuffix(".py") for name in tree.files if "/" not in name}
        self.problems += [
            f"{sources / 'dags' / name}.py: a DAG file and a helper package are both named"
            f" {name!r}; rename one"
            for name in sorted(dag_names & self.helper_packages)
        ]
        shipped = {name: path for name, path in tree.files.items() if only is None or name in only}
        self.generated = {
            f"dags/{owner}_{package}/.airflowignore": HELPER_AIRFLOWIGNORE
            for package in self.helper_packages
            if any(name.startswith(f"{package}/") for name in shipped)
        }
        self.cache = StampCache(build, owner)
        # key -> (name, path, source bytes, or None where the source index vouches for the
        # file's key: read only if it must be stamped).
        self.files: dict[str, tuple[str, Path, bytes | None]] = {}
        self.source_keys: dict[str, str] = {}
        self._key_sources(shipped, set(tree.files))
        self.source_keys |= {
            key: hashlib.sha256(body).hexdigest() for key, body in self.generated.items()
        }
        self.cache.keep_only(self.source_keys.values())

    def _key_sources(self, shipped: dict[str, Path], present: set[str]) -> None:
        """Each shipped file's source key: from the source index where the file is as it
        was, else read and hashed; then the index kept for the next build."""
        context = source_key("", self.owner, self.helper_packages, b"")
        known = self.cache.source_index(context)
        index = {name: entry for name, entry in known.items() if name in present}
        for name, path in shipped.items():
            key = f"dags/{self.owner}_{name}"
            try:
                stat = path.stat()
                vouched = file_state.known(index.get(name), file_state.state(stat))
                if vouched is not None:
                    self.files[key], self.source_keys[key] = (name, path, None), vouched
                    continue
                source = path.read_bytes()
            except OSError as error:
                self.problems.append(_unreadable(path, error))
                continue
            self.files[key] = (name, path, source)
            self.source_keys[key] = source_key(
                _kind(name), self.owner, self.helper_packages, source
            )
            # A file changed just now keeps its entry of before, which its state no longer
            # matches: it is read again next time, and the index is not rewritten for it.
            if kept := file_state.entry(stat, self.source_keys[key]):
                index[name] = kept
        if index != known:
            self.cache.keep_index(context, index)

    def keys(self) -> list[str]:
        return sorted(self.source_keys)

    def stamped(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The stamped content of `keys`, each checked; StampError lists every problem of
        them and of the project as a whole."""
        problems = list(self.problems)
        outputs = {}
        for key in keys:
            if key in self.generated:
                outputs[key] = self.generated[key]
                continue
            try:
                outputs[key] = self._stamp(key)
            except StampError as error:
                problems += error.problems
        if problems:
            raise StampError(problems)
        return outputs

    def _stamp(self, key: str) -> bytes:
        name, path, _ = self.files[key]
        kind = _kind(name)
        if kind == "data":
            return self._source(key)
        cached = self.cache.get(self.source_keys[key])
        if cached is not None:
            return cached.encode()
        text = read_text(path, self._source(key))
        stamping = stamp_helper_module if kind == "helper" else stamp_dag_file
        stamped = stamping(text, str(path), self.owner, self.helper_packages)
        self.cache.put(self.source_keys[key], stamped)
        return stamped.encode()

    def _source(self, key: str) -> bytes:
        """The source `key`'s source key was made of. Where the source index vouched for
        it, it is read now, and refused if it changed since (saved while this deploy ran):
        shipped under the key of before, it would be taken for that file from then on."""
        name, path, source = self.files[key]
        if source is not None:
            return source
        try:
            source = path.read_bytes()
        except OSError as error:
            raise StampError([_unreadable(path, error)]) from None
        if (
            source_key(_kind(name), self.owner, self.helper_packages, source)
            != self.source_keys[key]
        ):
            raise StampError([f"{path}: changed while this deploy ran; run it again"])
        return source


def stamp(
    sources: Path, owner: str, only: frozenset[str] | None = None, build: Path | None = None
) -> dict[str, bytes]:
    """The whole build of `sources` for `owner`: bucket key -> content, every file checked."""
    whole = Build(sources, owner, only, build)
    return whole.stamped(whole.keys())


def _unreadable(path: Path, error: OSError) -> str:
    return f"{path}: cannot be read ({error.strerror}); fix or remove it"


def _kind(name: str) -> str:
    """A DAG file (`x.py`), a helper module (`pkg/y.py`), or other data a package holds."""
    if "/" not in name:
        return "dag"
    return "helper" if name.endswith(".py") else "data"
