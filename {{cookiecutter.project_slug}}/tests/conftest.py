"""Shared fixtures: a throwaway Airflow home, and both environments deployed side by side."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

from mwaa_deploy import config, sync
from mwaa_deploy.stamp import ENVIRONMENTS, stamp

# Airflow reads its settings when first imported: point it at a scratch home, with no
# example DAGs and no database needed for parsing.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"

SETTINGS = config.load()


@pytest.fixture(scope="session")
def deployed_dags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `dags/` folder of a local bucket holding the DEV and PROD deploys, as on MWAA."""
    root = tmp_path_factory.mktemp("deployed")
    bucket = sync.LocalBucket(root / "bucket")
    for env in ENVIRONMENTS:
        stamp(SETTINGS.sources, root / "build", env)
        desired = sync.read_build(root / "build", env)
        sync.apply(bucket, sync.plan(bucket, env, desired))
    dags = bucket.root / "dags"
    # MWAA puts the dags folder on sys.path, which is how DAG files import their helpers.
    sys.path.insert(0, str(dags))
    return dags
