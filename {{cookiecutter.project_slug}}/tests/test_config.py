"""Your settings: pyproject.toml [tool.mwaa_deploy], as every `make` target reads them."""

from __future__ import annotations

from mwaa_deploy import config
from mwaa_deploy.local import airflow_settings
from tests.helpers import SETTINGS


def test_the_settings_load_and_name_airflow_and_its_python() -> None:
    """A wrong setting fails here, with the one line the deploy would print."""
    settings = config.load(SETTINGS.root)
    assert settings.airflow_version and settings.python_version


def test_the_local_connections_keep_dev_and_prod_apart() -> None:
    """airflow_settings.yaml, which airflow-local reads: every id DEV's or PROD's, no entry
    naming the other environment's role, account or secrets, no secret written out."""
    assert airflow_settings.problems(SETTINGS.root) == []
