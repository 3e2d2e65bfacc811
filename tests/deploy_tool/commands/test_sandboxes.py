"""Sandboxes (DESIGN: a DEV deploy from a story branch goes to the branch's own sandbox).

A team in one clone: branches deploy side by side, each sandbox holds what its branch
changes, nothing else in the bucket moves, and a sandbox goes with its branch.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mwaa_deploy import owners
from mwaa_deploy.__main__ import main
from mwaa_deploy.bucket import history
from mwaa_deploy.bucket.buckets import Bucket
from mwaa_deploy.bucket.local_bucket import LocalBucket
from mwaa_deploy.bucket.s3_bucket import S3Bucket
from mwaa_deploy.stamping.build import stamp
from tests.deploy_tool.helpers import FOREIGN, GIT, contents, deployed_files, new_s3_bucket

BRANCHES = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=80
)
HELPERS = {"common/__init__.py", "common/conventions.py"}
ORDERS_DAG = '''"""Orders, as a story branch adds them."""

from airflow.sdk import DAG

from common.conventions import environment

DEV = True

with DAG(dag_id=f"{environment(DEV)}_orders", schedule=None, tags=[environment(DEV)]):
    pass
'''


@given(BRANCHES)
def test_a_sandbox_name_is_stable_short_and_letters_and_digits(branch: str) -> None:
    owner = owners.sandbox_of(branch, "story/")
    assert owner == owners.sandbox_of(branch, "story/")
    assert owners.is_sandbox(owner) and owners.environment_of(owner) == "DEV"
    name = owners.sandbox_name(owner)
    assert re.fullmatch("[a-z0-9]+", name) and len(name) <= owners.NAME_LENGTH
    # Its copy of a helper package stays importable.
    assert f"{owner}_common".isidentifier()


@given(BRANCHES, BRANCHES)
def test_no_owner_s_key_prefix_is_the_start_of_another_s(first: str, second: str) -> None:
    """`dags/DEV_` cannot swallow a sandbox's keys, nor one sandbox another's."""
    prefixes = {owners.prefix(o) for o in ("DEV", "PROD", *map(owners.sandbox_of, (first, second)))}
    for one in prefixes:
        for other in prefixes - {one}:
            assert not other.startswith(one)
    for key_owner in (owners.sandbox_of(first), "DEV", "PROD"):
        assert owners.owner_of_key(f"{owners.prefix(key_owner)}x.py") == key_owner


def test_long_branch_names_that_share_a_start_get_sandboxes_of_their_own() -> None:
    start = "story/add-the-orders-model-for-"
    names = {owners.sandbox_of(start + team, "story/") for team in ("finance", "marketing")}
    assert len(names) == 2
    assert owners.sandbox_of("story/Alice-Orders_2", "story/") == "SBX_aliceorders2"


class Team:
    """One clone worked on by a team: git and `python -m mwaa_deploy` in it."""

    def __init__(self, root: Path, bucket: Bucket, capsys: pytest.CaptureFixture[str]) -> None:
        self.root, self.bucket, self.capsys = root, bucket, capsys
        self.dags = root / "bucket_contents" / "dags"

    def git(self, *args: str) -> None:
        subprocess.run([*GIT, *args], cwd=self.root, check=True, capture_output=True)

    def run(self, *args: str, status: int = 0) -> str:
        done = main(list(args))
        out, err = self.capsys.readouterr()
        assert done == status, out + err
        return out + err

    def deploy_and_check(self, owner: str, only: set[str] | None) -> str:
        """`make deploy-dev` (or -prod): the owner's keys become its build, byte for byte,
        and not one other key of the bucket changes."""
        before = contents(self.bucket)
        said = self.run("deploy", "PROD" if owner == "PROD" else "DEV")
        after = contents(self.bucket)
        expected = stamp(
            self.root / "bucket_contents", owner, None if only is None else frozenset(only)
        )
        mine = owners.prefix(owner)
        assert {
            k: v for k, v in deployed_files(self.bucket).items() if k.startswith(mine)
        } == expected
        assert {k: v for k, v in after.items() if not k.startswith(mine)} == {
            k: v for k, v in before.items() if not k.startswith(mine)
        }
        return said

    def sandboxes(self) -> set[str]:
        return {owners.owner_of_key(key) for key in self.bucket.list("dags/SBX_")} - {None}


@pytest.fixture(params=["local bucket", "S3"])
def team(
    request: pytest.FixtureRequest,
    project: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Team:
    """The example project committed on the default branch, and a bucket with others' keys."""
    root = project()
    monkeypatch.delenv("SANDBOX", raising=False)
    if request.param == "S3":
        request.getfixturevalue("aws")
        name = new_s3_bucket()
        monkeypatch.setenv("S3_BUCKET", name)
        bucket: Bucket = S3Bucket(name, "eu-west-1")
    else:
        monkeypatch.setenv("S3_BUCKET", "")
        bucket = LocalBucket(root / "local_bucket")
    for key, body in FOREIGN.items():
        bucket.put(key, body)
    return Team(root, bucket, capsys)


