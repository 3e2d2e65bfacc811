"""Stamping (DESIGN: one source, a DEV_ and a PROD_ build, the flag checked on the syntax tree)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mwaa_deploy.stamp import StampError, stamp
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
    stamp(sources, tmp_path / "build", "DEV")
    stamp(sources, tmp_path / "build", "PROD")
    assert tree(sources) == before


def test_dev_build_prefixes_every_file_and_keeps_the_flag(sources: Path, tmp_path: Path) -> None:
    build = stamp(sources, tmp_path / "build", "DEV")
    for source in (sources / "dags").glob("*.py"):
        assert (build / "dags" / f"DEV_{source.name}").read_bytes().count(b"\nDEV = True\n") == 1
    assert {p.name for p in (build / "dags").iterdir()} == {
        f"DEV_{p.name}" for p in (sources / "dags").iterdir() if p.name != "__pycache__"
    }


def test_prod_build_differs_from_source_only_in_flag_and_name(tmp_path: Path) -> None:
    source = 'DEV = True  # the flag\nx = "DEV = True"\nif DEV:\n    pass\r\n'
    sources = write(tmp_path / "src", {"etl.py": source})
    build = stamp(sources, tmp_path / "build", "PROD")
    stamped = (build / "dags" / "PROD_etl.py").read_bytes()
    assert stamped == source.replace("DEV = True  #", "DEV = False  #", 1).encode()
    assert sorted(tree(build)) == ["dags/PROD_etl.py"]


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
        pytest.param("DEV = True\ndef f(:\n", 2, "syntax error", id="syntax-error"),
    ],
)
def test_malformed_flag_stops_the_stamp_with_path_line_and_fix(
    tmp_path: Path, source: str, line: int, says: str
) -> None:
    sources = write(tmp_path / "src", {"good.py": DAG, "bad.py": source})
    with pytest.raises(StampError) as raised:
        stamp(sources, tmp_path / "build", "PROD")
    [problem] = raised.value.problems
    assert problem.startswith(f"{sources / 'dags' / 'bad.py'}:{line}: ")
    assert says in problem
    assert not (tmp_path / "build").exists()


def test_a_failed_stamp_leaves_the_previous_build_as_it_was(tmp_path: Path) -> None:
    sources = write(tmp_path / "src", {"etl.py": DAG})
    build = stamp(sources, tmp_path / "build", "DEV")
    before = tree(build)
    write(sources, {"etl.py": DAG, "broken.py": "x = 1\n"})
    with pytest.raises(StampError):
        stamp(sources, tmp_path / "build", "DEV")
    assert tree(build) == before


def test_stamping_twice_is_byte_identical(sources: Path, tmp_path: Path) -> None:
    first = tree(stamp(sources, tmp_path / "one", "PROD"))
    second = tree(stamp(sources, tmp_path / "one", "PROD"))
    assert first == second == tree(stamp(sources, tmp_path / "two", "PROD"))


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
    build = stamp(sources, tmp_path / "build", "PROD")
    assert (build / "dags/PROD_etl.py").read_text() == (
        "import PROD_common as common\n"
        "import PROD_common.sub, PROD_common as common\n"
        "import PROD_common.sub as alias, os\n"
        "from PROD_common import x\n"
        "from PROD_common.sub import (\n    y,\n)\n"
        "from . import z\n"
        "import commonplace\n"
        "DEV = False\n"
    )
    assert (build / "dags/PROD_common/sub.py").read_text() == (
        "from PROD_common.sub import y\nfrom .sub import y as again\n"
    )
    assert (build / "dags/PROD_common/q.sql").read_text() == "--"


def test_helper_packages_carry_their_own_airflowignore(sources: Path, tmp_path: Path) -> None:
    build = stamp(sources, tmp_path / "build", "DEV")
    packages = [p for p in (build / "dags").iterdir() if p.is_dir()]
    assert packages
    for package in packages:
        assert package.name.startswith("DEV_")
        assert (package / ".airflowignore").is_file()
