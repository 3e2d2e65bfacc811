"""Whose a sandbox is: the branch (or SANDBOX's text) its first deploy was for.

Two names can give one sandbox (`a-b` and `a_b`; `story/ann` and a branch named `ann`),
so a sandbox deploy or clean for another name than the one its last record holds is
refused, and a sandbox whose record does not say is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mwaa_deploy.bucket import history
from mwaa_deploy.exceptions import SandboxError
from mwaa_deploy.owners import is_sandbox, sandbox_name

if TYPE_CHECKING:
    from mwaa_deploy.bucket.buckets import Bucket


@dataclass(frozen=True)
class Claim:
    """Whom a sandbox deploy or clean is for: the full branch name (or SANDBOX's text),
    and that name without the story prefix, which records of older deploys kept alone."""

    belongs_to: str = ""
    sandbox_for: str = ""

    @classmethod
    def of(cls, about: history.About) -> Claim:
        return cls(about.get("belongs_to", ""), about.get("sandbox_for", ""))


def refused(bucket: Bucket, owner: str, claim: Claim) -> str:
    """Why a deploy or clean for `claim` must leave the sandbox alone, or "": the sandbox
    belongs to the name its last deploy was for, and two names can give one sandbox
    (`a-b`, `a_b`; `story/ann`, `ann`)."""
    if not (claim.belongs_to and is_sandbox(owner)):
        return ""
    last = history.read(bucket, owner)
    about = last.about if last else {}
    if last is not None and not (about.get("belongs_to") or about.get("sandbox_for")):
        key = history.record_key(owner)
        return (
            f"the sandbox {sandbox_name(owner)}'s record {key} does not say whose it is (it"
            " cannot be read, or lacks the branch): this leaves it alone. If the sandbox is"
            f" yours, delete the record ({bucket.removal_command(key)}) and deploy again;"
            " else name your sandbox yourself with SANDBOX=<name>"
        )
    holder, claimant = about.get("belongs_to", ""), claim.belongs_to
    if not holder and about.get("sandbox_for"):
        # A record from before full names were kept: where its deploy ran on the branch
        # that named the sandbox, that branch is the full name; else only the short one
        # can be compared.
        legacy, branch = about["sandbox_for"], about.get("branch", "")
        holder, claimant = (
            (branch, claim.belongs_to) if branch.endswith(legacy) else (legacy, claim.sandbox_for)
        )
    if not holder or holder == claimant:
        return ""
    return (
        f"the sandbox {sandbox_name(owner)} belongs to {holder!r}, whose name reads like"
        f" {claimant!r}: this leaves it alone. Rename the branch, or name its sandbox"
        " yourself with SANDBOX=<name>"
    )


def check(bucket: Bucket, owner: str, claim: Claim) -> None:
    if why := refused(bucket, owner, claim):
        raise SandboxError(why)