def test_a_team_s_branches_deploy_side_by_side_and_each_sandbox_goes_with_its_branch(
    team: Team,
) -> None:
    dag_files = {dag.name for dag in team.dags.glob("*.py")}  # the examples; each imports common
    team.deploy_and_check("PROD", None)
    team.deploy_and_check("DEV", None)  # on the default branch: the shared DEV, as before

    team.git("checkout", "-q", "-b", "story/alice-orders")
    (team.dags / "orders.py").write_text(ORDERS_DAG)
    team.git("add", ".")
    team.git("commit", "-q", "-m", "orders")
    said = team.deploy_and_check("SBX_aliceorders", {"orders.py", *HELPERS})
    assert f"Sandbox aliceorders (story/alice-orders): 1 of {len(dag_files) + 1} DAG files" in said

    team.git("checkout", "-q", "main")
    team.git("checkout", "-q", "-b", "story/bob")
    with open(team.dags / "dbt_models.py", "a") as edit:  # not even committed
        edit.write("# bob was here\n")
    team.deploy_and_check("SBX_bob", {"dbt_models.py", *HELPERS})
    team.git("stash", "-q")

    team.git("checkout", "-q", "main")
    team.git("checkout", "-q", "-b", "story/carol")
    with open(team.dags / "common" / "conventions.py", "a") as edit:
        edit.write("# carol changes the helper every DAG imports\n")
    team.deploy_and_check("SBX_carol", {*dag_files, *HELPERS})
    team.git("commit", "-q", "-am", "helper")

    team.git("checkout", "-q", "story/alice-orders")
    (team.dags / "orders.py").write_text(ORDERS_DAG.replace("pass", "pass  # again"))
    team.deploy_and_check("SBX_aliceorders", {"orders.py", *HELPERS})
    assert team.sandboxes() == {"SBX_aliceorders", "SBX_bob", "SBX_carol"}
    team.git("commit", "-q", "-am", "orders again")

    # Merged: the workflow removes the sandbox, run from the default branch.
    team.git("checkout", "-q", "main")
    team.git("merge", "-q", "story/alice-orders")
    before = contents(team.bucket)
    with pytest.MonkeyPatch.context() as workflow:
        workflow.setenv("SANDBOX", "story/alice-orders")
        assert "SBX_aliceorders cleaned" in team.run("clean", "DEV")
    assert contents(team.bucket) == {
        k: v for k, v in before.items() if not k.startswith("dags/SBX_aliceorders_")
    }
    # Deleted: the same, for that branch alone.
    team.git("branch", "-q", "-D", "story/bob")
    with pytest.MonkeyPatch.context() as workflow:
        workflow.setenv("SANDBOX", "story/bob")
        team.run("clean", "DEV")
    assert team.sandboxes() == {"SBX_carol"}
    # PROD deploys as before, now with the merged DAG.
    team.deploy_and_check("PROD", None)
    assert "dags/PROD_orders.py" in team.bucket.list("dags/PROD_")


def test_a_sandbox_holds_the_dag_files_that_import_an_edited_helper_module(
    team: Team,
) -> None:
    (team.dags / "common" / "alerts.py").write_text("CHANNEL = '#data'\n")
    (team.dags / "orders.py").write_text(
        ORDERS_DAG.replace("import environment", "import environment\nfrom common import alerts")
    )
    team.git("add", ".")
    team.git("commit", "-q", "-m", "alerts")
    team.git("checkout", "-q", "-b", "story/quieter-alerts")
    (team.dags / "common" / "alerts.py").write_text("CHANNEL = '#data-quiet'\n")
    team.deploy_and_check("SBX_quieteralerts", {"orders.py", *HELPERS, "common/alerts.py"})


