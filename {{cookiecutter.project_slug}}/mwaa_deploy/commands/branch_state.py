"""What git here says of a sandbox's branch, for `make sandboxes`: merged into the default
branch, or gone, so the sandbox is one to remove (`SANDBOX=<branch> make clean-dev`).

From the last deploy's record: the branch it was for (`belongs_to`) and the commit it
deployed. `merged`: that commit is in the default branch, as `git branch --merged` reads
it (its remote-tracking copy where there is one, which a fetch keeps current), and the
deploy was of that commit alone (no `+`: no edits beside it under the sources) and of a
commit of the branch's own, not the one where it left the default branch. A squash or
rebase merge writes new commits, so its branch shows as gone once deleted, not as merged.
`gone`: this clone knows the branch neither locally nor on a remote (after `git fetch
--prune`). A sandbox named by hand (SANDBOX=ann, no such branch ever) would read as gone:
only names under the story branches' prefix are judged.
"""

from __future__ import annotations

from mwaa_deploy.bucket import history
from mwaa_deploy.checkout import Checkout


def state(here: Checkout, about: history.About, default_branch: str, prefix: str) -> str:
    """`merged`, `branch gone`, or "" where git here knows no more (or there is no git)."""
    branch, commit = about.get("belongs_to", ""), about.get("commit", "")
    if not (here.in_git and branch and branch.startswith(prefix)):
        return ""
    # Edits no commit holds (`+`) were deployed, and no merge brought them; a branch with
    # no commits of its own (`left_at`, where it left the default branch) merges nothing.
    own = not commit.endswith("+") and commit != about.get("left_at")
    if own and commit and commit != "none yet":
        for base in (f"refs/remotes/origin/{default_branch}", f"refs/heads/{default_branch}"):
            if here.ask("rev-parse", "--verify", "--quiet", base) is None:
                continue
            if here.ask("merge-base", "--is-ancestor", commit, base) is not None:
                return "merged"
            break
    refs = here.ask("for-each-ref", "--format=%(refname)", "refs/heads", "refs/remotes")
    lines = (refs or "").splitlines()
    known = {ref.split("/", 3)[-1] for ref in lines if ref.startswith("refs/remotes/")}
    known |= {ref.removeprefix("refs/heads/") for ref in lines if ref.startswith("refs/heads/")}
    return "" if refs is None or branch in known else "branch gone"
