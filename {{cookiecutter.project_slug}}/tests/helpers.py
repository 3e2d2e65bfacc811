"""What the tests share besides fixtures (those are in conftest.py)."""

from __future__ import annotations

from mwaa_deploy import config

# This project's settings: pyproject.toml [tool.mwaa_deploy] and the environment.
SETTINGS = config.load()
