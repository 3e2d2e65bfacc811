"""Refuse answers that would bake a broken project, one clear line each.

Answers are read as data (JSON), never pasted into code, so an answer can hold anything.
"""

import json
import re
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

# Where MWAA is offered, in every AWS partition. The hook runs without the AWS SDK, so this
# is a copy of the SDK's endpoint data; the template's tests keep it equal to that.
MWAA_REGIONS = (
    "af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "ap-southeast-4", "ap-southeast-5", "ap-southeast-7", "ca-central-1", "ca-west-1",
    "cn-north-1", "cn-northwest-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1",
    "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1",
    "me-south-1", "mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1",
    "us-west-2",
)  # fmt: skip

# Each check: answer key, a pattern the whole answer must match, and what to type instead.
CHECKS = [
    (
        "project_slug",
        r"(?!.*\.git$)[A-Za-z0-9][A-Za-z0-9._-]{0,99}",
        "use letters, digits, '.', '-' and '_', starting with a letter or digit",
    ),
    (
        "aws_region",
        "|".join(map(re.escape, MWAA_REGIONS)),
        f"use a region where MWAA runs: {', '.join(MWAA_REGIONS)}",
    ),
    (
        "s3_bucket",
        r"|(?!xn--|sthree-|amzn-s3-demo-)(?!.*(-s3alias|--ol-s3|--x-s3|--table-s3)$)"
        r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]",
        "leave it empty for the local bucket, or use 3-63 lowercase letters, digits and '-'"
        " (MWAA buckets cannot contain dots), starting and ending with a letter or digit",
    ),
    (
        "data_bucket",
        r"(?!xn--|sthree-|amzn-s3-demo-)(?!.*(-s3alias|--ol-s3|--x-s3|--table-s3)$)"
        r"(?!.*\.\.)(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
        "use 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or"
        " digit",
    ),
    # The DAGs' asset rules read an environment's name in any dot-separated part of a URI.
    (
        "data_bucket",
        r"(?i)(?!(?:[^.]*\.)*(?:dev|prod|sbx)(?:[_-][^.]*)?(?:\.|$)).*",
        "leave the environments out of its name, as in acme-data: DEV's and PROD's data both"
        " live in it, under dev/ and prod/",
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
        "dbt_cloud_conn_id",
        r"(?i)(?!(?:dev|prod)(?:[_-]|$)).*",
        "leave the environment out, as in dbt_cloud: the DAGs put DEV_ or PROD_ in front of it",
    ),
    (
        "github_repository",
        r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}",
        "use owner/name, as in github.com/owner/name",
    ),
    # Quotes too: the answers are written inside quoted strings of the workflows and settings.
    ("dev_branch_pattern", r"[^\s~^:?\\\['\"]+", "use a branch name or glob such as story/**"),
    ("default_branch", r"[^\s~^:?*\\\['\"]+", "use a branch name such as main"),
]


def problems(answers: dict) -> list[str]:
    found = [
        f"{key}={answers[key]!r} is not valid: {advice}."
        for key, pattern, advice in CHECKS
        if not re.fullmatch(pattern, str(answers[key]))
    ]
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