def test_full_puts_the_whole_project_in_the_sandbox(team: Team) -> None:
    team.git("checkout", "-q", "-b", "story/everything")
    before = contents(team.bucket)
    assert team.run("deploy", "DEV", "--full")
    expected = stamp(team.root / "bucket_contents", "SBX_everything")
    owned = {k: v for k, v in deployed_files(team.bucket).items() if k.startswith("dags/SBX_")}
    assert owned == expected
    assert {
        k: v for k, v in contents(team.bucket).items() if not k.startswith("dags/SBX_")
    } == before


def test_a_sandbox_holds_the_dags_its_changed_dags_trigger_or_wait_for_at_any_depth(
    team: Team,
) -> None:
    team.git("checkout", "-q", "-b", "story/sources")
    with open(team.dags / "dbt_sources.py", "a") as edit:
        edit.write("# earlier\n")
    said = team.run("plan", "DEV")
    assert "and dbt_models.py, whose DAG or asset they trigger, wait for or share" in said
    assert "note:" not in said
    team.deploy_and_check("SBX_sources", {"dbt_sources.py", "dbt_models.py", *HELPERS})


def test_a_sandbox_holds_the_dags_that_make_or_wait_for_the_assets_its_changed_dags_use(
    team: Team,
) -> None:
    asset = 'Asset(f"s3://lake/{data_prefix(environment(DEV))}orders")'
    (team.dags / "orders.py").write_text(ORDERS_DAG + f"ORDERS = {asset}\n")
    (team.dags / "reports.py").write_text(
        ORDERS_DAG.replace("_orders", "_reports") + f"WAITS_FOR = [{asset}]\n"
    )
    (team.dags / "unrelated.py").write_text(ORDERS_DAG.replace("_orders", "_unrelated"))
    team.git("add", ".")
    team.git("commit", "-q", "-m", "assets")
    team.git("checkout", "-q", "-b", "story/orders")
    with open(team.dags / "orders.py", "a") as edit:
        edit.write("# the producer changes\n")
    said = team.run("plan", "DEV")
    assert "and reports.py, whose DAG or asset they trigger, wait for or share" in said
    team.deploy_and_check("SBX_orders", {"orders.py", "reports.py", *HELPERS})


