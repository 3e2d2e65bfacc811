"""Your sources, stamped as `make deploy-dev` and `make deploy-prod` stamp them.

The stamp itself (the flag rule, helper packages, symlinks, ...) is tested by the template
this project was made from; these tests check that your own files make both builds.
"""

from __future__ import annotations

import ast

import pytest

from mwaa_deploy.owners import ENVIRONMENTS
from mwaa_deploy.stamping.build import stamp
from tests.helpers import SETTINGS

DAGS = SETTINGS.sources / "dags"


def flag_value(source: bytes) -> object:
    """The value of the module-level `DEV = ...` of a stamped file."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [
            t.id for t in node.targets if isinstance(t, ast.Name)
        ] == ["DEV"]:
            return ast.literal_eval(node.value)
    raise AssertionError("no module-level DEV flag")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_dag_file_is_deployed_with_its_environments_flag(env: str) -> None:
    build = stamp(SETTINGS.sources, env)
    for source in DAGS.glob("*.py"):
        assert flag_value(build[f"dags/{env}_{source.name}"]) is (env == "DEV"), source.name


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_helper_package_gets_a_copy_of_its_own_per_environment(env: str) -> None:
    build = stamp(SETTINGS.sources, env)
    for package in (p for p in DAGS.iterdir() if p.is_dir() and p.name != "__pycache__"):
        for module in package.rglob("*.py"):
            relative = module.relative_to(package).as_posix()
            assert f"dags/{env}_{package.name}/{relative}" in build
