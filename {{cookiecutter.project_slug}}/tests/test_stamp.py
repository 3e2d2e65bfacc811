"""Stamping (DESIGN: one source, a DEV_ and a PROD_ build, the flag checked on the syntax tree)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mwaa_deploy.__main__ import main
from mwaa_deploy.stamp import StampError, stamp, write_build
from tests.conftest import SETTINGS

DAG = 'from airflow import DAG\n\nDEV = True\nflag = "DEV" if DEV else "PROD"\n'


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def write(sources: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = sources / "dags" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sources


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A copy of this project's bucket_contents/."""
    return Path(shutil.copytree(SETTINGS.sources, tmp_path / "bucket_contents"))


def test_stamp_never_edits_the_sources(sources: Path, tmp_path: Path) -> None:
    before = tree(sources)
    for env in ("DEV", "PROD"):
        write_build(stamp(sources, env), tmp_path / "build", env)
    assert tree(sources) == before


def test_dev_build_prefixes_every_file_and_keeps_the_flag(sources: Path) -> None:
    build = stamp(sources, "DEV")
    for source in (sources / "dags").glob("*.py"):
        assert build[f"dags/DEV_{source.name}"].count(b"\nDEV = True\n") == 1
    assert {key.split("/")[1] for key in build} == {
        f"DEV_{p.name}" for p in (sources / "dags").iterdir() if p.name != "__pycache__"
    }


def test_prod_build_differs_from_source_only_in_flag_and_name(tmp_path: Path) -> None:
    source = 'DEV = True  # the flag\nx = "DEV = True"\nif DEV:\n    pass\r\n'
    sources = write(tmp_path / "src", {"etl.py": source})
    build = stamp(sources, "PROD")
    assert build == {"dags/PROD_etl.py": source.replace("DEV = True  #", "DEV = False  #").encode()}


@pytest.mark.parametrize(
    ("source", "line", "says"),
    [
        pytest.param("x = 1\n", 1, "no `DEV = True` flag", id="missing"),
        pytest.param("DEV = True\nDEV = True\n", 2, "again (first at line 1)", id="repeated"),
        pytest.param("def f():\n    DEV = True\n", 2, "inside a block", id="in-function"),
        pytest.param("if x:\n    DEV = True\n", 2, "inside a block", id="in-if"),
        pytest.param("x = 1\nDEV = 1\n", 2, "the flag is `DEV = 1`", id="one-not-true"),
        pytest.param("DEV = False\n", 1, "the flag is `DEV = False`", id="false"),
        pytest.param("DEV: bool = True\n", 1, "plain statement", id="annotated"),
        pytest.param("DEV = x = True\n", 1, "plain statement", id="chained"),
        pytest.param("if (DEV := True):\n    pass\n", 1, "plain statement", id="walrus"),
        pytest.param("class C:\n    DEV = True\n", 2, "inside a block", id="in-class"),
        pytest.param(
            "try:\n    pass\nexcept E:\n    DEV = True\n", 4, "inside a block", id="in-except"
        ),
        pytest.param(
            "match x:\n    case 1:\n        DEV = True\n", 3, "inside a block", id="in-match"
        ),
        pytest.param("DEV = True\ndef f(:\n", 2, "syntax error", id="syntax-error"),
    ],
)
def test_malformed_flag_stops_the_stamp_with_path_line_and_fix(
    tmp_path: Path, source: str, line: int, says: str
) -> None:
    sources = write(tmp_path / "src", {"good.py": DAG, "bad.py": source})
    with pytest.raises(StampError) as raised:
        stamp(sources, "PROD")
    [problem] = raised.value.problems
    assert problem.startswith(f"{sources / 'dags' / 'bad.py'}:{line}: ")
    assert says in problem


def test_a_failed_stamp_leaves_the_previous_build_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    write(project / "bucket_contents", {"etl.py": DAG})
    shutil.copy(SETTINGS.root / "pyproject.toml", project)
    monkeypatch.setattr("mwaa_deploy.config.PROJECT_ROOT", project)
    monkeypatch.chdir(project)
    assert main(["stamp", "DEV"]) == 0
    before = tree(project / "build")
    write(project / "bucket_contents", {"broken.py": "x = 1\n"})
    assert main(["stamp", "DEV"]) == 1
    assert "bucket_contents/dags/broken.py:1: no `DEV = True` flag" in capsys.readouterr().err
    assert tree(project / "build") == before


def test_stamping_twice_is_byte_identical(sources: Path, tmp_path: Path) -> None:
    first = tree(write_build(stamp(sources, "PROD"), tmp_path / "one", "PROD"))
    second = tree(write_build(stamp(sources, "PROD"), tmp_path / "one", "PROD"))
    assert first == second == tree(write_build(stamp(sources, "PROD"), tmp_path / "two", "PROD"))


def test_helper_packages_are_stamped_per_environment_with_imports_rewritten(
    tmp_path: Path,
) -> None:
    dag = (
        "import common\n"
        "import common.sub\n"
        "import common.sub as alias, os\n"
        "from common import x\n"
        "from common.sub import (\n    y,\n)\n"
        "from . import z\n"
        "import commonplace\n"
        "DEV = True\n"
    )
    helper = "from common.sub import y\nfrom .sub import y as again\n"
    sources = write(
        tmp_path / "src",
        {"etl.py": dag, "common/__init__.py": "", "common/sub.py": helper, "common/q.sql": "--"},
    )
    build = {key: body.decode() for key, body in stamp(sources, "PROD").items()}
    assert build["dags/PROD_etl.py"] == (
        "import PROD_common as common\n"
        "import PROD_common.sub, PROD_common as common\n"
        "import PROD_common.sub as alias, os\n"
        "from PROD_common import x\n"
        "from PROD_common.sub import (\n    y,\n)\n"
        "from . import z\n"
        "import commonplace\n"
        "DEV = False\n"
    )
    assert build["dags/PROD_common/sub.py"] == (
        "from PROD_common.sub import y\nfrom .sub import y as again\n"
    )
    assert build["dags/PROD_common/q.sql"] == "--"


def test_helper_packages_carry_their_own_airflowignore(sources: Path, tmp_path: Path) -> None:
    build = write_build(stamp(sources, "DEV"), tmp_path / "build", "DEV")
    packages = [p for p in (build / "dags").iterdir() if p.is_dir()]
    assert packages
    for package in packages:
        assert package.name.startswith("DEV_")
        assert (package / ".airflowignore").is_file()