def test_sandbox_on_the_default_branch_deploys_every_dag_and_never_empties_one(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the default branch nothing is changed since itself: a sandbox named there gets the
    whole checkout, not nothing (which would delete what its branch deployed)."""
    monkeypatch.setenv("SANDBOX", "story/ann")
    said = team.run("deploy", "DEV")
    assert "Sandbox ann (SANDBOX=story/ann): every DAG file, as main itself changes" in said
    assert deployed_files(team.bucket).keys() >= {"dags/SBX_ann_dbt_models.py"}


def test_cleaning_a_sandbox_the_bucket_does_not_hold_says_so(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX", "story/nosuch")
    said = team.run("clean", "DEV")
    assert said.startswith("No sandbox nosuch in ")
    assert "nothing to clean (make sandboxes lists them)" in said


def test_two_branches_whose_names_read_alike_never_share_a_sandbox(team: Team) -> None:
    team.git("checkout", "-q", "-b", "story/a-b")
    (team.dags / "orders.py").write_text(ORDERS_DAG)
    team.run("deploy", "DEV")
    team.git("checkout", "-q", "-b", "story/a_b")
    (team.dags / "orders.py").write_text(ORDERS_DAG.replace("pass", "pass  # other"))
    before = contents(team.bucket)
    said = team.run("deploy", "DEV", status=1)
    assert said.endswith(
        "the sandbox ab belongs to 'story/a-b', whose name reads like 'story/a_b': this"
        " leaves it alone."
        " Rename the branch, or name its sandbox yourself with SANDBOX=<name>\n"
    )
    assert team.run("clean", "DEV", status=1)
    assert contents(team.bucket) == before


def test_sandbox_names_a_sandbox_where_there_is_no_git_and_a_detached_head_must(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    team.git("checkout", "-q", "--detach")
    assert "HEAD is detached" in team.run("deploy", "DEV", status=1)
    shutil.rmtree(team.root / ".git")
    assert team.run("deploy", "DEV").startswith("No git here: this deploys the shared DEV.")
    monkeypatch.setenv("SANDBOX", "Ann")
    said = team.run("deploy", "DEV")
    assert "Sandbox ann (SANDBOX=Ann): every DAG file, as there is no git here" in said
    assert team.sandboxes() == {"SBX_ann"}


def test_a_project_in_a_folder_another_repository_ignores_deploys_the_shared_dev(
    team: Team,
) -> None:
    """As `make demo` bakes into the template's ignored demo/ folder: the branch of the
    repository around it is not the project's; once that repository holds the project's
    files (added by force), the project is in it."""
    shutil.rmtree(team.root / ".git")
    around = team.root.parent
    (around / ".gitignore").write_text(f"{team.root.name}/\n")
    for step in (
        ["init", "-q", "-b", "story/around"],
        ["add", ".gitignore"],
        ["commit", "-qm", "x"],
    ):
        subprocess.run([*GIT, *step], cwd=around, check=True, capture_output=True)

    assert team.run("deploy", "DEV").startswith("No git here: this deploys the shared DEV.")
    assert team.sandboxes() == set()

    subprocess.run([*GIT, "add", "-f", team.root.name], cwd=around, check=True)
    subprocess.run([*GIT, "commit", "-qm", "project"], cwd=around, check=True)
    assert "Sandbox around (story/around)" in team.run("deploy", "DEV")
    assert team.sandboxes() == {"SBX_around"}


def test_make_sandboxes_lists_files_last_deploy_and_commit_and_marks_stale_ones(
    team: Team,
) -> None:
    team.git("checkout", "-q", "-b", "story/old")
    (team.dags / "orders.py").write_text(ORDERS_DAG)
    team.git("add", ".")
    team.git("commit", "-q", "-m", "old work")
    team.run("deploy", "DEV")
    record = history.record_key("SBX_old")
    document = json.loads(team.bucket.get(record) or b"")
    weeks_ago = datetime.now(UTC) - timedelta(days=30)
    document["deploy"]["time"] = weeks_ago.strftime("%Y-%m-%dT%H:%M:%SZ")
    team.bucket.put(record, json.dumps(document).encode())
    team.git("checkout", "-q", "main")
    team.git("checkout", "-q", "-b", "story/new")
    (team.dags / "orders.py").write_text(ORDERS_DAG)
    team.run("deploy", "DEV")
    commit = subprocess.run(
        ["git", "rev-parse", "story/old"], cwd=team.root, capture_output=True, text=True
    ).stdout[:8]
    lines = team.run("sandboxes").splitlines()
    assert lines[0].startswith("Sandboxes in ") and "stale: no change for 14 days" in lines[0]
    [new] = [line for line in lines if " new " in line]
    [old] = [line for line in lines if " old " in line]
    assert new.startswith("* new") and "4 files" in new and "story/new @ " in new
    assert not new.endswith("stale")
    assert old.startswith("  old") and f"story/old @ {commit}" in old and old.endswith("stale")
    assert lines[-1] == "* this branch's sandbox"


def test_clean_dev_on_a_story_branch_removes_its_sandbox_and_on_the_default_branch_dev(
    team: Team,
) -> None:
    team.run("deploy", "DEV")
    team.git("checkout", "-q", "-b", "story/x")
    (team.dags / "orders.py").write_text(ORDERS_DAG)
    team.run("deploy", "DEV")
    with_both = contents(team.bucket)
    team.run("clean", "DEV")
    assert contents(team.bucket) == {
        k: v for k, v in with_both.items() if not k.startswith("dags/SBX_x_")
    }
    team.git("checkout", "-q", "main")
    team.run("clean", "DEV")
    assert not team.bucket.list("dags/DEV_") and not team.bucket.list("dags/SBX_")


@pytest.mark.parametrize(
    ("story_branch", "look_alike"), [("story/ann", "ann"), ("story/fix/login", "fix/login")]
)
def test_a_branch_named_like_a_story_branch_without_its_prefix_never_takes_its_sandbox(
    team: Team, story_branch: str, look_alike: str
) -> None:
    """Both branches give one sandbox name; the sandbox stays its first branch's."""
    team.git("checkout", "-q", "-b", story_branch)
    (team.dags / "orders.py").write_text(ORDERS_DAG)
    team.git("add", ".")
    team.git("commit", "-q", "-m", "orders")
    team.run("deploy", "DEV")
    team.git("checkout", "-q", "main")
    team.git("checkout", "-q", "-b", look_alike)
    (team.dags / "stock.py").write_text(ORDERS_DAG.replace("orders", "stock"))
    before = contents(team.bucket)
    name = owners.sandbox_name(owners.sandbox_of(look_alike))
    said = team.run("deploy", "DEV", status=1)
    assert said.endswith(
        f"the sandbox {name} belongs to {story_branch!r}, whose name reads like"
        f" {look_alike!r}: this leaves it alone. Rename the branch, or name its sandbox"
        " yourself with SANDBOX=<name>\n"
    )
    assert team.run("clean", "DEV", status=1)
    assert contents(team.bucket) == before


def test_a_sandbox_recorded_before_full_branch_names_were_kept_stays_its_branch_s(
    team: Team,
) -> None:
    """Its record has the name without the story prefix, and the branch it came from."""
    team.git("checkout", "-q", "-b", "story/ann")
    (team.dags / "orders.py").write_text(ORDERS_DAG)
    team.git("add", ".")
    team.git("commit", "-q", "-m", "orders")
    team.run("deploy", "DEV")
    record = history.record_key("SBX_ann")
    document = json.loads(team.bucket.get(record) or b"")
    document["deploy"] = {
        k: v for k, v in document["deploy"].items() if k not in ("sandbox_for", "belongs_to")
    } | {"sandbox_for": "ann"}
    team.bucket.put(record, json.dumps(document).encode())
    team.git("checkout", "-q", "main")
    team.git("checkout", "-q", "-b", "ann")
    (team.dags / "stock.py").write_text(ORDERS_DAG.replace("orders", "stock"))
    assert "belongs to 'story/ann'" in team.run("deploy", "DEV", status=1)
    team.git("checkout", "-q", "story/ann")
    (team.dags / "orders.py").write_text(ORDERS_DAG.replace("pass", "pass  # again"))
    team.run("deploy", "DEV")


@pytest.mark.parametrize("record", [b"not json", b'{"schema": 2}'], ids=["unreadable", "no-branch"])
def test_a_sandbox_whose_record_does_not_say_whose_it_is_is_left_alone(
    team: Team, record: bytes
) -> None:
    team.git("checkout", "-q", "-b", "bob")
    (team.dags / "orders.py").write_text(ORDERS_DAG)
    team.git("add", ".")
    team.git("commit", "-q", "-m", "orders")
    team.run("deploy", "DEV")
    assert team.sandboxes() == {"SBX_bob"}
    team.bucket.put(history.record_key("SBX_bob"), record)
    before = contents(team.bucket)
    team.git("checkout", "-q", "-b", "story/bob")
    (team.dags / "stock.py").write_text(ORDERS_DAG.replace("orders", "stock"))

    said = team.run("deploy", "DEV", status=1)

    assert "the sandbox bob's record dags/SBX_bob_.deployed.json does not say whose it is" in said
    assert contents(team.bucket) == before


def test_plan_dev_says_when_deploy_dev_would_refuse_a_sandbox_another_branch_owns(
    team: Team,
) -> None:
    team.git("checkout", "-q", "-b", "story/ann")
    (team.dags / "orders.py").write_text(ORDERS_DAG)
    team.git("add", ".")
    team.git("commit", "-q", "-m", "orders")
    team.run("deploy", "DEV")
    team.git("checkout", "-q", "main")
    team.git("checkout", "-q", "-b", "ann")
    (team.dags / "stock.py").write_text(ORDERS_DAG.replace("orders", "stock"))
    before = contents(team.bucket)
    said = team.run("plan", "DEV")
    assert said.splitlines()[-1] == (
        "make deploy-dev would refuse: the sandbox ann belongs to 'story/ann', whose name"
        " reads like 'ann': this leaves it alone. Rename the branch, or name its sandbox"
        " yourself with SANDBOX=<name>"
    )
    assert contents(team.bucket) == before
    team.git("checkout", "-q", "story/ann")
    assert "would refuse" not in team.run("plan", "DEV")


def test_make_sandboxes_lists_them_on_a_detached_head_too(team: Team) -> None:
    team.git("checkout", "-q", "-b", "story/ann")
    (team.dags / "orders.py").write_text(ORDERS_DAG)
    team.git("add", ".")
    team.git("commit", "-q", "-m", "orders")
    team.run("deploy", "DEV")
    team.git("checkout", "-q", "--detach")
    lines = team.run("sandboxes").splitlines()
    assert lines[0].startswith("Sandboxes in ")
    [ann] = lines[1:]
    assert ann.startswith("  ann ") and "story/ann @ " in ann
