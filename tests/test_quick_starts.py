"""Both READMEs' quick starts work as written: copied into a shell line by line, they bake,
commit and deploy. Lines that serve until Ctrl-C (airflow-local) are left to their own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import (
    DEFAULTS_SLUG,
    NEWEST,
    TEMPLATE,
    VENVS,
    bake,
    serving_targets,
    shell_block,
    user_environment,
)

# git as a user has it set up, and the venv `make install` would build, for every make.
SHELL = {
    "GIT_AUTHOR_NAME": "Ann",
    "GIT_AUTHOR_EMAIL": "ann@example.com",
    "GIT_COMMITTER_NAME": "Ann",
    "GIT_COMMITTER_EMAIL": "ann@example.com",
    "VENV": str(VENVS / f"airflow-{NEWEST}"),
}


def run_as_written(block: str, folder: Path, serving: set[str]) -> subprocess.CompletedProcess[str]:
    """`block` in one shell in `folder`, stopping at the first failure, but for its lines
    that serve until Ctrl-C; Enter to every question."""
    lines = [
        line
        for line in block.splitlines()
        if not (line.startswith("make ") and line.split()[1] in serving)
    ]
    return subprocess.run(
        ["bash", "-e", "-c", "\n".join(lines)],
        cwd=folder,
        env=user_environment() | SHELL,
        input="\n" * 50,
        capture_output=True,
        text=True,
        check=False,
    )


def assert_committed_and_deployed(project: Path) -> None:
    log = subprocess.run(
        ["git", "log", "--format=%s"], cwd=project, capture_output=True, text=True, check=True
    )
    assert log.stdout == "Bake from mwaa-single-env\n"
    dags = {p.name for p in (project / "local_bucket" / "dags").iterdir()}
    assert {"DEV_dbt_models.py", "PROD_dbt_models.py"} <= dags


def test_the_template_readmes_quick_start_bakes_commits_and_deploys_as_written(
    tmp_path: Path,
) -> None:
    (tmp_path / "mwaa-single-env").symlink_to(TEMPLATE)  # a clone of the template
    block = shell_block((TEMPLATE / "README.md").read_text(), "## Use")
    serving = serving_targets(TEMPLATE / "{{cookiecutter.project_slug}}")

    result = run_as_written(block, tmp_path, serving)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_committed_and_deployed(tmp_path / DEFAULTS_SLUG)
    assert " passed" in result.stdout  # make install test


def test_the_baked_readmes_first_block_commits_deploys_and_checks_as_written(
    output: Path,
) -> None:
    project = bake(output)
    block = shell_block((project / "README.md").read_text())

    result = run_as_written(block, project, serving_targets(project))

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_committed_and_deployed(project)
    assert " passed" in result.stdout  # make install test
    assert "No git here" not in result.stdout + result.stderr


def test_after_make_demo_the_next_steps_cd_into_demo_data_platform_airflow(
    tmp_path: Path,
) -> None:
    """The bake `make demo` runs, as its recipe writes it, from a shell in the template's
    folder (here a folder of its own, with the template named by its path)."""
    makefile = (TEMPLATE / "Makefile").read_text()
    [recipe] = [line.strip() for line in makefile.splitlines() if "cookiecutter --no-input" in line]
    command = recipe.replace("$(VENV)/bin/", f"{Path(sys.executable).parent}/")
    command = command.removesuffix(" .") + f" {TEMPLATE}"
    environment = {k: v for k, v in user_environment().items() if k != "PWD"}

    baked = subprocess.run(
        ["sh", "-c", command],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert baked.returncode == 0, baked.stderr
    assert "\n  cd demo/data-platform-airflow\n" in baked.stdout, baked.stdout
    assert os.path.isdir(tmp_path / "demo" / DEFAULTS_SLUG)
