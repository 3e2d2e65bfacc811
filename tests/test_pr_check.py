"""`make pr-check` of a baked project: what its CI runs on a pull request (ci.yml calls it),
which a person runs before pushing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import NEWEST, bake, commit_all, make

# What each step of the check prints when it has run, in the order CI runs them.
STEPS = [
    ("install", f"packages as MWAA pins them for Airflow {NEWEST}"),
    ("lint", "All checks passed!"),
    ("test", " passed"),
    ("check-requirements", "requirements.txt"),
    ("plan-prod", "Plan for PROD on"),
]


def test_make_pr_check_runs_install_lint_test_check_requirements_and_plan_prod_in_order(
    output: Path,
) -> None:
    project = bake(output)
    commit_all(project)
    subprocess.run(["git", "switch", "--quiet", "-c", "story/orders"], cwd=project, check=True)

    checked = make(project, "pr-check", airflow_version=NEWEST)

    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    said = checked.stdout
    places = {step: said.find(mark) for step, mark in STEPS}
    assert -1 not in places.values(), places
    assert list(places.values()) == sorted(places.values()), places


def test_pr_check_with_plan_prod_false_leaves_the_plan_out(output: Path) -> None:
    project = bake(output)

    dry = make(project, "-n", "pr-check", "PLAN_PROD=false", airflow_version=NEWEST)

    assert dry.returncode == 0, dry.stderr
    assert "-m pytest" in dry.stdout and "check-requirements" in dry.stdout
    assert "plan PROD" not in dry.stdout
