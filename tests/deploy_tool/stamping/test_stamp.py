"""Stamping (DESIGN: one source, a DEV_ and a PROD_ build, the flag checked on the syntax tree)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mwaa_deploy import file_state
from mwaa_deploy.__main__ import main
from mwaa_deploy.exceptions import StampError
from mwaa_deploy.stamping import build as stamping
from mwaa_deploy.stamping import stamp_cache
from mwaa_deploy.stamping.build import stamp
from mwaa_deploy.stamping.stamp import scan, write_build
from tests.deploy_tool.helpers import SETTINGS
from tests.helpers import NEWEST, OLDEST, VENVS

DAG = 'from airflow import DAG\n\nDEV = True\nflag = "DEV" if DEV else "PROD"\n'


def stamp_problems(sources: Path, env: str = "DEV") -> list[str]:
    """The problems that stop a stamp of `sources` for `env`; the test fails if none does."""
    with pytest.raises(StampError) as raised:
        stamp(sources, env)
    return raised.value.problems


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
        # What `sed '1i DEV = True'` makes: it parses, and fails when Airflow imports it.
        pytest.param(
            '"""Doc."""\nDEV = True\nfrom __future__ import annotations\n',
            3,
            "from __future__ imports must occur at the beginning of the file; move it to the"
            " top, after the docstring; `DEV = True` goes below it",
            id="flag-above-future-import",
        ),
    ],
)
def test_malformed_flag_stops_the_stamp_with_path_line_and_fix(
    tmp_path: Path, source: str, line: int, says: str
) -> None:
    sources = write(tmp_path / "src", {"good.py": DAG, "bad.py": source})
    [problem] = stamp_problems(sources, "PROD")
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


@pytest.mark.parametrize("env", ["DEV", "PROD", "SBX_ann"])
def test_a_stamp_redoes_only_the_files_that_changed_and_gives_the_same_bytes(
    sources: Path, tmp_path: Path, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = tmp_path / "build"
    cold = stamp(sources, env, build=build)
    assert stamp(sources, env) == cold  # the kept files are what a full stamp gives
    stamped: list[str] = []
    for name in ("stamp_dag_file", "stamp_helper_module"):
        real = getattr(stamping, name)
        monkeypatch.setattr(
            stamping, name, lambda *args, real=real: stamped.append(args[1]) or real(*args)
        )
    edited = sources / "dags" / "dbt_models.py"
    edited.write_text(edited.read_text() + "# edited\n")

    warm = stamp(sources, env, build=build)

    assert stamped == [str(edited)]
    assert warm == stamp(sources, env)
    edited.write_text(edited.read_text().replace("DEV = True", "DEV = False"))
    with pytest.raises(StampError):  # a failure is never kept
        stamp(sources, env, build=build)


def test_a_kept_stamp_keeps_the_sources_line_endings(tmp_path: Path) -> None:
    dags = tmp_path / "src" / "dags"
    dags.mkdir(parents=True)
    (dags / "windows.py").write_bytes(b'"""Saved on Windows."""\r\nDEV = True\r\n')
    build = tmp_path / "build"
    cold = stamp(tmp_path / "src", "PROD", build=build)
    assert cold["dags/PROD_windows.py"] == b'"""Saved on Windows."""\r\nDEV = False\r\n'
    assert stamp(tmp_path / "src", "PROD", build=build) == cold


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


@pytest.mark.parametrize(
    ("source", "line"),
    [
        pytest.param("DEV = True\nfor DEV in (True,):\n    pass\n", 2, id="for-loop"),
        pytest.param("DEV = True\nwith open(x) as DEV:\n    pass\n", 2, id="with-as"),
        pytest.param("DEV = True\nfrom common.settings import DEV\n", 2, id="import"),
        pytest.param("DEV = True\nimport settings as DEV\n", 2, id="import-as"),
        pytest.param("DEV = True\ndef DEV():\n    pass\n", 2, id="def"),
        pytest.param("DEV = True\ntry:\n    pass\nexcept E as DEV:\n    pass\n", 4, id="except"),
        pytest.param("DEV = True\nfrom common.settings import *\n", 2, id="star-import"),
        pytest.param("DEV = True\nmatch x:\n    case {'k': DEV}:\n        pass\n", 3, id="case"),
    ],
)
def test_nothing_but_the_flag_line_may_bind_dev(tmp_path: Path, source: str, line: int) -> None:
    sources = write(tmp_path / "src", {"etl.py": source, "common/settings.py": "X = 1\n"})
    [problem] = stamp_problems(sources, "PROD")
    assert problem.startswith(f"{sources / 'dags' / 'etl.py'}:{line}: ")
    assert "`DEV = True` must be the only" in problem


@pytest.mark.parametrize(
    "helper",
    [
        pytest.param("DEV = True\n", id="flag"),
        pytest.param("if True:\n    DEV = True\n", id="nested-flag"),
        pytest.param("from os import environ as DEV\n", id="import"),
    ],
)
def test_no_module_of_a_prod_build_can_set_dev(tmp_path: Path, helper: str) -> None:
    dag = "from common.settings import *\nDEV = True\n"
    sources = write(tmp_path / "src", {"etl.py": DAG, "common/settings.py": helper, "x.py": dag})
    problems = [p for p in stamp_problems(sources, "PROD") if "common/settings.py" in p]
    assert len(problems) == 1 and "a helper module sets `DEV`" in problems[0]


@pytest.mark.parametrize(
    ("dag", "line"),
    [
        pytest.param("from airflow import DAG\n\nwith DAG(dag_id='x'):\n    pass\n", 3, id="with"),
        pytest.param(
            "from airflow.sdk import DAG as D\n\nwith D(dag_id='x'):\n    pass\n", 3, id="alias"
        ),
        pytest.param(
            "from airflow.sdk import dag as mkdag\n\n@mkdag()\ndef x():\n    pass\n\nx()\n",
            7,
            id="decorator-alias",
        ),
        pytest.param(
            "from airflow import models\n\ndef build():\n    return models.DAG('x')\n\nbuild()\n",
            6,
            id="factory",
        ),
    ],
)
def test_a_dag_file_in_a_sub_folder_is_refused_not_shipped_as_a_helper(
    tmp_path: Path, dag: str, line: int
) -> None:
    sources = write(tmp_path / "src", {"etl.py": DAG, "team_a/orders.py": dag})
    assert stamp_problems(sources) == [
        f"{sources / 'dags/team_a/orders.py'}:{line}: defines a DAG, but sub-folders of dags/"
        " hold helper code that Airflow never parses: move the DAG file directly into dags/"
    ]


def test_a_helper_that_only_offers_a_dag_factory_ships(tmp_path: Path) -> None:
    helper = "from airflow.sdk import dag\n\n@dag()\ndef made():\n    pass\n"
    sources = write(tmp_path / "src", {"etl.py": DAG, "common/factories.py": helper})
    assert "dags/DEV_common/factories.py" in stamp(sources, "DEV")


@pytest.mark.parametrize("linked", ["dags", "bucket_contents"])
def test_a_sources_folder_that_is_a_symlink_out_of_the_project_is_refused(
    tmp_path: Path, linked: str
) -> None:
    elsewhere = write(tmp_path / "elsewhere", {"etl.py": DAG})
    project = tmp_path / "project"
    project.mkdir()
    if linked == "dags":
        (project / "bucket_contents").mkdir()
        (project / "bucket_contents" / "dags").symlink_to(elsewhere / "dags")
    else:
        (project / "bucket_contents").symlink_to(elsewhere)
    sources = project / "bucket_contents"
    folder = sources / "dags" if linked == "dags" else sources
    assert stamp_problems(sources) == [
        f"{folder}: a symlink to {folder.resolve()}; the DAGs of this project live in it,"
        " not elsewhere: make it a folder"
    ]


def outside_target(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.py"
    secret.parent.mkdir()
    secret.write_text("DEV = True\nTOKEN = 'not for the bucket'\n")
    return secret


@pytest.mark.parametrize("link", ["file", "folder", "helper-file"])
def test_a_symlink_out_of_the_project_is_refused(tmp_path: Path, link: str) -> None:
    secret = outside_target(tmp_path)
    sources = write(tmp_path / "src", {"etl.py": DAG, "common/__init__.py": ""})
    at = {
        "file": sources / "dags/stolen.py",
        "folder": sources / "dags/etc",
        "helper-file": sources / "dags/common/stolen.py",
    }[link]
    at.symlink_to(secret if link != "folder" else secret.parent)
    assert stamp_problems(sources) == [
        f"{at}: a symlink to {at.resolve()}, outside {sources}; only files inside the"
        " project are deployed: copy the file in, or remove the link"
    ]


def test_a_symlink_inside_the_project_deploys_its_target(tmp_path: Path) -> None:
    sources = write(tmp_path / "src", {"etl.py": DAG, "common/__init__.py": "X = 1\n"})
    (sources / "shared").mkdir()
    (sources / "shared" / "sql.py").write_text("Q = 'select 1'\n")
    (sources / "dags/common/sql.py").symlink_to(sources / "shared" / "sql.py")
    (sources / "dags/copy.py").symlink_to(sources / "dags" / "etl.py")
    build = stamp(sources, "DEV")
    assert build["dags/DEV_common/sql.py"] == b"Q = 'select 1'\n"
    assert build["dags/DEV_copy.py"] == build["dags/DEV_etl.py"]


@pytest.mark.parametrize("kind", ["dangling", "looping"])
def test_a_broken_symlink_is_one_clear_line(tmp_path: Path, kind: str) -> None:
    sources = write(tmp_path / "src", {"etl.py": DAG})
    link = sources / "dags" / "gone.py"
    if kind == "dangling":
        link.symlink_to(sources / "nowhere.py")
    else:
        link.symlink_to(sources / "dags" / "gone.py")
    assert stamp_problems(sources) == [
        f"{link}: a symlink that leads nowhere (its target is missing or a loop); fix or remove it"
    ]


def test_a_folder_symlinked_into_itself_is_refused(tmp_path: Path) -> None:
    sources = write(tmp_path / "src", {"etl.py": DAG, "common/__init__.py": ""})
    (sources / "dags/common/again").symlink_to(sources / "dags" / "common")
    assert stamp_problems(sources) == [
        f"{sources / 'dags/common/again'}: a symlink to a folder that holds it, which would"
        " never end; remove the link"
    ]


def test_a_file_name_that_is_not_utf8_is_one_clear_line(tmp_path: Path) -> None:
    sources = write(tmp_path / "src", {"etl.py": DAG, "common/__init__.py": ""})
    odd = os.fsdecode(b"caf\xe9.py")
    (sources / "dags" / "common" / odd).write_text("X = 1\n")
    assert stamp_problems(sources) == [
        f"{sources / 'dags' / 'common' / odd!s}: the file name is not UTF-8, which S3 keys"
        " must be; rename it"
    ]


def test_a_file_starting_with_a_byte_order_mark_is_stamped_as_python_reads_it(
    tmp_path: Path,
) -> None:
    sources = tmp_path / "src"
    (sources / "dags").mkdir(parents=True)
    (sources / "dags" / "etl.py").write_bytes(b"\xef\xbb\xbfDEV = True\nx = 1\n")
    assert stamp(sources, "PROD") == {"dags/PROD_etl.py": b"\xef\xbb\xbfDEV = False\nx = 1\n"}
    assert stamp(sources, "DEV") == {"dags/DEV_etl.py": b"\xef\xbb\xbfDEV = True\nx = 1\n"}


@pytest.mark.parametrize("name", ["query.sql", "config.json", "README.md"])
def test_a_data_file_beside_the_dags_is_refused_with_where_to_put_it(
    tmp_path: Path, name: str
) -> None:
    sources = write(tmp_path / "src", {"etl.py": DAG, name: "--"})
    assert stamp_problems(sources) == [
        f"{sources / 'dags' / name}: only DAG files (.py) sit directly in dags/, and this one"
        f" would be deployed renamed as DEV_{name} and PROD_{name}; move it into a package"
        " folder such as dags/common/ and open it relative to that package"
    ]


def test_a_top_level_airflowignore_is_refused_not_dropped(tmp_path: Path) -> None:
    sources = write(tmp_path / "src", {"etl.py": DAG, ".airflowignore": "scratch_.*\n"})
    assert stamp_problems(sources) == [
        f"{sources / 'dags/.airflowignore'}: would apply to every environment in the shared"
        " dags/ folder, so no deploy ships it; put files Airflow must not parse in a package"
        " folder (each deployed package gets its own .airflowignore)"
    ]


@pytest.mark.parametrize(
    ("source", "line", "write_instead"),
    [
        pytest.param(
            "from DEV_common.conventions import tags\nDEV = True\n",
            1,
            "`from common.conventions import ...`",
            id="from-dev",
        ),
        pytest.param(
            "DEV = True\nimport PROD_common.conventions as c\n",
            2,
            "`import common.conventions`",
            id="import-prod",
        ),
        pytest.param(
            "DEV = True\nfrom SBX_ann_common import conventions\n",
            2,
            "`from common import ...`",
            id="from-sandbox",
        ),
        pytest.param(
            "DEV = True\nif True:\n    import os, DEV_common\n",
            3,
            "`import common`",
            id="nested-import",
        ),
        pytest.param(
            "import importlib\nDEV = True\nc = importlib.import_module('DEV_common.conventions')\n",
            3,
            "`common.conventions`",
            id="import-module",
        ),
    ],
)
def test_an_import_of_an_owners_helper_copy_is_refused_with_what_to_write(
    tmp_path: Path, source: str, line: int, write_instead: str
) -> None:
    files = {"etl.py": source, "common/__init__.py": "", "common/conventions.py": "tags = []\n"}
    sources = write(tmp_path / "src", files)
    for env in ("DEV", "PROD", "SBX_ann"):
        [problem] = stamp_problems(sources, env)
        assert problem.startswith(f"{sources / 'dags' / 'etl.py'}:{line}: imports "), problem
        assert f"write {write_instead}" in problem, problem


def test_a_helper_that_imports_an_owners_copy_is_refused(tmp_path: Path) -> None:
    helper = "import os\nfrom PROD_common.conventions import tags\n"
    sources = write(tmp_path / "src", {"etl.py": DAG, "common/conventions.py": helper})
    [problem] = stamp_problems(sources, "DEV")
    assert problem.startswith(f"{sources / 'dags' / 'common' / 'conventions.py'}:2: imports ")
    assert "`PROD_common.conventions`" in problem
    assert "write `from common.conventions import ...`" in problem


def test_names_that_only_look_like_an_owners_copy_still_import(tmp_path: Path) -> None:
    dag = "import DEVELOPMENT_tools\nfrom PRODUCTS import x\nimport dev_common\nDEV = True\n"
    sources = write(tmp_path / "src", {"etl.py": dag})
    assert stamp(sources, "PROD") == {"dags/PROD_etl.py": dag.replace("True", "False").encode()}


REBINDS = "would rebind the flag at run time"
RUNS_TEXT = "runs code the stamp never reads"
ALIASED = "other than by calling it by its own name"
FRAMES = "reaches a frame's names"


@pytest.mark.parametrize(
    ("code", "says"),
    [
        pytest.param('globals()["DEV"] = True', REBINDS, id="globals-subscript"),
        pytest.param("globals()['DEV'] = DEV or True", REBINDS, id="globals-subscript-expr"),
        pytest.param('vars()["D" + "EV"] = True', REBINDS, id="vars-folded-key"),
        pytest.param("locals()[f\"{'DE'}V\"] = True", REBINDS, id="locals-fstring-key"),
        pytest.param('key = "DEV"\nglobals()[key] = True', REBINDS, id="key-in-a-name"),
        pytest.param("globals().update(DEV=True)", REBINDS, id="update-keyword"),
        pytest.param('globals().update({"DEV": True})', REBINDS, id="update-dict"),
        pytest.param('globals().update([("DEV", True)])', REBINDS, id="update-pairs"),
        pytest.param('globals().setdefault("DEV", True)', REBINDS, id="setdefault"),
        pytest.param('globals().__setitem__("DEV", True)', REBINDS, id="setitem"),
        pytest.param('del globals()["DEV"]', REBINDS, id="delete"),
        pytest.param('globals()["DEV"] |= True', REBINDS, id="augmented"),
        pytest.param(
            'import sys\nsys.modules[__name__].__dict__["DEV"] = True', REBINDS, id="dunder-dict"
        ),
        pytest.param('import sys\nvars(sys.modules[__name__])["DEV"] = 1', REBINDS, id="vars-of"),
        pytest.param("import sys\nsys.modules[__name__].DEV = True", REBINDS, id="attribute"),
        pytest.param(
            'import sys\nsetattr(sys.modules[__name__], "DEV", True)', REBINDS, id="setattr"
        ),
        pytest.param('g = globals()\ng["DEV"] = True', REBINDS, id="namespace-in-a-name"),
        pytest.param(
            'import operator\noperator.setitem(globals(), "DEV", 1)', REBINDS, id="operator"
        ),
        pytest.param('dict.__setitem__(globals(), "DEV", 1)', REBINDS, id="unbound-method"),
        pytest.param("dict.update(vars(), DEV=1)", REBINDS, id="unbound-update"),
        pytest.param('exec("DEV = True")', RUNS_TEXT, id="exec"),
        pytest.param('import builtins\nb = builtins\nb.exec("1")', RUNS_TEXT, id="alias-by-name"),
        pytest.param('x = eval("1")', RUNS_TEXT, id="eval"),
        pytest.param('run = exec; run("DEV = True")', RUNS_TEXT, id="exec-by-another-name"),
        pytest.param('import builtins\nbuiltins.exec("DEV = True")', RUNS_TEXT, id="builtins"),
        pytest.param(
            'import builtins as b\ngetattr(b, "ev" "al")("1")', RUNS_TEXT, id="getattr-builtins"
        ),
        pytest.param('__builtins__.exec("DEV = True")', RUNS_TEXT, id="dunder-builtins"),
        pytest.param('__builtins__["exec"]("DEV = True")', RUNS_TEXT, id="dunder-builtins-key"),
        pytest.param("from builtins import exec as run", RUNS_TEXT, id="from-builtins"),
        pytest.param('__import__("builtins").eval("1")', RUNS_TEXT, id="import-builtins-by-name"),
        pytest.param("def f():\n    exec('DEV = True', globals())", RUNS_TEXT, id="in-function"),
        pytest.param('_set.__globals__["DEV"] = True', REBINDS, id="function-globals"),
        pytest.param('g = globals; g()["DEV"] = True', ALIASED, id="namespace-call-aliased"),
        pytest.param("ns = map(vars, [m])", ALIASED, id="namespace-call-passed"),
        pytest.param(
            'import builtins; builtins.globals()["DEV"] = True', ALIASED, id="builtins-globals"
        ),
        pytest.param(
            'from builtins import globals as g; g()["DEV"] = True',
            ALIASED,
            id="from-builtins-globals",
        ),
        pytest.param(
            'import inspect; inspect.currentframe().f_globals["DEV"] = True', FRAMES, id="frame"
        ),
        pytest.param(
            "import sys; sys._getframe(1).f_locals.update(DEV=True)", FRAMES, id="getframe"
        ),
        pytest.param(
            'def f():\n    inspect.currentframe().f_back.f_globals["DEV"] = True',
            FRAMES,
            id="callers-frame",
        ),
        pytest.param(
            'getattr(inspect.currentframe(), "f_" "globals")["DEV"] = 1', FRAMES, id="getattr"
        ),
    ],
)
def test_the_flag_cannot_be_bound_again_at_run_time(tmp_path: Path, code: str, says: str) -> None:
    line = 2 + code.count("\n")
    for name, files in {
        "etl.py": {"etl.py": f"DEV = True\n{code}\n"},
        "common/util.py": {"etl.py": DAG, "common/util.py": f"X = 1\n{code}\n"},
    }.items():
        sources = write(tmp_path / name.replace("/", "-"), files)
        [problem] = stamp_problems(sources, "PROD")
        assert problem.startswith(f"{sources / 'dags' / name}:{line}: "), problem
        assert says in problem, problem


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("globals()[dag_id] = dag", id="dynamic-dags"),
        pytest.param("globals().update({d.dag_id: d for d in dags})", id="dynamic-dags-update"),
        pytest.param("x = globals()['DEV']", id="read-the-flag"),
        pytest.param("df.eval('a + b')\nmodel.eval()\nlib.exec(query)", id="methods-named-eval"),
        pytest.param("settings = {'mode': 'eval', 'DEV': 1}", id="strings"),
        pytest.param("cursor.execute('select 1')", id="execute"),
        pytest.param("print(vars(task), locals(), globals())", id="namespace-calls"),
        pytest.param("vars = {'a': 1}\nx = vars['a']", id="a-name-vars"),
        pytest.param("def f(locals):\n    return locals", id="a-parameter-locals"),
        pytest.param("import inspect\nname = inspect.currentframe().f_code.co_name", id="frame"),
    ],
)
def test_code_that_leaves_the_flag_alone_still_stamps(tmp_path: Path, code: str) -> None:
    source = f"DEV = True\n{code}\n"
    sources = write(tmp_path / "src", {"etl.py": source})
    assert stamp(sources, "DEV") == {"dags/DEV_etl.py": source.encode()}


# Where a venv's Airflow keeps its example DAGs; found without importing Airflow, which
# would set up an Airflow home.
EXAMPLE_FOLDERS = """
import importlib.util, json, pathlib
airflow = pathlib.Path(importlib.util.find_spec("airflow").origin).parent
folders = [airflow / "example_dags", airflow / "providers" / "standard" / "example_dags"]
print(json.dumps([str(folder) for folder in folders if folder.is_dir()]))
"""


@pytest.mark.parametrize("version", [NEWEST, OLDEST])
def test_airflows_own_example_dags_break_no_rule_of_the_stamp(tmp_path: Path, version: str) -> None:
    found = subprocess.run(
        [VENVS / f"airflow-{version}" / "bin" / "python", "-c", EXAMPLE_FOLDERS],
        capture_output=True,
        text=True,
        check=True,
    )
    folders = [Path(folder) for folder in json.loads(found.stdout)]
    dags = {
        f"{number}_{file.name}": file.read_text() + "\nDEV = True\n"
        for number, folder in enumerate(folders)
        for file in sorted(folder.glob("*.py"))
        if file.name != "__init__.py"
    }
    assert len(folders) == 2 and len(dags) > 50
    sources = write(tmp_path / "src", dags)
    assert len(stamp(sources, "PROD")) == len(dags)


@pytest.fixture
def indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A copy of the example sources and a build folder whose source index holds every
    file: built once, each file taken as settled (no clock this coarse is needed here)."""
    monkeypatch.setattr(file_state, "SETTLED_NS", 0)
    sources = shutil.copytree(SETTINGS.sources, tmp_path / "sources")
    build = tmp_path / "build"
    stamping.Build(sources, "DEV", build=build)
    return sources, build


