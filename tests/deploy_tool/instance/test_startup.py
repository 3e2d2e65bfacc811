"""startup.sh, checked as MWAA runs it (DESIGN: instance-wide files fail here, not on MWAA):
`make check-startup`, and part of `make check-requirements`. Real bash runs the script."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mwaa_deploy.__main__ import main
from mwaa_deploy.instance import startup

SCRIPT = "bucket_contents/startup.sh"
RESERVED = "which MWAA reserves for itself (and sets back over the script's value)"


def check_startup_fails(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`make check-startup`: it must exit non-zero; the problems it printed."""
    assert main(["check-startup"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "Check failed: fix startup.sh before it reaches MWAA."
    return lines[:-1]


def test_a_script_that_exports_a_reserved_variable_is_refused_with_its_line(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project(
        startup=(
            "#!/usr/bin/env bash\n"
            "export DBT_TARGET_PATH=/tmp/dbt\n"
            'export AIRFLOW_HOME="/opt/mine"  # breaks MWAA\n'
            "declare -x MWAA__CORE__REQUIREMENTS_PATH=/x\n"
        )
    )
    assert check_startup_fails(capsys) == [
        f"{SCRIPT}:3: exports AIRFLOW_HOME, {RESERVED}; remove it, or use a name of your own",
        f"{SCRIPT}:4: exports MWAA__CORE__REQUIREMENTS_PATH, {RESERVED}; remove it, or use a"
        " name of your own",
    ]


def test_a_reserved_variable_set_at_run_time_is_refused_too(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project(startup="#!/usr/bin/env bash\nname=AWS_REGION\nexport $name=us-east-1\n")
    assert check_startup_fails(capsys) == [
        f"{SCRIPT}: sets AWS_REGION, {RESERVED}; remove it, or use a name of your own"
    ]


@pytest.mark.parametrize(
    "then",
    [
        pytest.param("PATH=/opt/mytools/bin", id="path-elsewhere"),
        pytest.param("unset PATH", id="no-path"),
        pytest.param("env() { :; }", id="env-function"),
        pytest.param("trap 'echo done' EXIT", id="own-exit-trap"),
        pytest.param("unset STARTUP_CHECK_ENV STARTUP_CHECK_SCRIPT", id="check-variables-unset"),
    ],
)
def test_a_reserved_variable_is_caught_whatever_the_script_does_after(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str], then: str
) -> None:
    project(startup=f"#!/usr/bin/env bash\nset -a\nAIRFLOW__CORE__EXECUTOR=LocalExecutor\n{then}\n")
    assert check_startup_fails(capsys) == [
        f"{SCRIPT}: sets AIRFLOW__CORE__EXECUTOR, {RESERVED}; remove it, or use a name of your own"
    ]


def test_a_script_that_hides_what_it_leaves_set_is_refused(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project(startup="#!/usr/bin/env bash\nexport MINE=1\ntrap - EXIT\nexit 0\n")
    [line] = check_startup_fails(capsys)
    assert line.startswith(f"{SCRIPT}: the check cannot see what it leaves set")


def running(pid: int) -> bool:
    """The process is alive: not gone, and not a zombie waiting to be reaped."""
    state = subprocess.run(
        ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, check=False
    ).stdout.strip()
    return bool(state) and not state.startswith("Z")


@pytest.mark.parametrize("ends", ["in-time", "too-late"])
def test_nothing_the_script_starts_outlives_the_check(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str], tmp_path: Path, ends: str
) -> None:
    pids = tmp_path / "pids"
    root = project(
        startup=(
            "#!/usr/bin/env bash\n"
            f"sleep 300 &\necho $! >> {pids}\n"
            f"nohup sleep 301 > /dev/null 2>&1 &\necho $! >> {pids}\n"
            # A session of its own leaves the script's process group, in the background
            # and from a subshell that exits at once.
            f"setsid sleep 302 &\necho $! >> {pids}\n"
            f"(setsid sleep 303 & echo $! >> {pids})\n"
            # setsid -f forks first: the sleep's parent is gone before the script ends.
            f"setsid -f bash -c 'echo $$ >> {pids}; exec sleep 304'\n"
            + ("sleep 305\n" if ends == "too-late" else "")
        )
    )
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "startup_time_limit_seconds = 60.0", "startup_time_limit_seconds = 1.0"
        )
    )
    main(["check-startup"])
    capsys.readouterr()
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) == 5
    deadline = time.monotonic() + 5
    while any(map(running, started)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in started if running(pid)]


def test_the_run_reports_the_variables_the_script_leaves_set(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project(
        startup=(
            "#!/usr/bin/env bash\n"
            "export DBT_TARGET_PATH=/tmp/dbt\n"
            'export PATH="$PATH:/opt/tools/bin"\n'
            "LOCAL_ONLY=1\n"  # not exported: Airflow never sees it
            "exit 0\n"  # MWAA keeps what was exported before an exit too
        )
    )
    assert main(["check-startup"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        f"{SCRIPT} leaves these variables set for Airflow's processes: DBT_TARGET_PATH, PATH"
        in (out)
    )
    assert out[-1] == f"Checked for MWAA: {SCRIPT}."


def test_a_script_that_runs_too_long_is_stopped_and_refused(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(startup="#!/usr/bin/env bash\nsleep 600 &\nsleep 600\n")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "startup_time_limit_seconds = 60.0", "startup_time_limit_seconds = 1.0"
        )
    )
    started = time.monotonic()
    [line] = check_startup_fails(capsys)
    assert time.monotonic() - started < 10
    assert line.startswith(
        f"{SCRIPT}: still running after 1 s here, so it was stopped; MWAA stops it after 5 minutes"
    )


def test_the_default_time_limit_is_below_mwaas() -> None:
    from tests.deploy_tool.helpers import SETTINGS

    assert SETTINGS.startup_time_limit_seconds < startup.MWAA_LIMIT_SECONDS


def test_a_script_with_a_syntax_error_is_refused_and_not_run(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    project(startup=f'#!/usr/bin/env bash\ntouch {ran}\nif [ -n "$X" ]; then\n  echo x\n')
    assert check_startup_fails(capsys) == [
        f"{SCRIPT}: line 5: syntax error: unexpected end of file"
    ]
    assert not ran.exists()


def test_check_requirements_runs_the_startup_check(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project(startup="#!/usr/bin/env bash\nexport AWS_DEFAULT_REGION=us-east-1\n")
    assert main(["check-requirements"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{SCRIPT}:2: exports AWS_DEFAULT_REGION, {RESERVED}")
    assert err[-1] == "Check failed: nothing was uploaded."


@pytest.mark.parametrize("offline_wheels", [False, True])
def test_with_offline_wheels_a_pip_the_script_runs_reaches_no_index(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str], offline_wheels: bool
) -> None:
    """As on a private network, where MWAA installs from plugins.zip alone (make
    pack-wheels): a script that would download its packages fails here, not on MWAA."""
    root = project(startup='#!/usr/bin/env bash\n[ "$PIP_NO_INDEX" != 1 ] || exit 7\n')
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    assert "offline_wheels = false" in text
    pyproject.write_text(
        text.replace("offline_wheels = false", f"offline_wheels = {offline_wheels}".lower())
    )
    assert main(["check-startup"]) == 0
    exited = f"{SCRIPT} exited with status 7 here"
    assert any(line.startswith(exited) for line in capsys.readouterr().out.splitlines()) is (
        offline_wheels
    )
