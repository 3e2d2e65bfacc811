"""Settings (DESIGN: pyproject.toml [tool.mwaa_deploy], overridden by environment variables):
a wrong setting is one line naming the key, what it holds and what it should."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mwaa_deploy import config
from mwaa_deploy.__main__ import main
from tests.deploy_tool.helpers import GIT, SETTINGS, commit, new_s3_bucket


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with this one's DAGs, whose pyproject.toml the test edits."""
    root = tmp_path / "project"
    (root / "bucket_contents" / "dags").mkdir(parents=True)
    (root / "bucket_contents" / "dags" / "etl.py").write_text("DEV = True\n")
    (root / "pyproject.toml").write_bytes((SETTINGS.root / "pyproject.toml").read_bytes())
    monkeypatch.setattr("mwaa_deploy.config.PROJECT_ROOT", root)
    monkeypatch.chdir(root)
    return root


def set_setting(root: Path, line: str) -> None:
    """Replace the setting `line` names (or add it) in [tool.mwaa_deploy]."""
    pyproject = root / "pyproject.toml"
    key = line.split("=")[0].strip()
    lines = pyproject.read_text().splitlines()
    start = lines.index("[tool.mwaa_deploy]")
    found = [n for n, text in enumerate(lines) if text.startswith(f"{key} =") and n > start]
    if found:
        lines[found[0]] = line
    else:
        lines.insert(start + 1, line)
    pyproject.write_text("\n".join(lines) + "\n")


def line_of(root: Path, key: str) -> int:
    """The line of pyproject.toml where [tool.mwaa_deploy] sets `key`."""
    lines = (root / "pyproject.toml").read_text().splitlines()
    start = lines.index("[tool.mwaa_deploy]")
    return next(n for n, text in enumerate(lines, 1) if n > start and text.startswith(f"{key} ="))


