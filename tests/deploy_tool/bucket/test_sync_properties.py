"""The isolation guarantee under random work: edits, hand edits, deploys and cleans of DEV,
PROD and several sandboxes, in any order.

Whatever happens, a deploy or clean of one owner leaves every key it does not own byte for
byte as it was: the other environments' and sandboxes' files, the instance-wide files and
keys nobody here owns. And a deploy that succeeds leaves its own keys exactly as the build.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from mwaa_deploy.bucket import history, sync
from mwaa_deploy.bucket.s3_bucket import S3Bucket
from mwaa_deploy.exceptions import StampError
from mwaa_deploy.owners import prefix
from mwaa_deploy.stamping.build import stamp
from tests.deploy_tool.helpers import FOREIGN, contents, new_s3_bucket

DAG_NAMES = st.sampled_from(["a.py", "b.py", "c.py"])
VERSIONS = st.integers(min_value=0, max_value=3)
# Sandbox names that start alike, as ann's and anna's do.
OWNERS = st.sampled_from(["DEV", "PROD", "SBX_ann", "SBX_anna", "SBX_bob"])
# A sandbox holds part of the project, or all of it (FULL=1).
PARTS = st.sampled_from([None, frozenset({"a.py", "common/__init__.py", "common/settings.py"})])


class DeploySequences(RuleBasedStateMachine):
    """One project and one bucket, worked on in random ways."""

    encryption = "AES256"
    workspace = Path(tempfile.gettempdir())

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(dir=self.workspace))
        self.sources = self.root / "bucket_contents"
        (self.sources / "dags" / "common").mkdir(parents=True)
        (self.sources / "dags" / "common" / "__init__.py").write_text("")
        (self.sources / "dags" / "a.py").write_text(dag(0))
        self.bucket = S3Bucket.open(new_s3_bucket(self.encryption), "eu-west-1")
        for key, body in FOREIGN.items():
            self.bucket.put(key, body)

    def teardown(self) -> None:
        shutil.rmtree(self.root)

    @rule(name=DAG_NAMES, version=VERSIONS)
    def edit_a_dag(self, name: str, version: int) -> None:
        (self.sources / "dags" / name).write_text(dag(version))

    @rule(name=DAG_NAMES)
    def break_a_dag(self, name: str) -> None:
        (self.sources / "dags" / name).write_text("DEV = 1\n")

    @rule(name=DAG_NAMES)
    def remove_a_dag(self, name: str) -> None:
        (self.sources / "dags" / name).unlink(missing_ok=True)

    @rule(version=VERSIONS)
    def edit_the_helper(self, version: int) -> None:
        (self.sources / "dags" / "common" / "settings.py").write_text(f"VERSION = {version}\n")

    @rule(owner=OWNERS, name=st.sampled_from(["a.py", "stray.py", "common/settings.py"]))
    def edit_the_bucket_by_hand(self, owner: str, name: str) -> None:
        self.bucket.put(f"dags/{owner}_{name}", b"# edited in the console\n")

    @rule(owner=OWNERS, part=PARTS)
    def deploy(self, owner: str, part: frozenset[str] | None) -> None:
        before = contents(self.bucket)
        try:
            desired = stamp(self.sources, owner, part if owner.startswith("SBX_") else None)
        except StampError:
            assert contents(self.bucket) == before
            return
        sync.deploy(self.bucket, owner, desired, about=lambda: {"belongs_to": owner.lower()})
        after = contents(self.bucket)
        assert not_owned(after, owner) == not_owned(before, owner)
        owned = {k: v for k, v in after.items() if k.startswith(prefix(owner))}
        owned.pop(history.record_key(owner), None)
        assert owned == desired

    @rule(owner=OWNERS.filter(lambda owner: owner != "PROD"))
    def clean(self, owner: str) -> None:
        before = contents(self.bucket)
        sync.clean(self.bucket, owner)
        after = contents(self.bucket)
        assert after == not_owned(before, owner) == not_owned(after, owner)


def dag(version: int) -> str:
    return f"from common import settings\n\nDEV = True\nVERSION = {version}\n"


def not_owned(keys: dict[str, bytes], owner: str) -> dict[str, bytes]:
    return {k: v for k, v in keys.items() if not k.startswith(prefix(owner))}


@pytest.mark.parametrize("encryption", ["AES256", "aws:kms"])
@pytest.mark.usefixtures("aws", "kms_etags")
def test_a_deploy_or_clean_never_changes_a_key_its_owner_does_not_own(
    encryption: str, tmp_path: Path
) -> None:
    machine = type(
        "Sequences", (DeploySequences,), {"encryption": encryption, "workspace": tmp_path}
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=15,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