def sources_read(sources: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files of `sources` read from now on, in order."""
    read: list[Path] = []
    real = Path.read_bytes

    def reading(path: Path) -> bytes:
        if path.is_relative_to(sources):
            read.append(path)
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", reading)
    return read


def test_a_build_reads_only_the_sources_whose_file_changed_since_the_last_build(
    indexed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    sources, build = indexed
    edited = sources / "dags" / "dbt_models.py"
    edited.write_text(edited.read_text() + "# edited\n")
    read = sources_read(sources, monkeypatch)

    again = stamping.Build(sources, "DEV", build=build)

    assert read == [edited]
    assert again.source_keys == stamping.Build(sources, "DEV").source_keys  # none kept


def test_an_edit_that_keeps_a_files_size_and_modification_time_is_still_built(
    indexed: tuple[Path, Path],
) -> None:
    sources, build = indexed
    edited = sources / "dags" / "dbt_models.py"
    before = edited.stat()
    text = edited.read_text()
    edited.write_text(text.replace("models", "modelz", 1))
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert edited.stat().st_size == before.st_size

    again = stamping.Build(sources, "DEV", build=build)

    assert again.source_keys == stamping.Build(sources, "DEV").source_keys
    assert b"modelz" in again.stamped(["dags/DEV_dbt_models.py"])["dags/DEV_dbt_models.py"]


def test_a_new_helper_package_has_every_source_read_and_keyed_again(
    indexed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    sources, build = indexed
    write(sources, {"newpkg/__init__.py": ""})
    read = sources_read(sources, monkeypatch)

    again = stamping.Build(sources, "DEV", build=build)

    assert set(read) == set(scan(sources).files.values())
    assert again.source_keys == stamping.Build(sources, "DEV").source_keys


def test_a_source_saved_while_its_deploy_runs_is_refused_not_shipped_under_its_old_key(
    indexed: tuple[Path, Path],
) -> None:
    """The index vouches for a file's key; the file is read only when it must be stamped
    (here: none of its stamps is kept, as after a teammate's deploy of another version)."""
    sources, build = indexed
    for kept in (build / stamp_cache.FOLDER / "DEV").iterdir():
        if kept.name != stamp_cache.INDEX:
            kept.unlink()
    planned = stamping.Build(sources, "DEV", build=build)
    edited = sources / "dags" / "dbt_models.py"
    edited.write_text(edited.read_text() + "# saved while the deploy runs\n")

    with pytest.raises(StampError) as raised:
        planned.stamped(["dags/DEV_dbt_models.py"])

    assert raised.value.problems == [f"{edited}: changed while this deploy ran; run it again"]


@pytest.mark.parametrize(
    "damaged",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"context": "CONTEXT", "sources": {"dbt_models.py": 5}}',
        '{"context": "CONTEXT", "sources": ["dbt_models.py"]}',
        '{"context": "CONTEXT", "sources": null}',
        '{"context": "',
    ],
    ids=["nested-too-deep", "entry-not-a-list", "not-a-table", "null", "cut-short"],
)
def test_a_damaged_source_index_is_set_aside_and_written_anew(
    indexed: tuple[Path, Path], damaged: str
) -> None:
    """CONTEXT: the index's own, as if the damage had kept it."""
    sources, build = indexed
    index = build / stamp_cache.FOLDER / "DEV" / stamp_cache.INDEX
    context = json.loads(index.read_text())["context"]
    index.write_text(damaged.replace("CONTEXT", context))

    again = stamping.Build(sources, "DEV", build=build)

    assert again.source_keys == stamping.Build(sources, "DEV").source_keys
    assert json.loads(index.read_text())["context"] == context
