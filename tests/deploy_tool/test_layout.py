"""The package's shape, which its readers rely on: folders for the layers a command passes
through, each importing only those below it, and modules small enough to read at once."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from mwaa_deploy.__main__ import COMMANDS, function
from tests.deploy_tool import BAKED

PACKAGE = BAKED / "mwaa_deploy"
# Bottom to top; the modules at the package's top are below every layer.
LAYERS = ("stamping", "bucket", "adopt", "instance", "local", "commands")
MOST_LINES = 350
MOST_TOP_MODULES = 10


def _module(path: Path) -> str:
    return ".".join(("mwaa_deploy", *path.relative_to(PACKAGE).with_suffix("").parts))


MODULES = {_module(path).removesuffix(".__init__") for path in PACKAGE.rglob("*.py")}


def _rank(module: str) -> int:
    """0 for the package's top, then each layer's place from the bottom."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) + 1 if len(parts) > 2 and parts[1] in LAYERS else 0


def _runtime_imports(path: Path) -> set[str]:
    """The package's modules that `path` imports when it runs: not those it names for type
    checkers only, under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for_types = {
        id(node)
        for guard in ast.walk(tree)
        if isinstance(guard, ast.If) and "TYPE_CHECKING" in ast.unparse(guard.test)
        for node in ast.walk(guard)
    }
    imported = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or id(node) in for_types:
            continue
        if node.module == "mwaa_deploy" or (node.module or "").startswith("mwaa_deploy."):
            for alias in node.names:
                # `from mwaa_deploy.bucket import sync` imports the module bucket/sync.py
                named = f"{node.module}.{alias.name}"
                imported.add(named if named in MODULES else node.module)
    return imported


def test_each_layer_imports_only_the_layers_below_it() -> None:
    upward = [
        f"{_module(path)} imports {imported}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "__main__.py"
        for imported in _runtime_imports(path)
        if _rank(imported) > _rank(_module(path))
    ]
    assert not upward


def test_no_two_modules_import_each_other_however_far_apart() -> None:
    graph = {_module(path): _runtime_imports(path) for path in PACKAGE.rglob("*.py")}
    circles = []
    for start in graph:
        stack = [(start, (start,))]
        seen = set()
        while stack:
            module, route = stack.pop()
            for imported in graph.get(module, ()):
                if imported == start:
                    circles.append(" -> ".join((*route, start)))
                elif imported not in seen:
                    seen.add(imported)
                    stack.append((imported, (*route, imported)))
    assert not circles


def test_no_module_is_over_350_lines() -> None:
    long = {
        _module(path): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MOST_LINES
    }
    assert not long


def test_the_package_top_holds_at_most_10_modules_and_a_folder_per_layer() -> None:
    modules = sorted(path.name for path in PACKAGE.glob("*.py"))
    folders = sorted(path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file())
    assert len(modules) <= MOST_TOP_MODULES, modules
    assert folders == sorted(LAYERS)


def test_the_command_line_starts_on_a_python_with_nothing_installed() -> None:
    """make install runs `python -m mwaa_deploy install` in a new, empty venv: what the command
    table and the install command import is the standard library and the package alone; the
    rest is imported by the commands that need it, when they run."""
    code = (
        "import sys\nfrom mwaa_deploy.__main__ import COMMANDS, function\n"
        "function(COMMANDS['install'].run)\n"
        "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(BAKED)!r})\n{code}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    ours = {"mwaa_deploy", "__main__"}  # the package, and the `-c` code itself
    assert [m for m in loaded if m not in sys.stdlib_module_names | ours] == []


def test_every_command_of_the_table_names_a_function_of_the_commands_package() -> None:
    """The table names each command's function as text, imported when the command runs: a
    name that leads nowhere shows here, not on a user's first run of that command."""
    for name, command in COMMANDS.items():
        assert callable(function(command.run)), name
