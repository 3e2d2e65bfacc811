"""make adopt on a repository as teams have them: files in other encodings, symlinks,
empty files, long lines, names with spaces, a run cut short. Every problem file is named
`file:line: what to do` and the run goes on; the files it adopts pass the project's lint."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mwaa_deploy.__main__ import main
from mwaa_deploy.adopt import codemod
from mwaa_deploy.adopt.codemod import adopt_source
from mwaa_deploy.config import load

DAG_FILE = """\
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("{name}", schedule=None):
    EmptyOperator(task_id="t")
"""
# Lint-clean as written; adopted, its DAG line would reach past the project's 100 columns.
LONG = """\
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("a_rather_long_dag_id_for_the_warehouse_loads", schedule=None, catchup=False):
    EmptyOperator(task_id="t")
"""


def dag_files(root: Path, *names: str) -> Path:
    dags = root / "bucket_contents" / "dags"
    for name in names:
        (dags / name).write_text(DAG_FILE.format(name=Path(name).stem))
    return dags


def test_a_file_not_in_utf8_is_named_and_every_other_file_is_still_adopted(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project()
    dags = dag_files(root, "a.py", "c.py")
    latin = b'# -*- coding: latin-1 -*-\n"""Caf\xe9."""\n' + DAG_FILE.format(name="b").encode()
    (dags / "b.py").write_bytes(latin)
    assert main(["adopt"]) == 1
    out = capsys.readouterr().out
    assert "bucket_contents/dags/b.py:1: not UTF-8 text" in out and "save it as UTF-8" in out
    assert (dags / "b.py").read_bytes() == latin
    assert (
        "DEV = True" in (dags / "a.py").read_text() and "DEV = True" in (dags / "c.py").read_text()
    )
    assert "Adopted" in out and load(root).task_id_prefix is False


def test_a_symlinked_dag_file_is_refused_as_the_stamp_refuses_it_and_left_as_it_was(
    project: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project()
    dags = dag_files(root, "a.py")
    outside = tmp_path / "elsewhere.py"
    outside.write_text(DAG_FILE.format(name="out"))
    (dags / "out.py").symlink_to(outside)
    (dags / ".inside.txt").write_text(DAG_FILE.format(name="in"))
    (dags / "in.py").symlink_to(".inside.txt")
    assert main(["adopt"]) == 1
    out = capsys.readouterr().out
    for name in ("out.py", "in.py"):
        assert f"bucket_contents/dags/{name}:1: a symlink" in out, out
    assert outside.read_text() == DAG_FILE.format(name="out")
    assert (dags / ".inside.txt").read_text() == DAG_FILE.format(name="in")
    assert main(["adopt", "--files", "bucket_contents/dags/in.py"]) == 1
    assert "bucket_contents/dags/in.py:1: a symlink" in capsys.readouterr().out
    assert (dags / ".inside.txt").read_text() == DAG_FILE.format(name="in")


def test_an_empty_file_gets_the_flag_and_a_final_newline() -> None:
    assert adopt_source("x.py", "").text.endswith("dev_prod_flag = environment(DEV)\n")
    assert adopt_source("x.py", '"""Doc."""').text.endswith("environment(DEV)\n")


def test_a_file_laid_out_by_ruff_passes_the_projects_lint_once_adopted(
    project: Callable[..., Path],
) -> None:
    """A team's file that make format would leave as it is: adopted, make lint passes too."""
    root = project()
    dags = root / "bucket_contents" / "dags"
    (dags / "long.py").write_text(LONG)
    lint = [sys.executable, "-m", "ruff"]
    assert subprocess.run([*lint, "check", "--no-cache", str(dags / "long.py")]).returncode == 0
    assert main(["adopt", "--files", "bucket_contents/dags/long.py"]) == 0
    text = (dags / "long.py").read_text()
    assert "DEV = True" in text and max(map(len, text.splitlines())) <= 100
    for check in (["check"], ["format", "--check"]):
        done = subprocess.run([*lint, *check, "--no-cache", str(dags / "long.py")], cwd=root)
        assert done.returncode == 0, text
    assert main(["adopt", "--files", "bucket_contents/dags/long.py"]) == 0
    assert (dags / "long.py").read_text() == text


