"""The tests' fixtures: a throwaway Airflow home and both environments deployed side by
side, as on MWAA, with this branch's sandbox when there is one. Other shared code is in
tests/helpers.py."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from mwaa_deploy.bucket import sync
from mwaa_deploy.bucket.local_bucket import LocalBucket
from mwaa_deploy.exceptions import StampError
from mwaa_deploy.instance import instance_files
from mwaa_deploy.owners import ENVIRONMENTS
from mwaa_deploy.stamping.build import stamp
from tests import dag_rules
from tests.helpers import SETTINGS, THIS_SANDBOX


def builds() -> dict[str, dict[str, bytes]]:
    """Owner -> its build: DEV, PROD, and this branch's sandbox as deploy-dev would fill it."""
    found = {env: stamp(SETTINGS.sources, env) for env in ENVIRONMENTS}
    if THIS_SANDBOX:
        found[THIS_SANDBOX.owner] = stamp(SETTINGS.sources, THIS_SANDBOX.owner, THIS_SANDBOX.only)
    return found


# Airflow reads its settings when first imported: point it at a scratch home, with no
# example DAGs and no database needed for parsing.
AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-home-")
atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
# The plugins as MWAA unpacks plugins.zip: Airflow applies the cluster policy in them to
# every DAG it loads here, as it does on MWAA and in make airflow-local.
PLUGINS = instance_files.write_plugins(SETTINGS, Path(AIRFLOW_HOME) / "plugins")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PLUGINS)


def pytest_sessionstart() -> None:
    """Every test here loads the stamped DAGs: a file that cannot be stamped stops the run
    at once with the stamp's own lines, instead of failing each test with them."""
    _database()
    try:
        builds()
    except StampError as error:
        print("\n".join(error.problems), file=sys.stderr)
        pytest.exit("Stamp failed: fix the lines above; no test can load the DAGs until then.", 1)


def _database() -> None:
    """A metadata database with Airflow's tables, as MWAA's scheduler has one: Airflow 2
    reads it while it parses a DAG that uses dataset aliases, or a SubDagOperator."""
    import airflow

    if airflow.__version__.startswith("2."):
        import logging

        from airflow.utils.db import initdb

        logging.getLogger("alembic.runtime.migration").disabled = True  # a line a step
        initdb(load_connections=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    seconds = terminalreporter.config.stash.get(dag_rules.PARSE_SECONDS, {})
    if seconds:
        budget = SETTINGS.dag_parse_budget_seconds
        terminalreporter.section(f"DAG file parse times (budget {budget} s)")
        for file, took in seconds.items():
            terminalreporter.write_line(f"{took:6.2f} s  {file}")


@pytest.fixture(scope="session")
def deployed_dags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `dags/` folder of a local bucket holding the DEV and PROD deploys, and this
    branch's sandbox, as on MWAA."""
    root = tmp_path_factory.mktemp("deployed")
    bucket = LocalBucket(root / "bucket")
    for owner, build in builds().items():
        sync.deploy(bucket, owner, build)
    dags = bucket.root / "dags"
    # MWAA puts the dags folder on sys.path, which is how DAG files import their helpers.
    sys.path.insert(0, str(dags))
    return dags
