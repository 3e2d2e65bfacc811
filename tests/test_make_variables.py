"""The baked Makefile hands every value a user gives it (TO, N, PORT, ...) to the deploy
tool in the environment, as data: none of them is ever pasted into a shell."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import NEWEST, bake, make

# (target, variable): every value a target of the Makefile takes from its user.
# upgrade-check alone only names the versions to check: UPGRADE_VENV goes with a TO, one
# MWAA cannot take (a downgrade), which the check refuses.
ALSO = {("upgrade-check", "UPGRADE_VENV"): ["TO=2.10.3"]}
GIVEN = [
    ("history-dev", "N"),
    ("history-prod", "N"),
    ("upgrade-check", "TO"),
    ("upgrade-check", "UPGRADE_VENV"),
    ("upgrade-check", "UV"),
    ("rollback-dev", "TO"),
    ("history-requirements", "N"),
    ("rollback-requirements", "TO"),
    ("airflow-local", "PORT"),
    ("clean-dev", "PORT"),
    ("clean-runs", "PORT"),
    ("s3-local", "PORT"),
    ("mwaa-local", "PORT"),
    ("mwaa-local", "AIRFLOW_PORT"),
    ("pr-check", "PLAN_PROD"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory.mktemp("baked"))


@pytest.mark.parametrize(("target", "variable"), GIVEN)
def test_a_value_given_to_make_is_never_run_by_the_shell(
    project: Path, target: str, variable: str
) -> None:
    ran = project / f"ran-{target}-{variable}"
    # Not a number, a version or an ID: each command refuses it at once.
    payload = f"x; touch {ran.name} #"
    also = ALSO.get((target, variable), [])
    result = make(project, target, f"{variable}={payload}", *also, airflow_version=NEWEST)
    assert result.returncode != 0, result.stdout + result.stderr
    assert not ran.exists(), result.stdout + result.stderr