def deploy_error(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["deploy", "DEV"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    return line


@pytest.mark.parametrize(
    ("line", "says"),
    [
        pytest.param(
            "s3_bucket = false",
            "pyproject.toml [tool.mwaa_deploy] s3_bucket = false: expected text in quotes,"
            ' such as s3_bucket = "my-bucket"',
            id="wrong-type",
        ),
        pytest.param(
            's3_buckt = "acme"',
            "pyproject.toml [tool.mwaa_deploy]: unknown setting s3_buckt (did you mean s3_bucket?)",
            id="typo",
        ),
        pytest.param(
            'dag_parse_budget_seconds = "5"',
            "pyproject.toml [tool.mwaa_deploy] dag_parse_budget_seconds = '5': expected a"
            " number of seconds, such as dag_parse_budget_seconds = 5.0",
            id="number-as-text",
        ),
        pytest.param(
            'local_bucket = ""',
            "pyproject.toml [tool.mwaa_deploy] local_bucket = '': name a folder for the"
            ' local bucket, such as local_bucket = "local_bucket"',
            id="empty-local-bucket",
        ),
        pytest.param(
            'local_bucket = "bucket_contents/out"',
            "pyproject.toml [tool.mwaa_deploy] local_bucket = 'bucket_contents/out': the"
            " local bucket cannot be inside bucket_contents/ or hold it; use a folder of"
            ' its own, such as local_bucket = "local_bucket"',
            id="local-bucket-in-sources",
        ),
        pytest.param(
            'local_bucket = "."',
            "pyproject.toml [tool.mwaa_deploy] local_bucket = '.': the local bucket must be a"
            " folder inside the project, not the project itself; use a folder of its own, such"
            ' as local_bucket = "local_bucket"',
            id="local-bucket-is-the-project",
        ),
        pytest.param(
            'local_bucket = "build/DEV"',
            "pyproject.toml [tool.mwaa_deploy] local_bucket = 'build/DEV': the local bucket"
            " cannot be inside build/ or hold it; use a folder of its own, such as"
            ' local_bucket = "local_bucket"',
            id="local-bucket-in-builds",
        ),
        pytest.param(
            "parse_gate_seconds = -60",
            "pyproject.toml [tool.mwaa_deploy] parse_gate_seconds = -60: expected a number of"
            " seconds, such as parse_gate_seconds = 600",
            id="negative-parse-gate-bound",
        ),
        pytest.param(
            "parse_gate_seconds = inf",
            "pyproject.toml [tool.mwaa_deploy] parse_gate_seconds = inf: expected a number of"
            " seconds, such as parse_gate_seconds = 600",
            id="endless-parse-gate-bound",
        ),
        pytest.param(
            "parse_gate_seconds = nan",
            "pyproject.toml [tool.mwaa_deploy] parse_gate_seconds = nan: expected a number of"
            " seconds, such as parse_gate_seconds = 600",
            id="nan-parse-gate-bound",
        ),
        pytest.param(
            "startup_time_limit_seconds = -inf",
            "pyproject.toml [tool.mwaa_deploy] startup_time_limit_seconds = -inf: expected a"
            " number of seconds, such as startup_time_limit_seconds = 60.0",
            id="negative-endless-startup-limit",
        ),
        pytest.param(
            "dev_pool_slots = 99999999999999999999",
            "pyproject.toml [tool.mwaa_deploy] dev_pool_slots = 99999999999999999999: expected a"
            " whole number of worker slots from 1 to 10000, such as dev_pool_slots = 3",
            id="more-slots-than-airflow-takes",
        ),
        pytest.param(
            'default_branch = ""',
            "pyproject.toml [tool.mwaa_deploy] default_branch = '': name the branch whose pushes"
            ' deploy PROD, such as default_branch = "main"',
            id="no-default-branch",
        ),
        pytest.param(
            'default_branch = "main branch"',
            "pyproject.toml [tool.mwaa_deploy] default_branch = 'main branch': not a git branch"
            ' name; name the branch whose pushes deploy PROD, such as default_branch = "main"',
            id="default-branch-not-a-branch-name",
        ),
        pytest.param(
            'local_bucket = ".git"',
            "pyproject.toml [tool.mwaa_deploy] local_bucket = '.git': the local bucket cannot be"
            " inside .git/ or hold it; use a folder of its own, such as"
            ' local_bucket = "local_bucket"',
            id="local-bucket-is-git",
        ),
        pytest.param(
            'local_bucket = ".git/objects/bucket"',
            "pyproject.toml [tool.mwaa_deploy] local_bucket = '.git/objects/bucket': the local"
            " bucket cannot be inside .git/ or hold it; use a folder of its own, such as"
            ' local_bucket = "local_bucket"',
            id="local-bucket-in-git",
        ),
        pytest.param(
            'local_bucket = "../elsewhere"',
            "pyproject.toml [tool.mwaa_deploy] local_bucket = '../elsewhere': the local bucket"
            " must be a folder inside the project, not the project itself; use a folder of its"
            ' own, such as local_bucket = "local_bucket"',
            id="local-bucket-outside-the-project",
        ),
        pytest.param(
            'local_bucket = "/tmp/mwaa-bucket"',
            "pyproject.toml [tool.mwaa_deploy] local_bucket = '/tmp/mwaa-bucket': the local"
            " bucket must be a folder inside the project, not the project itself; use a folder"
            ' of its own, such as local_bucket = "local_bucket"',
            id="local-bucket-absolute-elsewhere",
        ),
        pytest.param(
            "dev_pool_slots = 0",
            "pyproject.toml [tool.mwaa_deploy] dev_pool_slots = 0: expected a whole number of"
            " worker slots from 1 to 10000, such as dev_pool_slots = 3",
            id="no-slots-for-dev",
        ),
        pytest.param(
            'task_id_prefix = "no"',
            "pyproject.toml [tool.mwaa_deploy] task_id_prefix = 'no': expected true or false,"
            " such as task_id_prefix = true",
            id="convention-not-a-boolean",
        ),
        pytest.param(
            "prod_retries = 0",
            "pyproject.toml [tool.mwaa_deploy] prod_retries = 0: expected a whole number of"
            " retries from 1 to 100, such as prod_retries = 2",
            id="prod-without-retries",
        ),
        pytest.param(
            "dev_run_retention_days = 999999999",
            "pyproject.toml [tool.mwaa_deploy] dev_run_retention_days = 999999999: expected a"
            " whole number of days from 1 to 3650, such as dev_run_retention_days = 30",
            id="retention-beyond-dates",
        ),
        pytest.param(
            "prod_priority_weight = 1.5",
            "pyproject.toml [tool.mwaa_deploy] prod_priority_weight = 1.5: expected a whole"
            " number of points from 1 to 1000000, such as prod_priority_weight = 1000",
            id="priority-not-a-whole-number",
        ),
        pytest.param(
            's3_bucket = "s3://acme-dags"',
            "pyproject.toml [tool.mwaa_deploy] s3_bucket='s3://acme-dags' is not a bucket name:"
            " write the name alone, such as my-mwaa-bucket (no s3://, no folder)",
            id="bucket-as-url",
        ),
    ],
)
def test_a_wrong_setting_is_one_line_naming_the_key_and_the_fix(
    project: Path, capsys: pytest.CaptureFixture[str], line: str, says: str
) -> None:
    set_setting(project, line)
    at = f"pyproject.toml:{line_of(project, line.split('=')[0].strip())} "
    assert deploy_error(capsys) == says.replace("pyproject.toml ", at, 1)
    assert not (project / "local_bucket").exists()


def test_a_wrong_setting_names_its_line_in_pyproject_toml(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_setting(project, "prod_retries = 0")
    assert deploy_error(capsys).startswith(
        f"pyproject.toml:{line_of(project, 'prod_retries')} [tool.mwaa_deploy] prod_retries = 0:"
    )


def test_settings_that_are_not_a_table_are_one_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.mwaa_deploy]", "[tool.mwaa_deploy_old]")
        + "\n[tool]\nmwaa_deploy = 3\n"
    )
    assert deploy_error(capsys) == (
        "pyproject.toml: tool.mwaa_deploy = 3, where a table of settings belongs; write them"
        " under a [tool.mwaa_deploy] line"
    )


def with_project_files(root: Path, git: bool) -> None:
    """Give the project folders of its own files, as a baked one has; committed with git."""
    for name, text in {
        "mwaa_deploy/__init__.py": "",
        "tests/test_dags.py": "",
        "iam/deploy-roles.yaml": "Resources: {}\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    if git:
        subprocess.run(
            [*GIT, "init", "--quiet", "-b", SETTINGS.default_branch], cwd=root, check=True
        )
        commit(root)


@pytest.mark.parametrize("git", [True, False], ids=["git", "no-git"])
@pytest.mark.parametrize(
    ("setting", "folder", "be"),
    [
        ("mwaa_deploy", "mwaa_deploy", "be"),
        ("tests", "tests", "be"),
        ("iam", "iam", "be"),
        ("./iam/bucket", "iam", "be inside"),
        ("mwaa_deploy/dags/..", "mwaa_deploy", "be"),
    ],
)
def test_a_local_bucket_among_the_projects_own_files_is_refused(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    setting: str,
    folder: str,
    be: str,
    git: bool,
) -> None:
    with_project_files(project, git)
    before = sorted(project.rglob("*"))
    set_setting(project, f'local_bucket = "{setting}"')
    assert deploy_error(capsys) == (
        f"pyproject.toml:{line_of(project, 'local_bucket')} [tool.mwaa_deploy] local_bucket ="
        f" {setting!r}: the local bucket cannot {be} {folder}/, which holds files of the"
        ' project; use a folder of its own, such as local_bucket = "local_bucket"'
    )
    assert sorted(project.rglob("*")) == before


@pytest.mark.parametrize("git", [True, False], ids=["git", "no-git"])
@pytest.mark.parametrize("setting", ["local_bucket", "my_bucket", "var/bucket"])
def test_a_local_bucket_of_its_own_takes_deploys_again_and_again(
    project: Path, capsys: pytest.CaptureFixture[str], setting: str, git: bool
) -> None:
    with_project_files(project, git)
    set_setting(project, f'local_bucket = "{setting}"')
    for _ in range(2):  # the first deploy makes the folder, the second finds it
        assert main(["deploy", "DEV"]) == 0, capsys.readouterr().err
    assert (project / setting / "dags" / "DEV_etl.py").is_file()


@pytest.mark.usefixtures("project")
def test_a_malformed_endpoint_url_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_BUCKET", "acme-dags")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "not-a-url")
    error = deploy_error(capsys)
    assert error.startswith("the AWS SDK cannot start: ") and "not-a-url" in error


def test_invalid_toml_is_one_line_with_the_place(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_setting(project, 's3_bucket = "acme')
    error = deploy_error(capsys)
    assert error.startswith("pyproject.toml is not valid TOML (")
    assert "line " in error and error.endswith("fix it, then run this again")


@pytest.mark.usefixtures("project")
def test_a_malformed_aws_region_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu west 1")
    assert deploy_error(capsys) == (
        "AWS_REGION='eu west 1' is not an AWS region name: use one such as eu-west-1"
    )


@pytest.mark.usefixtures("project")
@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_parse_gate_bound_that_is_not_seconds_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PARSE_GATE_SECONDS", value)
    assert deploy_error(capsys) == (
        f"PARSE_GATE_SECONDS={value!r} is not a number of seconds: use 0 to skip the parse"
        " gate, or a bound on its wait such as PARSE_GATE_SECONDS=600"
    )


@pytest.mark.usefixtures("project")
@pytest.mark.parametrize("value", ["many", "0", "-2", "2.5", "10001", "99999999999999999999"])
def test_dev_pool_slots_that_are_not_a_count_airflow_takes_are_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("DEV_POOL_SLOTS", value)
    assert deploy_error(capsys) == (
        f"DEV_POOL_SLOTS={value!r} is not a number of worker slots: use a whole number from 1"
        " to 10000, such as DEV_POOL_SLOTS=3"
    )


def test_devs_slots_are_the_variable_else_the_setting_else_three(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config.load(project).dev_pool_slots == 3
    set_setting(project, "dev_pool_slots = 5")
    assert config.load(project).dev_pool_slots == 5
    monkeypatch.setenv("DEV_POOL_SLOTS", "2")
    assert config.load(project).dev_pool_slots == 2


@pytest.mark.usefixtures("aws")
def test_an_unknown_aws_profile_is_one_line(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("S3_BUCKET", new_s3_bucket())
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(project / "no-aws-config"))
    assert deploy_error(capsys) == (
        "AWS_PROFILE='no-such-profile' is not a profile in your AWS config: `aws configure"
        " list-profiles` lists them, `aws configure sso` adds one"
    )


def test_the_baked_settings_load() -> None:
    assert config.load(SETTINGS.root) == SETTINGS


def test_the_policy_and_the_conventions_are_read_as_written(project: Path) -> None:
    set_setting(project, "dev_runs_on_schedule = true")
    set_setting(project, "task_id_prefix = false")
    set_setting(project, "prod_priority_weight = 5000")
    settings = config.load(project)
    assert settings.dev_runs_on_schedule is True and settings.task_id_prefix is False
    assert settings.prod_priority_weight == 5000
    assert settings.environment_tag is True and settings.prod_retries == 2  # as baked
