"""Your settings: pyproject.toml [tool.mwaa_deploy], as every `make` target reads them."""

from __future__ import annotations

from mwaa_deploy import config
from tests.helpers import SETTINGS


def test_the_settings_load_and_name_airflow_and_its_python() -> None:
    """A wrong setting fails here, with the one line the deploy would print."""
    settings = config.load(SETTINGS.root)
    assert settings.airflow_version and settings.python_version
