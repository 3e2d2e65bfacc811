"""make adopt on real DAGs nobody here wrote: Airflow's own example DAGs (core, standard
provider, common.sql), as the baked venv ships them, copied into a bake (DESIGN: Adopting
existing DAGs; issue "Measure it"). Then the baked `make test`, with no hand edit.

The figures (time, pass rate) are those the baked docs/adopting.md states.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import NEWEST, VENVS, bake, commit_all, make, user_environment

FOLDERS = ("example_dags", "providers/standard/example_dags", "providers/common/sql/example_dags")
# A problem line of the baked tests names the deployed copy: `(DEV_x.py)` or `DEV_x.py:`.
COPY = re.compile(r"\b(?:DEV|PROD|SBX_[a-z0-9]+)_(\w+\.py)\b")
ADOPTED_IN = re.compile(r"Adopted (\d+) DAG files in ([\d.]+) s")
# The plugins two of the examples need (a custom timetable, a custom weight rule), which a
# repository running them holds: Airflow registers such classes from plugins only.
EXAMPLE_PLUGINS = """\
from airflow.example_dags.plugins.decreasing_priority_weight_strategy import (
    DecreasingPriorityWeightStrategyPlugin,
)
from airflow.example_dags.plugins.workday import WorkdayTimetablePlugin

__all__ = ["DecreasingPriorityWeightStrategyPlugin", "WorkdayTimetablePlugin"]
"""


def airflow_package() -> Path:
    return next((VENVS / f"airflow-{NEWEST}").glob("lib/python*/site-packages/airflow"))


@pytest.fixture(scope="module")
def adopted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, set[str]]:
    """A bake holding Airflow's example DAGs, committed, then adopted by make adopt: the
    project, make adopt's output, and the example files' names."""
    project = bake(tmp_path_factory.mktemp("corpus"), airflow_version=NEWEST)
    dags = project / "bucket_contents" / "dags"
    names = set()
    for folder in FOLDERS:
        for path in (airflow_package() / folder).glob("*.py"):
            if path.name != "__init__.py":
                shutil.copyfile(path, dags / path.name)
                names.add(path.name)
    (project / "bucket_contents" / "plugins" / "example_plugins.py").write_text(EXAMPLE_PLUGINS)
    commit_all(project)
    done = make(project, "adopt", airflow_version=NEWEST)
    assert "Adopted" in done.stdout, done.stdout + done.stderr
    return project, done.stdout, names


def test_airflows_example_dags_adopt_in_under_ten_seconds(
    adopted: tuple[Path, str, set[str]],
) -> None:
    _, out, names = adopted
    found = ADOPTED_IN.search(out)
    assert found and int(found[1]) >= len(names), out
    assert float(found[2]) < 10, out


def test_at_least_95_percent_of_adopted_files_pass_make_test_with_no_hand_edit(
    adopted: tuple[Path, str, set[str]],
) -> None:
    """Each file that fails is named, with what to do, by make adopt's report or by the
    rules' own lines in make test's output, shown here."""
    project, out, names = adopted
    done = make(project, "test", airflow_version=NEWEST)
    # The failures' lines, not the report of every file's parse time after them.
    failures = done.stdout.partition("= FAILURES =")[2].partition("= warnings summary =")[0]
    failing = {m for m in COPY.findall(failures) if m in names}
    passed = len(names - failing) / len(names)
    assert passed >= 0.95, (
        f"{passed:.0%} of {len(names)} files pass; failing: {sorted(failing)}\n"
        f"make adopt said:\n{out}\nmake test said:\n{done.stdout[-20000:]}"
    )


def test_an_adopted_branch_dag_still_runs_under_dag_test_with_its_branches_and_xcom_pulls(
    adopted: tuple[Path, str, set[str]], tmp_path: Path
) -> None:
    """Task ids kept as written: the branch callables' returns and the XCom pulls still
    name real tasks, in the DEV copy as Airflow runs it."""
    project, _, _ = adopted
    assert make(project, "stamp-dev", airflow_version=NEWEST).returncode == 0
    dags = {
        "DEV_example_branch_dop_operator_v3": "DEV_example_branch_python_dop_operator_3.py",
        "DEV_example_xcom": "DEV_example_xcom.py",
    }
    # dag.test() stores every DAG of its folder first: these two, with their helpers.
    folder = tmp_path / "dags"
    built = project / "build" / "DEV" / "dags"
    shutil.copytree(built / "DEV_common", folder / "DEV_common")
    for file in dags.values():
        shutil.copyfile(built / file, folder / file)
    python = str(VENVS / f"airflow-{NEWEST}" / "bin" / "python")
    environment = user_environment() | {
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
        "PYTHONPATH": str(folder),
    }
    migrated = subprocess.run(
        [python, "-m", "airflow", "db", "migrate"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    script = """
import sys
from airflow.dag_processing.dagbag import DagBag
for file, dag_id in zip(sys.argv[1::2], sys.argv[2::2]):
    run = DagBag(file).get_dag(dag_id).test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    print(dag_id, run.state, sorted(states.items()))
"""
    files = [str(folder / file) for file in dags.values()]
    ran = subprocess.run(
        [python, "-c", script, *(a for pair in zip(files, dags, strict=True) for a in pair)],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr[-5000:]
    lines = dict(line.split(" ", 1) for line in ran.stdout.splitlines() if line.startswith("DEV_"))
    assert set(lines) == set(dags), ran.stdout
    for dag_id, result in lines.items():
        assert result.startswith("success") and "failed" not in result, f"{dag_id}: {result}"
    assert "skipped" in lines["DEV_example_branch_dop_operator_v3"]  # a branch not taken
