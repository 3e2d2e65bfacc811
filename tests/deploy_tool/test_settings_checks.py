"""Settings every command refuses when they load, each with its line in pyproject.toml: the
project's Airflow roles named as Airflow's own or as each other, a Python other than MWAA's
for the Airflow version; and the line found however the table's header is written, never a
wrong one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mwaa_deploy.__main__ import main
from tests.deploy_tool.test_config import deploy_error, line_of, project, set_setting

__all__ = ["project"]  # the fixture, for the tests here


def check_requirements_error(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["check-requirements"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    return line


@pytest.mark.parametrize(
    "line",
    [
        'prod_operator_role = "User"',
        'developer_role = "admin"',
        'developer_role = "two words"',
    ],
)
def test_a_role_that_is_airflows_own_or_no_name_is_refused_by_every_command(
    project: Path, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    set_setting(project, line)
    key, value = (part.strip() for part in line.split("="))
    at = f"pyproject.toml:{line_of(project, key)} [tool.mwaa_deploy] {key} = '{value[1:-1]}': "

    assert deploy_error(capsys).startswith(at)
    assert check_requirements_error(capsys).startswith(at)


def test_the_two_roles_named_alike_in_any_case_are_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_setting(project, 'developer_role = "Developer"')
    set_setting(project, 'prod_operator_role = "developer"')

    line = check_requirements_error(capsys)

    assert line.startswith(f"pyproject.toml:{line_of(project, 'prod_operator_role')} "), line
    assert "developer_role" in line and "give each its own" in line, line


def test_a_python_version_other_than_mwaas_for_the_airflow_version_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_setting(project, 'airflow_version = "3.3.1"')
    set_setting(project, 'python_version = "3.11"')

    line = check_requirements_error(capsys)

    assert line.startswith(f"pyproject.toml:{line_of(project, 'python_version')} "), line
    assert 'python_version = "3.12"' in line, line


def rewrite(project: Path, old: str, new: str) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(old, new, 1))


def test_a_settings_line_is_found_past_a_multi_line_string_that_holds_the_header(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_setting(project, "prod_retries = 0")
    rewrite(
        project,
        "[tool.mwaa_deploy]",
        '[tool.other]\nnote = """\n[tool.mwaa_deploy]\nprod_retries = 5\n"""\n\n[tool.mwaa_deploy]',
    )
    line = deploy_error(capsys)

    lines = (project / "pyproject.toml").read_text().splitlines()
    assert line.startswith(f"pyproject.toml:{lines.index('prod_retries = 0') + 1} "), line


@pytest.mark.parametrize("header", ["[ tool . mwaa_deploy ]", '[tool."mwaa_deploy"]'])
def test_a_settings_line_is_found_however_the_header_is_written(
    project: Path, capsys: pytest.CaptureFixture[str], header: str
) -> None:
    set_setting(project, "prod_retries = 0")
    expected = line_of(project, "prod_retries")
    rewrite(project, "[tool.mwaa_deploy]", header)

    assert deploy_error(capsys).startswith(f"pyproject.toml:{expected} "), header


def test_a_quoted_settings_key_names_its_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_setting(project, "prod_retries = 0")
    expected = line_of(project, "prod_retries")
    rewrite(project, "prod_retries = 0", '"prod_retries" = 0')

    assert deploy_error(capsys).startswith(f"pyproject.toml:{expected} ")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('airflow_version = "3"', "Airflow's version, three numbers"),
        ('airflow_version = "abc"', "Airflow's version, three numbers"),
        ('python_version = "3.12.1"', "Python's version, two numbers"),
    ],
)
def test_a_version_setting_that_is_no_version_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str], line: str, expected: str
) -> None:
    set_setting(project, line)
    key = line.split("=")[0].strip()

    error = deploy_error(capsys)

    assert error.startswith(f"pyproject.toml:{line_of(project, key)} [tool.mwaa_deploy] {key}")
    assert f"expected {expected}" in error, error
