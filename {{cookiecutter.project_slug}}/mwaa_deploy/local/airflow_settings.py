"""airflow_settings.yaml: each environment's connections and variables for airflow-local.

The file takes Astro's format (`airflow: connections: [...], variables: [...]`). Secrets
never come from it: a value `${NAME}` is the environment variable NAME at start
(`${NAME:-text}`: text where NAME is not set), and an AWS connection may name the user's AWS
profile. The DEV/PROD rules hold for it as for the DAGs: each id is DEV's or PROD's, and an
entry of one environment names nothing of the other's (its role, account, profile, secrets).
What it gives reaches Airflow as AIRFLOW_CONN_<ID> and AIRFLOW_VAR_<NAME> variables, read at
every start: nothing of it stays in the database, so an edit of the file shows at the next.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mwaa_deploy.config import shown
from mwaa_deploy.owners import ENVIRONMENTS

FILE = "airflow_settings.yaml"
CONNECTION_FIELDS = {
    "conn_id": "",
    "conn_type": "conn_type",
    "conn_host": "host",
    "conn_schema": "schema",
    "conn_login": "login",
    "conn_password": "password",
    "conn_port": "port",
    "conn_extra": "extra",
}
VARIABLE_FIELDS = ("variable_name", "variable_value")
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Fields and extra keys that hold a secret, which only a ${NAME} reference may give.
SECRET = re.compile(r"password|secret|token|private_key|access_key", re.IGNORECASE)
# The words of a value: split at anything but letters and digits, and between camelCase.
WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
NAMES = {"DEV": {"dev", "development"}, "PROD": {"prod", "production"}}


@dataclass
class Entry:
    """One connection or variable: its id, the line it starts on, its fields as written,
    and the line of each field."""

    kind: str
    name: str
    line: int
    fields: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)


@dataclass
class Seed:
    """What a start gives Airflow: its variables, and a line a connection left out."""

    environment: dict[str, str]
    loaded: list[str]
    left_out: list[str]


def problems(root: Path, environ: dict[str, str] | None = None) -> list[str]:
    """Every way the file breaks the rules, one line each (`file:line: what to do`); with
    `environ`, also the values its references take there."""
    path = root / FILE
    if not path.is_file():
        return []
    entries, found = _read(path)
    where = shown(path)
    found += [f"{where}:{line}: {text}" for line, text in _rule_problems(entries, environ)]
    return found


def seed(root: Path, environ: dict[str, str]) -> Seed:
    """The AIRFLOW_CONN_/AIRFLOW_VAR_ variables for the file's entries whose references are
    set in `environ`. Call problems() first: this assumes the file keeps the rules."""
    path = root / FILE
    result = Seed({}, [], [])
    if not path.is_file():
        return result
    for entry in _read(path)[0]:
        missing = sorted({m[1] for m in _references(entry.fields) if _unset(m, environ)})
        if missing:
            result.left_out.append(
                f"{entry.name} left out: set {', '.join(missing)} ({shown(path)}:{entry.line})"
            )
            continue
        value = _expand(entry.fields, environ)
        if entry.kind == "connection":
            connection = json.dumps(_connection(value))
            result.environment[f"AIRFLOW_CONN_{entry.name.upper()}"] = connection
        else:
            given = value.get("variable_value", "")
            text = given if isinstance(given, str) else json.dumps(given)
            result.environment[f"AIRFLOW_VAR_{entry.name.upper()}"] = text
        result.loaded.append(entry.name)
    return result


def _read(path: Path) -> tuple[list[Entry], list[str]]:
    """The entries of the file, and what is wrong with its shape (one line each)."""
    where = shown(path)
    try:
        document = yaml.compose(path.read_text(), Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        return [], [f"{where}:{line}: not YAML ({getattr(error, 'problem', error)}): fix it"]
    if document is None:
        return [], []
    entries, found = [], []
    airflow = _mapping(document).get("airflow")
    if not isinstance(airflow, yaml.MappingNode):
        line = (airflow or document).start_mark.line + 1
        return [], [f"{where}:{line}: write the entries under `airflow:` (Astro's format)"]
    for key, node in _mapping(airflow).items():
        kind = {"connections": "connection", "variables": "variable"}.get(key)
        if kind is None:
            found.append(
                f"{where}:{node.start_mark.line + 1}: `{key}` is not read here: only connections"
                " and variables (DEV_pool is set as on MWAA)"
            )
            continue
        items = node.value if isinstance(node, yaml.SequenceNode) else []
        for item in items:
            entry, wrong = _entry(kind, item)
            found += [f"{where}:{line}: {text}" for line, text in wrong]
            if entry:
                entries.append(entry)
    return entries, found


def _entry(kind: str, node: yaml.Node) -> tuple[Entry | None, list[tuple[int, str]]]:
    line = node.start_mark.line + 1
    known = list(CONNECTION_FIELDS) if kind == "connection" else list(VARIABLE_FIELDS)
    if not isinstance(node, yaml.MappingNode):
        return None, [(line, f"a {kind} is a mapping of {', '.join(known)}")]
    entry = Entry(kind, "", line)
    wrong = []
    loader = yaml.SafeLoader("")
    for key, value in _mapping(node).items():
        if key not in known:
            wrong.append((value.start_mark.line + 1, f"`{key}` is not one of {', '.join(known)}"))
            continue
        entry.fields[key] = loader.construct_object(value, deep=True)
        entry.lines |= _lines(key, value)
    entry.name = str(entry.fields.pop(known[0], "") or "")
    if not entry.name:
        wrong.append((line, f"a {kind} needs its {known[0]}"))
        return None, wrong
    return entry, wrong


def _lines(key: str, node: yaml.Node) -> dict[str, int]:
    """The line of a field and of each key inside it (`conn_extra.role_arn`)."""
    found = {key: node.start_mark.line + 1}
    for name, value in _mapping(node).items():
        found |= _lines(f"{key}.{name}", value)
    return found


def _mapping(node: yaml.Node) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(key.value): value for key, value in node.value}


def _rule_problems(entries: list[Entry], environ: dict[str, str] | None) -> list[tuple[int, str]]:
    """DEV's entries and PROD's apart: ids, what the values name, and the AWS roles."""
    found = []
    seen: set[tuple[str, str]] = set()
    roles: dict[str, dict[str, str]] = {env: {} for env in ENVIRONMENTS}
    for entry in entries:
        env = next((e for e in ENVIRONMENTS if entry.name.startswith(f"{e}_")), None)
        if env is None:
            found.append(
                (entry.line, f"{entry.name} is neither DEV's nor PROD's: start it with DEV_ or"
                 " PROD_, as the DAGs' ids do (a sandbox uses DEV's)")
            )  # fmt: skip
            continue
        if (entry.kind, entry.name) in seen:
            found.append((entry.line, f"{entry.name} is given twice: keep one"))
        seen.add((entry.kind, entry.name))
        found += _secret_problems(entry)
        other = next(e for e in ENVIRONMENTS if e != env)
        values = [entry.fields] + ([_expand(entry.fields, environ)] if environ else [])
        for key, text in {(k, t) for v in values for k, t in _strings(v)}:
            if _names(text) & NAMES[other]:
                found.append(
                    (entry.lines.get(key, entry.line),
                     f"{entry.name}: {key} {text!r} names {other}: a {env} {entry.kind} may not"
                     f" reach {other}'s account, role or secrets; give it {env}'s")
                )  # fmt: skip
        role = _role(values[-1])
        if role:
            roles[env][role] = entry.name
    for role, name in roles["DEV"].items():
        if role in roles["PROD"]:
            line = next(e for e in entries if e.name == name)
            found.append(
                (line.lines.get("conn_extra.role_arn", line.line),
                 f"{name}: role_arn is {roles['PROD'][role]}'s, PROD's role: give DEV's"
                 " task role (iam/task-roles.yaml, output DevTaskRoleArn)")
            )  # fmt: skip
    return sorted(found)


def _secret_problems(entry: Entry) -> list[tuple[int, str]]:
    found = []
    for key, text in _strings(entry.fields):
        if SECRET.search(key.rsplit(".", 1)[-1]) and text and not REFERENCE.fullmatch(text):
            name = re.sub(r"[^A-Z0-9]+", "_", f"{entry.name}_{key.rsplit('.', 1)[-1]}".upper())
            reference = "${" + name + "}"
            found.append(
                (entry.lines.get(key, entry.line),
                 f"{entry.name}: {key} is a secret written into the repository: write"
                 f" {reference} instead, and set {name} where airflow-local runs")
            )  # fmt: skip
    return found


def _strings(value: Any, key: str = "") -> list[tuple[str, str]]:
    """Each string in a value with where it is (`conn_extra.role_arn`)."""
    if isinstance(value, dict):
        return [
            found
            for name, item in value.items()
            for found in _strings(item, f"{key}.{name}" if key else str(name))
        ]
    if isinstance(value, list):
        return [found for item in value for found in _strings(item, key)]
    return [(key, value)] if isinstance(value, str) else []


def _names(text: str) -> set[str]:
    return {word.lower() for word in WORD.findall(text)}


def _role(fields: dict[str, Any]) -> str:
    extra = fields.get("conn_extra")
    return str(extra.get("role_arn") or "") if isinstance(extra, dict) else ""


def _references(value: Any) -> list[re.Match[str]]:
    return [m for _key, text in _strings(value) for m in REFERENCE.finditer(text)]


def _unset(reference: re.Match[str], environ: dict[str, str]) -> bool:
    return reference[2] is None and reference[1] not in environ


def _expand(value: Any, environ: dict[str, str] | None) -> Any:
    """The value with each reference replaced by what it is in `environ`; a key of a
    mapping whose value comes out empty is left out, as if not written."""
    if isinstance(value, dict):
        expanded = {key: _expand(item, environ) for key, item in value.items()}
        return {key: item for key, item in expanded.items() if item not in ("", None)}
    if isinstance(value, list):
        return [_expand(item, environ) for item in value]
    if isinstance(value, str):
        given = environ or {}
        return REFERENCE.sub(lambda m: given.get(m[1], m[2] or ""), value)
    return value


def _connection(fields: dict[str, Any]) -> dict[str, Any]:
    """A connection in the JSON form Airflow reads from AIRFLOW_CONN_<ID>."""
    return {CONNECTION_FIELDS[key]: value for key, value in fields.items()}
