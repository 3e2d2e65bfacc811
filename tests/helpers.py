"""What the template's tests share besides fixtures (those are in conftest.py): the
template's answers, baking it, and running a baked project's Makefile."""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parent.parent
DEFAULTS_SLUG = "data-platform-airflow"
# The questions with their default answers, as a bake without input takes them.
DEFAULTS = json.loads((TEMPLATE / "cookiecutter.json").read_text())
# The choices MWAA supports, newest first; the baked project is tested on both ends.
AIRFLOW_VERSIONS = DEFAULTS["airflow_version"]
NEWEST, *_, OLDEST = AIRFLOW_VERSIONS
# Virtual environments of baked projects, one per Airflow version, kept between runs:
# installing Airflow is the slow part, and every bake of one version needs the same one.
VENVS = Path(os.environ.get("BAKED_VENVS", TEMPLATE / ".cache" / "baked-venvs"))
# MWAA's constraint files, per Airflow version (see their README): a bake holds its own
# version's; tests that need another version's (an upgrade check) read these copies, as
# a user without GitHub would read theirs through MWAA_CONSTRAINTS.
MWAA_CONSTRAINTS = TEMPLATE / "templates" / "mwaa-constraints"
# How long a serving make target (s3-local, mwaa-local) may take to say it is ready, and to
# stop on Ctrl-C.
STARTUP_SECONDS = 60
STOP_SECONDS = 20
# Answers -> the first bake of them in this process (see bake).
_BAKED: dict[tuple[tuple[str, str], ...], Path] = {}


def bake(output: Path, **answers: str) -> Path:
    """Bake the template with its defaults plus `answers`; return the project folder.

    The template does not change during a run: the first bake of these answers renders it,
    later ones copy that (its files new, as a bake's are: make reinstalls after it)."""
    key = tuple(sorted(answers.items()))
    if key not in _BAKED:
        scratch = tempfile.mkdtemp(prefix="bake-")
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        _BAKED[key] = Path(
            cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=scratch)
        )
    first = _BAKED[key]
    return Path(shutil.copytree(first, Path(output) / first.name, copy_function=shutil.copy))


def bake_cli(output: Path, *answers: str) -> subprocess.CompletedProcess[str]:
    """Bake as a user does, through the cookiecutter command, with key=value answers."""
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output)]
    return subprocess.run(
        [*command, str(TEMPLATE), *answers], capture_output=True, text=True, check=False
    )


def commit_all(folder: Path) -> None:
    """A git repository with everything committed on main, as the next steps after a bake say."""
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "init", "--quiet", "-b", "main"], cwd=folder, check=True)
    subprocess.run([*git, "add", "."], cwd=folder, check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "bake"], cwd=folder, check=True)


def make(
    project: Path, *targets: str, airflow_version: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    """Run the baked project's Makefile with the shared venv of its Airflow version.

    `variables` are set in the environment, as a user exports them in their shell.
    """
    venv = VENVS / f"airflow-{airflow_version}"
    return subprocess.run(
        ["make", *targets, f"VENV={venv}"],
        cwd=project,
        env=user_environment() | variables,
        capture_output=True,
        text=True,
        check=False,
    )


def user_environment() -> dict[str, str]:
    """This environment as a user's shell has it: not inside our make, no AWS settings, uv
    on PATH (this venv's), as on most machines that run the baked Makefile, and MWAA's
    constraint files where a user without GitHub keeps their copies."""
    inherited = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "AWS_", "S3_BUCKET", "MWAA_ENVIRONMENT")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    environment["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    environment["MWAA_CONSTRAINTS"] = str(MWAA_CONSTRAINTS)
    return environment


def wait_for_line(
    log: Path, text: str, command: subprocess.Popen[bytes], seconds: float = STARTUP_SECONDS
) -> None:
    """Until `command`, writing to `log`, has written `text`; it must not end first."""
    deadline = time.monotonic() + seconds
    while text not in log.read_text():
        assert command.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no {text!r} in {seconds} s: {log.read_text()}"
        time.sleep(0.2)


def stopped(command: subprocess.Popen[bytes]) -> bool:
    """Ctrl-C to the job's whole group; whether it ends within STOP_SECONDS (else it is
    killed, so that nothing of it outlives the test)."""
    os.killpg(command.pid, signal.SIGINT)
    try:
        command.wait(STOP_SECONDS)
        return True
    except subprocess.TimeoutExpired:
        os.killpg(command.pid, signal.SIGKILL)
        command.wait()
        return False


def shell_block(markdown: str, after: str = "") -> str:
    """The first ```sh block of `markdown` after the text `after`, as a reader copies it."""
    return markdown[markdown.index(after) :].split("```sh\n", 1)[1].split("```", 1)[0]


def serving_targets(project: Path) -> set[str]:
    """The baked project's targets that serve until Ctrl-C, as `make` lists them."""
    makefile = (project / "Makefile").read_text()
    return set(re.findall(r"^([a-z0-9-]+):.*## .*until Ctrl-C", makefile, re.MULTILINE))


def filled(node: Any, parameters: dict[str, str]) -> Any:
    """A part of a CloudFormation template as the stack would hold it: its Fn::Sub and Ref
    (long form, as the baked templates write them) filled in from `parameters`, which name
    the pseudo parameters too ("AWS::Partition", ...)."""
    if isinstance(node, dict) and set(node) == {"Fn::Sub"}:
        return re.sub(r"\$\{([\w:]+)\}", lambda m: parameters[m[1]], node["Fn::Sub"])
    if isinstance(node, dict) and set(node) == {"Ref"}:
        return parameters[node["Ref"]]
    if isinstance(node, dict):
        return {key: filled(value, parameters) for key, value in node.items()}
    if isinstance(node, list):
        return [filled(item, parameters) for item in node]
    return node
