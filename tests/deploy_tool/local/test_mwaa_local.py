"""The MWAA stand-in's copy of the bucket's dags/ (mwaa_local.py): into a folder of its own,
only keys that name a file inside it, as MWAA copies its bucket into its DAGs folder."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
import pytest

from mwaa_deploy import config
from mwaa_deploy.local import mwaa_local
from mwaa_deploy.local.mwaa_local import MwaaLocal
from mwaa_deploy.local.mwaa_local_env import Environment
from tests.deploy_tool.helpers import SETTINGS, new_s3_bucket
from tests.deploy_tool.s3_endpoint import S3Endpoint

ESCAPING = "dags/SBX_evil_x/../../../../pwned.txt"
ODD = ["dags/DEV_a//b.py", "dags/DEV_a/./c.py", "dags/DEV_a/.."]


def wait_for(path: Path, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} not copied within {seconds} s"
        time.sleep(0.05)


def test_the_stand_in_copies_only_keys_that_stay_inside_its_folder_saying_once_which_it_skips(
    aws: S3Endpoint,  # noqa: ARG001 - for its effect (a fixture cannot take usefixtures)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(mwaa_local, "COPY_SECONDS", 0.05)
    bucket = new_s3_bucket()
    s3 = boto3.client("s3")
    for key in [ESCAPING, *ODD, "dags/DEV_a/ok.py"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"# x\n")
    # Deep enough that each escape would still land in tmp_path, where the test looks.
    folder = tmp_path / "project" / "airflow_home" / "mwaa_local" / "dags"
    environment = Environment("env", SETTINGS.airflow_version, bucket, SETTINGS.aws_region)
    stand_in = MwaaLocal(environment, airflow=None, dags_folder=folder)
    try:
        wait_for(folder / "DEV_a" / "ok.py")
        s3.put_object(Bucket=bucket, Key="dags/DEV_later.py", Body=b"# y\n")
        wait_for(folder / "DEV_later.py")  # some rounds later, still copying
    finally:
        stand_in.stop()
    copied = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert copied == {
        "project/airflow_home/mwaa_local/dags/DEV_a/ok.py",
        "project/airflow_home/mwaa_local/dags/DEV_later.py",
    }
    said = capsys.readouterr().out.splitlines()
    assert said == [
        f"Skipped s3://{bucket}/{key}: not a plain path of a file inside"
        f" {config.shown(folder)}/ (it holds a '..', '.' or empty part); delete the key"
        for key in sorted([ESCAPING, *ODD])
    ]
