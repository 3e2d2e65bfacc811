"""What the tests share besides fixtures (those are in conftest.py)."""

from __future__ import annotations

from mwaa_deploy import config, owners
from mwaa_deploy.commands.sandboxes import Target, target
from mwaa_deploy.exceptions import SandboxError

# This project's settings: pyproject.toml [tool.mwaa_deploy] and the environment.
SETTINGS = config.load()


def this_sandbox() -> Target | None:
    """The sandbox `make deploy-dev` would deploy from this checkout (on a story branch, or
    with SANDBOX set), holding what it would hold; None on the default branch."""
    try:
        chosen = target(SETTINGS, "DEV")
    except SandboxError:
        return None
    return chosen if owners.is_sandbox(chosen.owner) else None


THIS_SANDBOX = this_sandbox()
