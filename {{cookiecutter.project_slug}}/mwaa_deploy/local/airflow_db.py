"""airflow-local's database, kept in airflow_home/ from one start to the next.

Setting it up takes up to a minute, and what it holds (runs, task logs, the admin password)
is worth keeping. A start sets up a new one only where none is there yet, or where the one
there was set up by another Airflow or under other database settings: Airflow migrates a
database forward only, and a downgrade or a change of settings leaves one it cannot use.
Where the database is known to be set up, Airflow starts without checking it again
(fab_standalone.py).
"""

from __future__ import annotations

import json
import os
import shutil
from importlib.metadata import version
from pathlib import Path

from mwaa_deploy.config import shown

# What airflow-local records, in its Airflow's home, of the database it set up there.
MARK = ".database.json"
# The settings a user may give that decide where the database is and which tables it holds.
SHAPING = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__AUTH_MANAGER")
# What stays when a new database is set up: the DAGs mwaa-local copied in, and the log.
KEEP = ("mwaa_local", "standalone.log")


def wanted() -> dict[str, str]:
    """What the database must have been set up by: this Airflow, under these settings."""
    given = {name: os.environ[name] for name in SHAPING if name in os.environ}
    return {"airflow": version("apache-airflow")} | given


def prepare(home: Path) -> str | None:
    """None where the database in `home` is set up for this Airflow. Otherwise what the
    start must do, said in a few words, having cleared away a database that cannot serve."""
    try:
        found = json.loads((home / MARK).read_text())
    except (OSError, ValueError):
        found = None
    now = wanted()
    if found == now:
        return None
    if not isinstance(found, dict):
        # A home from before airflow-local recorded its database: Airflow migrates it.
        return "the first start sets up its database, up to a minute"
    for entry in home.iterdir():
        if entry.name not in KEEP:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    was = found.get("airflow", "another Airflow")
    why = f"was Airflow {was}'s" if was != now["airflow"] else "had other database settings"
    return f"sets up a new database: the one in {shown(home)} {why}; up to a minute"


def mark_set_up(home: Path) -> None:
    """Record that the database in `home` is set up, once Airflow has answered on it."""
    (home / MARK).write_text(json.dumps(wanted(), indent=2, sort_keys=True) + "\n")
