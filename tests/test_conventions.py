"""The conventions helper's choice of which copies of a scheduled DAG run on its schedule
(DESIGN: "Run time"), as the real Airflow reads the deployed copies: PROD's alone, or, with
one line of dags/common/conventions.py changed, DEV's and the sandboxes' too."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers import NEWEST, VENVS, bake, make, user_environment

# Each deployed copy of the example dbt_sources: the schedule Airflow 3 loaded it with.
SCHEDULES = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

dags = sys.argv[1]
sys.path.insert(0, dags)  # as MWAA puts its DAGs folder on the path
bag = DagBag(dag_folder=dags)
assert not bag.import_errors, bag.import_errors
copies = ("DEV", "SBX_ann", "PROD")
print(json.dumps({owner: bag.dags[f"{owner}_dbt_sources"].schedule for owner in copies}))
"""


def schedules(project: Path, home: Path) -> dict[str, str | None]:
    """Deploy DEV, PROD and the sandbox ann to the local bucket; each copy's schedule."""
    for deployed in (
        make(project, "deploy-dev", "deploy-prod", airflow_version=NEWEST),
        make(project, "deploy-dev", airflow_version=NEWEST, SANDBOX="ann"),
    ):
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    read = subprocess.run(
        [VENVS / f"airflow-{NEWEST}" / "bin" / "python", "-c", SCHEDULES]
        + [str(project / "local_bucket" / "dags")],
        env=user_environment() | {"AIRFLOW_HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert read.returncode == 0, read.stderr[-4000:]
    return json.loads(read.stdout.splitlines()[-1])


def test_dev_and_sandbox_copies_run_when_started_unless_one_line_says_on_schedule(
    output: Path, tmp_path: Path
) -> None:
    project = bake(output, airflow_version=NEWEST)
    home = tmp_path / "airflow-home"
    assert schedules(project, home) == {"DEV": None, "SBX_ann": None, "PROD": "0 4 * * *"}

    conventions = project / "bucket_contents" / "dags" / "common" / "conventions.py"
    off, on = "DEV_RUNS_ON_SCHEDULE = False\n", "DEV_RUNS_ON_SCHEDULE = True\n"
    assert conventions.read_text().count(off) == 1
    conventions.write_text(conventions.read_text().replace(off, on))
    assert schedules(project, home) == dict.fromkeys(("DEV", "SBX_ann", "PROD"), "0 4 * * *")
