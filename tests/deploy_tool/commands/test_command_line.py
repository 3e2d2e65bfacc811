"""The Makefile's variables (FORCE, FULL, TO, N, PORT, ...) reach the command line through
the environment, where it reads them as data: a switch is on only for a documented true
value, in any case, and a value it cannot read is refused with one line naming the
variable and what it takes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mwaa_deploy import config
from mwaa_deploy.__main__ import main, parse
from tests.deploy_tool.helpers import SETTINGS

# (command line, variable, argument): every option a Makefile variable gives.
SWITCHES = [
    (["stamp", "DEV"], "FULL", "full"),
    (["plan", "DEV"], "FULL", "full"),
    (["deploy", "DEV"], "FULL", "full"),
    (["deploy", "PROD"], "FORCE", "force"),
    (["rollback", "PROD"], "FORCE", "force"),
    (["deploy-requirements"], "FORCE", "force"),
    (["retire-unprefixed"], "DELETE", "delete"),
    (["retire-unprefixed"], "FORCE", "force"),
]
ON = ["1", "true", "True", "TRUE", "yes", "Yes", "on", "ON"]
OFF = ["", "0", "false", "False", "FALSE", "no", "No", "off", "OFF"]


@pytest.mark.parametrize(("argv", "variable", "argument"), SWITCHES)
def test_a_switch_is_on_for_documented_true_values_only_in_any_case(
    argv: list[str], variable: str, argument: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(variable, raising=False)
    assert parse(argv)[1][argument] is False
    for value in ON + OFF:
        monkeypatch.setenv(variable, value)
        assert parse(argv)[1][argument] is (value in ON), f"{variable}={value!r}"
    assert parse([*argv, f"--{argument}"])[1][argument] is True


@pytest.mark.parametrize(("argv", "variable", "argument"), SWITCHES)
def test_an_unknown_switch_value_is_refused_naming_the_variable_and_its_values(
    argv: list[str],
    variable: str,
    argument: str,  # noqa: ARG001 - the table's
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, "maybe")
    assert main(argv) == 1
    assert capsys.readouterr().err == (
        f"{variable}='maybe' is not a switch: {variable}=1 (or true, yes, on) switches it on,"
        f" {variable}=0 (or false, no, off, or nothing) leaves it off\n"
    )


@pytest.mark.parametrize(
    ("argv", "variable", "value", "argument", "read"),
    [
        (["history", "DEV"], "N", "3", "last", 3),
        (["history", "DEV"], "N", "", "last", 10),
        (["rollback", "DEV"], "TO", "3fa85f6457cb", "to", "3fa85f6457cb"),
        (["rollback", "DEV"], "TO", "", "to", ""),  # refused by the rollback, as empty
        (["upgrade-check"], "TO", "3.3.1; touch x #", "to", "3.3.1; touch x #"),
        (["upgrade-check"], "UPGRADE_VENV", "a b;c", "venv", "a b;c"),
        (["upgrade-check"], "UV", "/opt/my uv/uv", "uv", "/opt/my uv/uv"),
        (["airflow-local"], "PORT", "8081", "port", 8081),
        (["s3-local"], "PORT", "", "port", 4566),
        (["mwaa-local"], "PORT", "4568", "port", 4568),
        (["mwaa-local"], "AIRFLOW_PORT", "8081", "airflow_port", 8081),
        (["adopt"], "FILES", "dags/a.py dags/b.py", "files", "dags/a.py dags/b.py"),
    ],
)
def test_a_variable_reaches_its_argument_as_data(
    argv: list[str],
    variable: str,
    value: str,
    argument: str,
    read: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, value)
    assert parse(argv)[1][argument] == read


@pytest.mark.parametrize(
    ("argv", "variable", "value", "said"),
    [
        (["history", "DEV"], "N", "1; touch x #", "is not a number of 1 or more"),
        (["history", "DEV"], "N", "0", "is not a number of 1 or more"),
        (["airflow-local"], "PORT", "80a", "is not a port: use a number from 1 to 65535"),
        (["airflow-local"], "PORT", "70000", "is not a port: use a number from 1 to 65535"),
    ],
)
def test_a_value_the_command_cannot_read_is_one_line_naming_the_variable(
    argv: list[str],
    variable: str,
    value: str,
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(argv) == 1
    assert capsys.readouterr().err == f"{variable}={value!r} {said}\n"


# (variable, what it says, how the tool reads it back): every variable a user gives,
# the settings' overrides and the command line's alike.
VARIABLES = [
    ("S3_BUCKET", "acme-dags", lambda: config.load(SETTINGS.root).s3_bucket),
    ("AWS_REGION", "eu-west-2", lambda: config.load(SETTINGS.root).aws_region),
    ("MWAA_ENVIRONMENT", "acme", lambda: config.load(SETTINGS.root).mwaa_environment),
    ("MWAA_CONSTRAINTS", "copies", lambda: config.load(SETTINGS.root).mwaa_constraints),
    ("PARSE_GATE_SECONDS", "5", lambda: config.load(SETTINGS.root).parse_gate_seconds),
    ("DEV_POOL_SLOTS", "3", lambda: config.load(SETTINGS.root).dev_pool_slots),
    ("FORCE", "1", lambda: parse(["deploy", "PROD"])[1]["force"]),
    ("FULL", "yes", lambda: parse(["deploy", "DEV"])[1]["full"]),
    ("MWAA_LOCAL", "on", lambda: parse(["airflow-local"])[1]["mwaa_local"]),
    ("N", "2", lambda: parse(["history", "DEV"])[1]["last"]),
    ("TO", "3fa85f6457cb", lambda: parse(["rollback", "DEV"])[1]["to"]),
    ("PORT", "8081", lambda: parse(["airflow-local"])[1]["port"]),
    ("AIRFLOW_PORT", "8081", lambda: parse(["mwaa-local"])[1]["airflow_port"]),
    ("UV", "/opt/uv", lambda: parse(["lock"])[1]["uv"]),
    ("UPGRADE_VENV", ".venv-next", lambda: parse(["upgrade-check"])[1]["venv"]),
]


@pytest.mark.parametrize(("variable", "value", "read"), VARIABLES, ids=[v[0] for v in VARIABLES])
def test_every_variable_is_read_the_same_way_without_the_spaces_around_it(
    variable: str, value: str, read: Callable[[], object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    plain = read()
    for padded in (f" {value}", f"{value} ", f"\t{value}\n"):
        monkeypatch.setenv(variable, padded)
        assert read() == plain, f"{variable}={padded!r}"
