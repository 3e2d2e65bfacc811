"""Refuse answers that would bake a broken project, one clear line each.

Answers are read as data (JSON), never pasted into code, so an answer can hold anything.
"""

import json
import re
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

AIRFLOW_VERSIONS = ["3.3.1", "3.2.1", "3.0.6", "2.11.2", "2.10.3"]

# Each check: answer key, a pattern the whole answer must match, and what to type instead.
CHECKS = [
    (
        "project_slug",
        r"(?!.*\.git$)[A-Za-z0-9][A-Za-z0-9._-]{0,99}",
        "use letters, digits, '.', '-' and '_', starting with a letter or digit",
    ),
    (
        "aws_region",
        r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d",
        "use an AWS region code such as eu-west-1 or us-east-2",
    ),
    (
        "s3_bucket",
        r"|(?!xn--|sthree-|amzn-s3-demo-)(?!.*(-s3alias|--ol-s3|--x-s3|--table-s3)$)"
        r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]",
        "leave it empty for the local bucket, or use 3-63 lowercase letters, digits and '-'"
        " (MWAA buckets cannot contain dots), starting and ending with a letter or digit",
    ),
    (
        "mwaa_environment_name",
        r"[A-Za-z][0-9A-Za-z_-]{0,79}",
        "use up to 80 letters, digits, '-' and '_', starting with a letter",
    ),
    ("dbt_cloud_account_id", r"[1-9]\d{0,17}", "use the number from your dbt Cloud URL"),
    ("dev_dbt_job_id", r"[1-9]\d{0,17}", "use the job's number from its dbt Cloud URL"),
    ("prod_dbt_job_id", r"[1-9]\d{0,17}", "use the job's number from its dbt Cloud URL"),
    (
        "dbt_cloud_conn_id",
        r"[A-Za-z0-9_-]{1,200}",
        "use letters, digits, '-' and '_'; DEV_ and PROD_ are put in front of it",
    ),
    (
        "github_repository",
        r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}",
        "use owner/name, as in github.com/owner/name",
    ),
    ("dev_branch_pattern", r"[^\s~^:?\\\[]+", "use a branch name or glob such as story/**"),
    ("default_branch", r"[^\s~^:?*\\\[]+", "use a branch name such as main"),
]


def problems(answers: dict) -> list[str]:
    found = [
        f"{key}={answers[key]!r} is not valid: {advice}."
        for key, pattern, advice in CHECKS
        if not re.fullmatch(pattern, str(answers[key]))
    ]
    if answers["airflow_version"] not in AIRFLOW_VERSIONS:
        found.append(
            f"airflow_version={answers['airflow_version']!r} is not one MWAA runs:"
            f" choose one of {', '.join(AIRFLOW_VERSIONS)}."
        )
    if answers["dev_dbt_job_id"] == answers["prod_dbt_job_id"]:
        found.append(
            "dev_dbt_job_id and prod_dbt_job_id are the same: DEV would run the PROD job."
            " Give each environment its own dbt Cloud job."
        )
    if answers["dev_branch_pattern"] == answers["default_branch"]:
        found.append(
            "dev_branch_pattern and default_branch are the same: one push would deploy both."
        )
    return found


if __name__ == "__main__":
    refused = problems(ANSWERS)
    for line in refused:
        print(f"Refused: {line}", file=sys.stderr)
    sys.exit(1 if refused else 0)
