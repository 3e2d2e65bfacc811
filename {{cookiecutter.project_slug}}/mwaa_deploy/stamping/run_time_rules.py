"""What in a source could undo its stamp once it runs, seen on the syntax tree.

A PROD build says `DEV = False`; code that runs could say `DEV = True` again: a write of
the flag through a module's namespace, a namespace or frame reached where such writes
cannot be followed, code run from text (`exec`, `eval`), or an import of an owner's
deployed copy of a helper package, which would run that owner's code.
"""

from __future__ import annotations

import ast
import itertools
import math
from dataclasses import dataclass, field

from mwaa_deploy.owners import owner_of_key
from mwaa_deploy.stamping.sources import FLAG, SourceFile, called_name

# Code given as text runs unread by the stamp: `exec("DEV = True")` would undo the
# `DEV = False` of a PROD build.
RUNS_TEXT = frozenset({"exec", "eval"})
BUILTINS = frozenset({"builtins", "__builtins__"})
# Calls that hand back a namespace, a dict of a module's names, through which the flag
# can be written behind the stamp's back; and `.__dict__` and a function's `.__globals__`,
# which are ones too. The writes are followed only where the call is made by its own name:
# reaching one any other way (`g = globals`, `builtins.globals`) is refused.
NAMESPACE_CALLS = frozenset({"globals", "vars", "locals"})
NAMESPACE_ATTRIBUTES = frozenset({"__dict__", "__globals__"})
# A frame's links to the names of the code it runs and of its caller's: through them a
# helper can write the `DEV` of the DAG file that called it, which no rule here follows.
FRAME_LINKS = frozenset({"f_globals", "f_locals", "f_back"})
# A namespace's methods that write the key their first argument names, and those that
# write every key their arguments hold.
KEY_WRITERS = frozenset(
    {"__setitem__", "__delitem__", "setdefault", "pop", "setitem", "delitem"}  # and operator's
)
MAPPING_WRITERS = frozenset({"update", "__ior__"})
IMPORTERS = frozenset({"import_module", "__import__"})
# How many texts one expression may be followed to (see `_texts`).
MAX_TEXTS = 64


def run_time_problems(file: SourceFile) -> list[str]:
    """What in a module could undo its stamp once it runs, one `path:line: ...` each.

    Each seen on the syntax tree: a write of `DEV` through a namespace
    (`globals()["DEV"] = True`), a namespace reached where writes through it cannot be
    followed (`g = globals`, a frame's `f_globals`), code run from text (`exec`, `eval`),
    and an import of an owner's deployed copy of a helper package (`from DEV_common import
    x` in a source that PROD would run). Keys and names are followed as far as the file
    spells them: literal text, joined or held in a name, and names given a namespace or the
    builtins; what is computed at run time goes unseen here, and the baked project's
    integrity tests check every PROD module's `DEV` once Airflow has imported it.
    """
    nodes = list(ast.walk(file.tree))
    names = _Names.of(nodes)
    problems = []
    for node in nodes:
        reached = _builtins_reached(node, names)
        problem = (
            _owner_copy_import(node, names)
            or _text_run(reached)
            or _namespace_call_reached(node, reached, names)
            or _frame_reached(node, names)
            or _flag_write(node, names)
        )
        if problem:
            problems.append(f"{file.path}:{node.lineno}: {problem}")
    return problems


@dataclass
class _Names:
    """What the module's names are given, as far as its assignments show: text, a
    namespace (`g = globals()`), the builtins (`import builtins as b`, `b = builtins`);
    every name the module binds itself, and the names it calls by name (node ids)."""

    texts: dict[str, set[str]] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)
    builtins: set[str] = field(default_factory=lambda: set(BUILTINS))
    bound: set[str] = field(default_factory=set)
    called: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, nodes: list[ast.AST]) -> _Names:
        names = cls()
        names.builtins |= {
            alias.asname
            for node in nodes
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name == "builtins" and alias.asname
        }
        names.bound = {bound for node in nodes for bound in _bound_names(node)}
        names.called = {id(node.func) for node in nodes if isinstance(node, ast.Call)}
        assignments = sorted(
            (n for n in nodes if isinstance(n, (ast.Assign, ast.AnnAssign, ast.NamedExpr))),
            key=lambda node: (node.lineno, node.col_offset),
        )
        for node in assignments:
            if node.value is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound = [target.id for target in targets if isinstance(target, ast.Name)]
            if values := _texts(node.value, names.texts):
                for name in bound:
                    names.texts.setdefault(name, set()).update(values)
            if _is_namespace(node.value, names):
                names.namespaces.update(bound)
            if _is_builtins(node.value, names):
                names.builtins.update(bound)
        return names


