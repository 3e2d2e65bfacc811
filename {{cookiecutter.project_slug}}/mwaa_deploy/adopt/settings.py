"""A convention turned off in pyproject.toml, where make adopt cannot apply it safely.

tomllib only reads TOML, so the line is written as text: replaced where the setting is
there, else added at the end of [tool.mwaa_deploy], its comments and layout kept.
"""

from __future__ import annotations

import re
from pathlib import Path

TABLE = "[tool.mwaa_deploy]"


def turn_off(pyproject: Path, name: str, why: str) -> bool:
    """Write `name = false` into [tool.mwaa_deploy]; False where it was off already."""
    lines = pyproject.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == TABLE)
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines)
    )
    setting = re.compile(rf"\s*{re.escape(name)}\s*=\s*(\S+)")
    for index in range(start + 1, end):
        if found := setting.match(lines[index]):
            if found[1] == "false":
                return False
            lines[index] = f"{name} = false\n"
            break
    else:
        while end > start + 1 and not lines[end - 1].strip():
            end -= 1
        lines[end:end] = [f"# make adopt: {why}\n", f"{name} = false\n"]
    pyproject.write_text("".join(lines))
    return True