def test_a_file_of_another_layout_keeps_every_line_adopt_does_not_touch(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """make adopt keeps a file's layout where the team's is not ruff's, and says make format
    would lay it out for make lint."""
    root = project()
    dags = root / "bucket_contents" / "dags"
    own_layout = LONG + "settings = {'retries':1,   'owner':'data'}  # the team's own layout\n"
    (dags / "long.py").write_text(own_layout)
    assert main(["adopt", "--files", "bucket_contents/dags/long.py"]) == 0
    adopted = (dags / "long.py").read_text().splitlines()
    assert "settings = {'retries':1,   'owner':'data'}  # the team's own layout" in adopted
    assert "Next: make format (for make lint); make test;" in capsys.readouterr().out


def test_files_naming_a_file_that_does_not_exist_says_so(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project()
    assert main(["adopt", "--files", "bucket_contents/dags/nope.py"]) == 1
    assert "FILES: bucket_contents/dags/nope.py does not exist" in capsys.readouterr().err


def test_files_names_a_file_with_spaces_quoted_as_in_the_shell(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project()
    dags = dag_files(root, "with space.py", "a.py")
    named = "'bucket_contents/dags/with space.py' bucket_contents/dags/a.py"
    assert main(["adopt", "--files", named]) == 0
    assert "Adopted 2 DAG files" in capsys.readouterr().out
    assert "DEV = True" in (dags / "with space.py").read_text()


def test_ctrl_c_says_which_files_are_done_and_that_a_rerun_finishes_the_rest(
    project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = project()
    dags = dag_files(root, "a.py", "b.py", "c.py")
    real = codemod.adopt_source

    def interrupted_at_b(path: str, text: str) -> codemod.Adopted:
        if path.endswith("b.py"):
            raise KeyboardInterrupt
        return real(path, text)

    monkeypatch.setattr(codemod, "adopt_source", interrupted_at_b)
    assert main(["adopt"]) == 130
    err = capsys.readouterr().err
    assert "bucket_contents/dags/a.py" in err and "make adopt again" in err
    assert "DEV = True" in (dags / "a.py").read_text()
    assert "DEV = True" not in (dags / "b.py").read_text()
    monkeypatch.setattr(codemod, "adopt_source", real)
    assert main(["adopt"]) == 0
    assert all("DEV = True" in (dags / n).read_text() for n in ("a.py", "b.py", "c.py"))


def test_a_file_whose_name_adopt_needs_is_taken_is_named_at_that_line_and_left(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project()
    dags = root / "bucket_contents" / "dags"
    taken = DAG_FILE.format(name="orders").replace(
        "\nwith DAG", '\nenvironment = "prod"\n\nwith DAG'
    )
    (dags / "orders.py").write_text(taken)

    assert main(["adopt"]) == 1

    out = capsys.readouterr().out
    assert "bucket_contents/dags/orders.py:4: the name 'environment' is bound here" in out, out
    assert ": 0 changed," in out and ", 1 left as they are (below)." in out, out
    assert (dags / "orders.py").read_text() == taken


def test_a_file_named_twice_in_files_is_adopted_once(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project()
    dag_files(root, "g1.py")
    named = "bucket_contents/dags/g1.py ./bucket_contents/dags/g1.py"
    assert main(["adopt", "--files", named]) == 0
    assert "Adopted 1 DAG files" in capsys.readouterr().out


def test_ctrl_c_while_a_file_is_written_leaves_it_whole(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project()
    dags = dag_files(root, "a.py")
    before = (dags / "a.py").read_text()

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", interrupted)
    assert main(["adopt", "--files", "bucket_contents/dags/a.py"]) == 130
    assert (dags / "a.py").read_text() == before
    assert sorted(p.name for p in dags.iterdir() if p.name.startswith(".a.py")) == []
