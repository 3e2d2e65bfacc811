"""A sandbox's part of the project: the DAG files its branch changed, those that import a
helper module it changed, the DAG files those name (triggers, sensors) or share an asset
with, and the helper packages they all need; the rest is left out.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mwaa_deploy.exceptions import StampError
from mwaa_deploy.stamping.stamp import Tree, read_text, scan

# An asset's (on Airflow 2, a dataset's) first argument as written: two DAG files writing
# the same one share the asset.
ASSET = re.compile(r"\b(?:Asset|Dataset)(?:Alias)?\(\s*(f?(?:\"[^\"\n]*\"|'[^'\n]*'))")


@dataclass(frozen=True)
class Selection:
    """What a sandbox holds: the source files to ship (`x.py`, `common/y.py`), the DAG files
    among them, and the project's other DAG files, which it leaves out."""

    names: frozenset[str]
    dag_files: tuple[str, ...]
    left_out: tuple[str, ...]
    # Among dag_files, those it holds because another of them names their DAG or asset.
    named: tuple[str, ...] = ()


def select(sources: Path, changed: frozenset[Path]) -> Selection:
    """The part of the project a sandbox holds: the DAG files the branch added or edited,
    those that import (at any depth) a helper module it edited, and the helper packages
    those DAG files import, whole."""
    tree = scan(sources)
    resolved = {path.resolve() for path in changed}
    edited = {
        name
        for name, path in tree.files.items()
        if path.absolute() in changed or tree.real[name] in resolved
    }
    dags_folder = (sources / "dags").absolute()
    # A change to a package that no module import can pin down (a deleted or data file)
    # counts for every module of the package.
    whole_packages = {
        path.relative_to(dags_folder).parts[0]
        for path in changed
        if path.is_relative_to(dags_folder)
        and len(path.relative_to(dags_folder).parts) > 1
        and (path.suffix != ".py" or not path.exists())
    }
    graph = _ImportGraph(tree)
    dag_files = sorted(name for name in tree.files if "/" not in name)
    helpers_changed = whole_packages or any("/" in name for name in edited)
    chosen = []
    for dag in dag_files:
        if dag in edited:
            chosen.append(dag)
        elif helpers_changed:
            helpers = graph.closure(dag)
            packages = {helper.split("/")[0] for helper in helpers}
            if helpers & edited or packages & whole_packages:
                chosen.append(dag)
    named = _named(tree, chosen, dag_files)
    chosen = sorted({*chosen, *named})
    packages = {helper.split("/")[0] for dag in chosen for helper in graph.closure(dag)}
    names = set(chosen) | {name for name in tree.files if name.split("/")[0] in packages}
    left_out = tuple(name for name in dag_files if name not in chosen)
    return Selection(frozenset(names), tuple(chosen), left_out, tuple(named))


def _named(tree: Tree, chosen: list[str], dag_files: list[str]) -> list[str]:
    """The DAG files whose DAG a chosen one names, as in `trigger_dag_id=f"{dev_prod_flag}
    _orders"` for orders.py, or that write one of its assets as it does (the producer of
    what it waits for, or a consumer of what it makes), at any depth: a trigger, a wait or
    an asset in a sandbox needs the other end there too. Read off the text, as the
    convention writes ids and assets; the integrity tests check what Airflow sees."""
    stems = {name.removesuffix(".py"): name for name in dag_files}
    naming = re.compile(r"\}_(" + "|".join(map(re.escape, stems)) + r")\b") if stems else None
    texts: dict[str, str] = {}

    def text_of(name: str) -> str:
        if name not in texts:
            try:
                texts[name] = read_text(tree.files[name])
            except (OSError, StampError):
                texts[name] = ""  # the stamp reports it
        return texts[name]

    found: list[str] = []
    waiting, seen = list(chosen), set(chosen)
    while waiting and naming:
        text = text_of(waiting.pop())
        linked = {stems[stem] for stem in naming.findall(text)}
        if assets := set(ASSET.findall(text)):
            linked |= {
                other
                for other in dag_files
                if other not in seen and assets & set(ASSET.findall(text_of(other)))
            }
        for name in sorted(linked - seen):
            seen.add(name)
            found.append(name)
            waiting.append(name)
    return sorted(found)


class _ImportGraph:
    """Which helper files a module imports, directly or through other helper modules."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.modules = {
            _dotted(name): name for name in tree.files if "/" in name and name.endswith(".py")
        }
        self.known: dict[str, frozenset[str]] = {}

    def closure(self, name: str) -> frozenset[str]:
        """The helper files `name` reaches through imports."""
        if name not in self.known:
            self.known[name] = frozenset()  # an import cycle ends here
            reached = set(self._direct(name))
            for helper in list(reached):
                reached |= self.closure(helper)
            self.known[name] = frozenset(reached)
        return self.known[name]

    def _direct(self, name: str) -> Iterator[str]:
        try:
            module = ast.parse(read_text(self.tree.files[name]))
        except (SyntaxError, ValueError, OSError, StampError):
            return  # the stamp reports it
        package = _dotted(name).split(".")
        if not name.endswith("__init__.py"):
            package = package[:-1]
        for node in ast.walk(module):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module_name = ".".join([*base, *filter(None, [node.module])])
                wanted = [module_name] + [f"{module_name}.{alias.name}" for alias in node.names]
            else:
                continue
            for dotted in wanted:
                parts = dotted.split(".")
                for end in range(1, len(parts) + 1):
                    if found := self.modules.get(".".join(parts[:end])):
                        yield found


def _dotted(name: str) -> str:
    """`common.conventions` for common/conventions.py; `common` for common/__init__.py."""
    return name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
