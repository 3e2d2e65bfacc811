"""The tests' fixtures: a throwaway Airflow home and both environments deployed side by
side, as on MWAA. Other shared code is in tests/helpers.py."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from mwaa_deploy import config, sync
from mwaa_deploy.buckets import LocalBucket
from mwaa_deploy.exceptions import StampError
from mwaa_deploy.stamp import ENVIRONMENTS, stamp
from tests import dag_rules
from tests.helpers import SETTINGS

# Airflow reads its settings when first imported: point it at a scratch home, with no
# example DAGs and no database needed for parsing.
AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-home-")
atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"


def pytest_sessionstart() -> None:
    """Every test here loads the stamped DAGs: a file that cannot be stamped stops the run
    at once with the stamp's own lines, instead of failing each test with them."""
    for env in ENVIRONMENTS:
        try:
            stamp(config.shown(SETTINGS.sources), env)
        except StampError as error:
            print("\n".join(error.problems), file=sys.stderr)
            pytest.exit(
                "Stamp failed: fix the lines above; no test can load the DAGs until then.", 1
            )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    seconds = terminalreporter.config.stash.get(dag_rules.PARSE_SECONDS, {})
    if seconds:
        budget = SETTINGS.dag_parse_budget_seconds
        terminalreporter.section(f"DAG file parse times (budget {budget} s)")
        for file, took in seconds.items():
            terminalreporter.write_line(f"{took:6.2f} s  {file}")


@pytest.fixture(scope="session")
def deployed_dags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `dags/` folder of a local bucket holding the DEV and PROD deploys, as on MWAA."""
    root = tmp_path_factory.mktemp("deployed")
    bucket = LocalBucket(root / "bucket")
    for env in ENVIRONMENTS:
        sync.deploy(bucket, env, stamp(SETTINGS.sources, env))
    dags = bucket.root / "dags"
    # MWAA puts the dags folder on sys.path, which is how DAG files import their helpers.
    sys.path.insert(0, str(dags))
    return dags
