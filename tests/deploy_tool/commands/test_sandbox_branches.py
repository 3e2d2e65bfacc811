"""`make sandboxes` marks the sandboxes to remove (DESIGN: a sandbox is removed with its
branch): those whose branch is merged into the default branch, or gone from this clone."""

from __future__ import annotations

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