def _owner_copy_import(node: ast.AST, names: _Names) -> str:
    """Why this imports an owner's copy (`DEV_common`, `SBX_ann_common`), or ""."""
    if isinstance(node, ast.Import):
        modules = [(alias.name, "import {}") for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        modules = [(node.module, "from {} import ...")]
    elif isinstance(node, ast.Call) and called_name(node.func) in IMPORTERS and node.args:
        modules = [(text, "{}") for text in sorted(_texts(node.args[0], names.texts))]
    else:
        return ""
    for module, statement in modules:
        owner = owner_of_key(f"dags/{module.partition('.')[0]}")
        if owner:
            source = module.removeprefix(f"{owner}_")
            return (
                f"imports `{module}`, {owner}'s deployed copy of `{source}`, so every"
                f" environment that runs this file would run {owner}'s code; write"
                f" `{statement.format(source)}` (the stamp points an import of a helper"
                " package at each environment's own copy)"
            )
    return ""


def _bound_names(node: ast.AST) -> list[str]:
    """The names this node binds: assigned, deleted, a parameter, imported, defined."""
    if isinstance(node, ast.Name):
        return [node.id] if isinstance(node.ctx, (ast.Store, ast.Del)) else []
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [alias.asname or alias.name.partition(".")[0] for alias in node.names]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
        return [node.name] if node.name else []
    return []


def _builtins_reached(node: ast.AST, names: _Names) -> set[str]:
    """The builtins this node may reach: a name read, an attribute, key or `getattr` text
    of the builtins, a name imported from them."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        return {node.id}
    if isinstance(node, ast.Attribute) and _is_builtins(node.value, names):
        return {node.attr}
    if isinstance(node, ast.Subscript) and _is_builtins(node.value, names):
        return _texts(node.slice, names.texts)
    if isinstance(node, ast.Call) and called_name(node.func) == "getattr" and len(node.args) > 1:
        return _texts(node.args[1], names.texts) if _is_builtins(node.args[0], names) else set()
    if isinstance(node, ast.ImportFrom) and node.module == "builtins":
        return {alias.name for alias in node.names}
    return set()


def _text_run(reached: set[str]) -> str:
    """Why reaching these builtins reaches `exec` or `eval`, or ""."""
    used = RUNS_TEXT & reached
    if not used:
        return ""
    return (
        f"uses `{min(used)}`, which runs code the stamp never reads (it could bind `DEV`"
        " again, and PROD would run with DEV's settings); write that code out in the file"
    )


def _namespace_call_reached(node: ast.AST, reached: set[str], names: _Names) -> str:
    """Why this reaches `globals`, `vars` or `locals` other than by calling it by its own
    name, or "". A module that binds one of these names itself means its own by it."""
    used = NAMESPACE_CALLS & reached
    if not used or (
        isinstance(node, ast.Name) and (id(node) in names.called or node.id in names.bound)
    ):
        return ""
    name = min(used)
    return (
        f"reaches `{name}` other than by calling it by its own name, so what is written"
        " through the namespace it returns goes unseen (it could bind `DEV` again, and PROD"
        f" would run with DEV's settings); call `{name}()` itself where you need it"
    )


def _frame_reached(node: ast.AST, names: _Names) -> str:
    """Why this reaches a frame's names or its caller's frame, or "". A chain of links
    (`.f_back.f_globals`) is one problem, at its first link."""
    if isinstance(node, ast.Attribute) and node.attr in FRAME_LINKS:
        if isinstance(node.value, ast.Attribute) and node.value.attr in FRAME_LINKS:
            return ""
    elif not (
        isinstance(node, ast.Call)
        and called_name(node.func) == "getattr"
        and len(node.args) > 1
        and FRAME_LINKS & _texts(node.args[1], names.texts)
    ):
        return ""
    return (
        f"`{_shortened(ast.unparse(node))}` reaches a frame's names, through which code can"
        " rebind `DEV` of this or a calling module where the stamp cannot see it (PROD would"
        " run with DEV's settings); pass what the code needs as arguments"
    )


def _flag_write(node: ast.AST, names: _Names) -> str:
    """Why this writes `DEV` other than by a binding of the name, or ""."""
    writes = False
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)):
        writes = _is_namespace(node.value, names) and FLAG in _texts(node.slice, names.texts)
    elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
        # Another module's `DEV` too: a helper could set `etl.DEV` of a DAG module.
        writes = node.attr == FLAG
    elif isinstance(node, ast.Call):
        writes = _call_writes_flag(node, names)
    if not writes:
        return ""
    return (
        f"`{_shortened(ast.unparse(node))}` would rebind the flag at run time, behind the"
        " line the PROD deploy rewrites (PROD would run with DEV's settings);"
        " `DEV = True` must be the only binding of DEV: remove it"
    )


def _call_writes_flag(node: ast.Call, names: _Names) -> bool:
    """`setattr(m, "DEV", ...)`, or a namespace's method that writes the key `DEV`:
    `globals().update(DEV=...)`, and the same as `dict.update(globals(), ...)` or
    `operator.setitem(globals(), ...)`."""
    called, args = called_name(node.func), node.args
    if called in ("setattr", "delattr"):
        return len(args) > 1 and FLAG in _texts(args[1], names.texts)
    if not (isinstance(node.func, ast.Attribute) and _is_namespace(node.func.value, names)):
        # Called unbound, or operator's: the namespace is the first argument.
        if not (args and _is_namespace(args[0], names)):
            return False
        args = args[1:]
    if called in KEY_WRITERS:
        return bool(args) and FLAG in _texts(args[0], names.texts)
    if called in MAPPING_WRITERS:
        given = [*args, *(keyword.value for keyword in node.keywords)]
        return any(keyword.arg == FLAG for keyword in node.keywords) or any(
            FLAG in _texts(sub, names.texts) for value in given for sub in ast.walk(value)
        )
    return False


def _is_namespace(node: ast.expr, names: _Names) -> bool:
    """`globals()`, `vars(...)`, `locals()`, anything's `.__dict__` or `.__globals__`, or a
    name given one."""
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id in NAMESPACE_CALLS
    if isinstance(node, ast.Name):
        return node.id in names.namespaces
    return isinstance(node, ast.Attribute) and node.attr in NAMESPACE_ATTRIBUTES


def _is_builtins(node: ast.expr, names: _Names) -> bool:
    """The builtins module or its namespace: `builtins`, `__builtins__`, a name given
    either, `__import__("builtins")`, and the `vars(...)` or `.__dict__` of these."""
    if isinstance(node, ast.Name):
        return node.id in names.builtins
    if isinstance(node, ast.Attribute):
        return node.attr == "__dict__" and _is_builtins(node.value, names)
    if isinstance(node, ast.Call) and node.args:
        called = called_name(node.func)
        if called == "vars":
            return _is_builtins(node.args[0], names)
        return called in IMPORTERS and "builtins" in _texts(node.args[0], names.texts)
    return False


def _texts(node: ast.expr, names: dict[str, set[str]]) -> set[str]:
    """The texts an expression may hold, as far as the file spells them: literal text, its
    concatenations and f-strings, and names assigned these. Empty when not known."""
    if isinstance(node, ast.Constant):
        return {node.value} if isinstance(node.value, str) else set()
    if isinstance(node, ast.Name):
        return names.get(node.id, set())
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = [_texts(node.left, names), _texts(node.right, names)]
    elif isinstance(node, ast.JoinedStr):
        parts = [
            _texts(value.value, names)
            if isinstance(value, ast.FormattedValue)
            and value.conversion == -1
            and value.format_spec is None
            else _texts(value, names)
            for value in node.values
        ]
    else:
        return set()
    if math.prod(map(len, parts)) > MAX_TEXTS:
        return set()  # text built in a loop, say: past following, and no key anyone writes
    return {"".join(joined) for joined in itertools.product(*parts)}


def _shortened(code: str, length: int = 60) -> str:
    return code if len(code) <= length else code[: length - 3] + "..."
