"""Private networks and other platforms (issue 29): `make pack-wheels` downloads the wheels
of requirements.txt for MWAA's platform and Python, with MWAA's pins, whatever machine it
runs on, packs them into plugins.zip beside the plugins, and rewrites requirements.txt to
install from there with no index; with offline_wheels, deploy-requirements ships those.

pip downloads for real (a small pure package and one with compiled wheels, from pip's
cache after the first run), and the result is installed for real, with no index.
"""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from mwaa_deploy.__main__ import main
from mwaa_deploy.instance import pip_requirements, wheels
from tests.deploy_tool.helpers import CONSTRAINTS_LINE, SETTINGS, command_line_on, write_project
from tests.helpers import MWAA_CONSTRAINTS, VENVS

PYTHON = SETTINGS.python_version
CP = f"cp{PYTHON.replace('.', '')}"
# six: pure Python; MarkupSafe: compiled, a wheel for each platform and Python.
REQUIREMENTS = f"{CONSTRAINTS_LINE}\n# added by the data team\nsix\nmarkupsafe\n"
OFFLINE = Path("build/offline")
PLUGINS_ON_MWAA = "/usr/local/airflow/plugins"


def pack(project: Callable[..., Path], requirements: str = REQUIREMENTS) -> Path:
    """`make pack-wheels` on a project with these requirements; build/offline/."""
    root = project(requirements=requirements)
    assert main(["pack-wheels"]) == 0
    return root / OFFLINE


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build/offline/ of one `make pack-wheels` of REQUIREMENTS, which the tests that only
    read what it packed share: each pack is seconds of pip."""
    root = write_project(tmp_path_factory.mktemp("packed") / "project", REQUIREMENTS)
    with pytest.MonkeyPatch.context() as monkeypatch:
        command_line_on(root, monkeypatch)
        assert main(["pack-wheels"]) == 0
    return root / OFFLINE


def packed_wheels(folder: Path) -> list[str]:
    with zipfile.ZipFile(folder / "plugins.zip") as archive:
        return [name for name in archive.namelist() if name.endswith(".whl")]


def without_pip_settings() -> dict[str, str]:
    """This environment with no index, no folder of wheels, no pip configuration: a
    machine on a private network."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return environment | {"PIP_CONFIG_FILE": os.devnull}


def test_the_packed_zip_installs_into_a_fresh_venv_with_no_index(
    packed: Path, tmp_path: Path
) -> None:
    plugins = tmp_path / "plugins"
    with zipfile.ZipFile(packed / "plugins.zip") as archive:
        archive.extractall(plugins)
    requirements = tmp_path / "requirements.txt"
    text = (packed / "requirements.txt").read_text().replace(PLUGINS_ON_MWAA, str(plugins))
    requirements.write_text(text)
    venv = tmp_path / "venv"
    mwaa_python = VENVS / f"airflow-{SETTINGS.airflow_version}" / "bin" / "python"
    subprocess.run([str(mwaa_python), "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-r", str(requirements)],
        env=without_pip_settings(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    imported = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import markupsafe._speedups, six"], check=False
    )
    assert imported.returncode == 0


def test_every_packed_wheel_is_for_mwaas_platform_and_python(packed: Path) -> None:
    minor = (3, int(PYTHON.split(".")[1]))
    mwaa = {
        *cpython_tags(minor, [CP, "abi3", "none"], pip_requirements.PLATFORMS),
        *compatible_tags(minor, CP, pip_requirements.PLATFORMS),  # py3-none-any among them
    }
    names = packed_wheels(packed)
    assert names, "no wheel packed"
    for name in names:
        assert parse_wheel_filename(name.split("/")[-1])[3] & mwaa, f"{name} does not install"
    # This machine's Python is not MWAA's, yet the compiled wheel is MWAA's.
    [markupsafe] = [name for name in names if name.startswith("wheels/markupsafe-")]
    assert f"-{CP}-{CP}-" in markupsafe and markupsafe.endswith("_x86_64.whl"), markupsafe


def test_the_packed_requirements_install_from_plugins_zip_and_keep_their_line_numbers(
    project: Callable[..., Path],
) -> None:
    requirements = REQUIREMENTS + "--extra-index-url https://pypi.org/simple\n"
    folder = pack(project, requirements)
    constraints = f"{PLUGINS_ON_MWAA}/{wheels.constraints_path(SETTINGS)}"
    assert (folder / "requirements.txt").read_text().splitlines() == [
        f'--constraint "{constraints}"',
        "# added by the data team",
        "six",
        "markupsafe",
        "# installed from plugins.zip instead: --extra-index-url https://pypi.org/simple",
        "# Added by make pack-wheels: MWAA installs these from plugins.zip, with no index.",
        "--no-index",
        f"--find-links {PLUGINS_ON_MWAA}/wheels",
    ]
    with zipfile.ZipFile(folder / "plugins.zip") as archive:
        held = set(archive.namelist())
        airflow_constraints = archive.read(wheels.constraints_path(SETTINGS))
    # Beside the project's plugins; Airflow, already on MWAA, is not packed.
    assert {"operators/notify.py", "mwaa_policy.json"} <= held
    assert not [name for name in held if "apache_airflow" in name]
    assert (
        airflow_constraints
        == (MWAA_CONSTRAINTS / SETTINGS.airflow_version / "airflow_constraints.txt").read_bytes()
    )


def test_a_package_with_nothing_for_mwaa_is_one_line_naming_its_line(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project(requirements=f"{CONSTRAINTS_LINE}\nsix\npywin32\n")
    assert main(["pack-wheels"]) == 1
    assert (
        capsys.readouterr()
        .err.splitlines()[0]
        .startswith(
            "bucket_contents/requirements.txt:3: no wheel for Linux x86_64 / cp312 of `pywin32`"
        )
    )


def test_the_offline_check_installs_from_the_zip_alone_naming_the_line_it_lacks(
    packed: Path,
    mwaa_constraints: Path,  # noqa: ARG001 - for its effect: pip reads MWAA's pins from it
) -> None:
    source = zipfile.ZipFile(packed / "plugins.zip")
    lacking = io.BytesIO()
    with source, zipfile.ZipFile(lacking, "w") as archive:
        for name in source.namelist():
            if not name.startswith("wheels/markupsafe-"):
                archive.writestr(name, source.read(name))
    requirements = (packed / "requirements.txt").read_bytes()
    path = "bucket_contents/requirements.txt"
    [problem] = wheels.offline_problems(SETTINGS, requirements, lacking.getvalue(), path)
    assert problem.startswith(
        f"{path}:4: plugins.zip lacks what this line needs, so MWAA cannot install it with"
        " no index (pip: "
    ), problem


def test_with_offline_wheels_deploy_requirements_ships_the_packed_files(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(requirements=REQUIREMENTS)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("offline_wheels = false", "offline_wheels = true")
    )
    assert main(["pack-wheels"]) == 0
    assert main(["deploy-requirements"]) == 0
    bucket = root / SETTINGS.local_bucket.name
    for name in ("requirements.txt", "plugins.zip"):
        assert (bucket / name).read_bytes() == (root / OFFLINE / name).read_bytes(), name
    # The same sources pack to the same bytes: a second run changes nothing on MWAA.
    capsys.readouterr()
    assert main(["deploy-requirements"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("nothing written")
