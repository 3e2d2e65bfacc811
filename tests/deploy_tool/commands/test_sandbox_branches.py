"""`make sandboxes` marks the sandboxes to remove (DESIGN: a sandbox is removed with its
branch): those whose branch is merged into the default branch, or gone from this clone."""

from __future__ import annotations

import re

from tests.deploy_tool.commands.test_sandboxes import ORDERS_DAG, Team, team  # noqa: F401


def test_make_sandboxes_marks_a_sandbox_whose_branch_is_merged_or_gone(
    team: Team,  # noqa: F811 - the fixture
) -> None:
    for branch in ["story/merged", "story/deleted", "story/open"]:
        team.git("checkout", "-q", "-b", branch, "main")
        (team.dags / f"{branch.removeprefix('story/')}.py").write_text(ORDERS_DAG)
        team.git("add", "bucket_contents")
        team.git("commit", "-q", "-m", f"work on {branch}")
        team.run("deploy", "DEV")
    team.git("checkout", "-q", "main")
    team.git("merge", "-q", "--no-ff", "-m", "merge", "story/merged")
    team.git("branch", "-q", "-D", "story/deleted")

    lines = team.run("sandboxes").splitlines()
    [merged] = [line for line in lines if line.startswith("  merged ")]
    [deleted] = [line for line in lines if line.startswith("  deleted ")]
    [open_one] = [line for line in lines if line.startswith("  open ")]
    assert merged.endswith("  merged")
    assert deleted.endswith("  branch gone")
    assert not open_one.endswith(("merged", "gone"))


def marks(team: Team) -> dict[str, str]:  # noqa: F811 - the fixture's type
    """`make sandboxes` from main: each sandbox's line, by name."""
    team.git("checkout", "-q", "main")
    lines = team.run("sandboxes").splitlines()
    return {line.split()[0]: line for line in lines if line.startswith("  ")}


def test_a_sandbox_deployed_with_edits_no_commit_holds_is_not_marked_merged(
    team: Team,  # noqa: F811 - the fixture
) -> None:
    team.git("checkout", "-q", "-b", "story/edited", "main")
    (team.dags / "edited.py").write_text(ORDERS_DAG)
    team.git("add", "bucket_contents")
    team.git("commit", "-q", "-m", "work")
    (team.dags / "edited.py").write_text(ORDERS_DAG + "# not committed\n")
    team.run("deploy", "DEV")
    team.git("checkout", "-q", "--", ".")
    team.git("checkout", "-q", "main")
    team.git("merge", "-q", "--no-ff", "-m", "merge", "story/edited")

    assert not marks(team)["edited"].endswith("merged")


def test_files_outside_bucket_contents_leave_a_deploys_commit_without_a_plus(
    team: Team,  # noqa: F811 - the fixture
) -> None:
    """Only bucket_contents/ reaches the bucket: an untracked file elsewhere (the local
    bucket's folder, a note) is no edit of what was deployed."""
    (team.root / "notes.txt").write_text("mine\n")
    team.git("checkout", "-q", "-b", "story/clean", "main")
    (team.dags / "clean.py").write_text(ORDERS_DAG)
    team.git("add", "bucket_contents")
    team.git("commit", "-q", "-m", "work")
    team.run("deploy", "DEV")

    [commit] = re.findall(r"story/clean @ (\S+)", team.run("history", "DEV"))
    assert not commit.endswith("+")


def test_a_branch_with_no_commits_of_its_own_is_not_marked_merged(
    team: Team,  # noqa: F811 - the fixture
) -> None:
    team.git("checkout", "-q", "-b", "story/empty", "main")
    team.run("deploy", "DEV", "--full")
    team.git("checkout", "-q", "main")
    team.git("commit", "-q", "--allow-empty", "-m", "main moves on")

    assert not marks(team)["empty"].endswith("merged")
