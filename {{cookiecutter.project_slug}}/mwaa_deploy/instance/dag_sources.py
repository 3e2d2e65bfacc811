"""Whether a parse the instance reports was of the bytes a deploy wrote, not of the file
they replaced: MWAA copies the bucket into Airflow's DAGs folder some time after the
deploy, and until then Airflow parses the previous file.

- A DAG the file defines: Airflow serves the source it parsed it from (`dagSources`: by
  the DAG's file token on Airflow 2's API v1, by its id on Airflow 3's v2). That source is
  the deployed file's exactly, or the parse was of another.
- An import error names no source, but its traceback quotes the lines it ran through,
  read from the file as it was parsed: the error is the deployed file's when every line it
  quotes from the file is that line of the deployed bytes. An error that quotes none (an
  instance that records no tracebacks) cannot be told apart this way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

# A frame of a traceback: where, then the line it ran, indented, on the next line.
FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+)[^\n]*\n(?=(?P<text>[^\n]*))')


def as_text(body: bytes) -> str:
    """The bytes as Airflow reads a DAG file: text, with universal newlines."""
    return body.decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def quotes_deployed(trace: str, file: str, body: bytes) -> bool | None:
    """Whether each line the traceback quotes from `file` (a path inside the DAGs folder)
    is that line of `body`; None where it quotes none."""
    lines = as_text(body).split("\n")
    quoted = [
        (int(frame["line"]), frame["text"].strip())
        for frame in FRAME.finditer(trace)
        if inside_dags_folder(frame["path"]) == file and not frame["text"].startswith("  File ")
    ]
    if not quoted:
        return None
    return all(0 < n <= len(lines) and lines[n - 1].strip() == text for n, text in quoted)


class Sources:
    """Asks the instance the source of DAGs, once a parse: `get(path)` is one GET of
    Airflow's REST API, answering Airflow's answer, or None where it has none (404)."""

    def __init__(self, get: Callable[[str], Any]) -> None:
        self.get = get
        # (dag_id, its last parse) -> the source that parse served; None: none served.
        self._seen: dict[tuple[str, datetime | None], str | None] = {}

    def serves(self, dag: dict[str, Any], parsed: datetime | None, body: bytes) -> bool:
        """Whether the instance's last parse of the DAG was of `body`."""
        key = (dag["dag_id"], parsed)
        if key not in self._seen:
            self._seen[key] = self._source(dag)
        return self._seen[key] == as_text(body)

    def _source(self, dag: dict[str, Any]) -> str | None:
        # Airflow 3 (whose DAGs say whether they are stale) finds a DAG's source by its id.
        token = dag["dag_id"] if "is_stale" in dag else dag["file_token"]
        answer = self.get(f"/dagSources/{quote(token, safe='')}")
        if answer is None:  # parsed, its source not yet stored
            return None
        if isinstance(answer, dict):
            answer = answer["content"]
        if not isinstance(answer, str):
            raise TypeError("content is not text")
        return answer.replace("\r\n", "\n")


@dataclass(frozen=True)
class ParseFailure:
    """One import error as Airflow reports it: the file inside the DAGs folder, the line
    of that file the traceback points at (if any), Airflow's last line, and when."""

    file: str
    line: int | None
    message: str
    at: datetime

    def __str__(self) -> str:
        where = f"dags/{self.file}" + (f":{self.line}" if self.line else "")
        return f"{where}: {self.message}"


def inside_dags_folder(path: str) -> str:
    """A file's path inside the DAGs folder: Airflow 3 gives that already; Airflow 2 an
    absolute path, which on MWAA is /usr/local/airflow/dags/<file>."""
    return path.rpartition("/dags/")[2] if path.startswith("/") else path


def failure_of(file: str, error: dict[str, Any]) -> ParseFailure:
    trace = error.get("stack_trace") or ""
    lines = [
        int(frame["line"])
        for frame in FRAME.finditer(trace)
        if inside_dags_folder(frame["path"]) == file
    ]
    message = next((line.strip() for line in reversed(trace.splitlines()) if line.strip()), "")
    return ParseFailure(
        file=file,
        line=lines[-1] if lines else None,
        message=message or "no message",
        at=datetime.fromisoformat(error["timestamp"]),
    )
