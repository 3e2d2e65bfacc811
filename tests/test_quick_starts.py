"""Both READMEs' quick starts work as written: copied into a shell line by line, they bake,
commit and deploy. Lines that serve until Ctrl-C (airflow-local) are left to their own tests."""

from __future__ import annotations

import os
import shutil
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


def run_as_written(
    block: str, folder: Path, left_out: set[str], environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`block` in one shell in `folder` (with `environment`, else the user's with SHELL),
    stopping at the first failure, but for its lines that make a target of `left_out` (those
    that serve until Ctrl-C; the template's whole suite); Enter to every question."""
    lines = [
        line
        for line in block.splitlines()
        if not (line.startswith("make ") and line.split()[1] in left_out)
    ]
    return subprocess.run(
        ["bash", "-e", "-c", "\n".join(lines)],
        cwd=folder,
        env=environment or user_environment() | SHELL,
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


def clone_of_the_template(folder: Path, branch: str) -> Path:
    """The template as a clone holds it (what its .gitignore leaves out is left out), on
    `branch`, with the template's tools installed, as `make demo` finds them."""
    ignored = (TEMPLATE / ".gitignore").read_text().split()
    clone = folder / "mwaa-single-env"
    shutil.copytree(
        TEMPLATE, clone, ignore=shutil.ignore_patterns(".git", *(p.strip("/") for p in ignored))
    )
    # The one tool `make demo` runs from the template's venv: this venv's, marked installed
    # after the lock's copy (a venv of the clone's own: nothing rebuilds this one).
    (clone / ".venv" / "bin").mkdir(parents=True)
    (clone / ".venv" / "bin" / "cookiecutter").symlink_to(
        Path(sys.executable).with_name("cookiecutter")
    )
    (clone / ".venv" / ".installed").touch()
    for step in (["init", "-q", "-b", branch], ["add", "."], ["commit", "-q", "-m", "template"]):
        subprocess.run(["git", *step], cwd=clone, env=user_environment() | SHELL, check=True)
    return clone


def test_the_template_readmes_first_block_deploys_dev_and_prod_side_by_side_from_any_branch(
    tmp_path: Path,
) -> None:
    """`make demo` on a branch of the template's own (here one a story branch's pattern
    matches): the demo is no part of the template's repository, so its deploy-dev writes
    the shared DEV, not a sandbox named after the template's branch."""
    clone = clone_of_the_template(tmp_path, "story/template-work")
    block = shell_block((TEMPLATE / "README.md").read_text())
    assert block.startswith("make demo ") and "\nmake test " in block

    # The demo builds its own venv, as a user's does: no VENV= reaches its make.
    user = {k: v for k, v in (user_environment() | SHELL).items() if k != "VENV"}
    result = run_as_written(block, clone, {"test"}, user)  # the whole suite: it runs this test

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    listed = result.stdout.split("ls demo/*/local_bucket/dags\n", 1)[1].split()
    assert {"DEV_dbt_models.py", "PROD_dbt_models.py"} <= {*listed}, result.stdout
    assert_committed_and_deployed(clone / "demo" / DEFAULTS_SLUG)


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
