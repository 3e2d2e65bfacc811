"""The naming convention that keeps DEV, PROD and the story branches' sandboxes apart
inside one Airflow.

Every DAG id, task id, tag set and cross-DAG reference starts with `dev_prod_flag`:
`PROD` where the DAG file's flag says `DEV = False`, else `DEV`, or in the sandbox of a
story branch `SBX_<name>`. A sandbox is a DEV copy: it uses DEV's connections and settings,
DEV's AWS role and DEV's share of the workers.

What depends only on that prefix (the pool, the priority, PROD's retries, DEV off the
clock) is not here: the platform's cluster policy applies it to every task
(bucket_contents/plugins/airflow_local_settings.py, settings in pyproject.toml).
"""

from __future__ import annotations

DBT_CLOUD_ACCOUNT_ID = {{ cookiecutter.dbt_cloud_account_id }}
# The bucket of the team's data: DEV's tasks reach only its dev/ prefix, PROD's only its
# prod/ (iam/task-roles.yaml).
DATA_BUCKET = "{{ cookiecutter.data_bucket }}"


def environment(dev: bool) -> str:
    """The prefix for everything a DAG file creates: "DEV", "PROD" or "SBX_<name>"."""
    if not dev:
        return "PROD"
    # The deploy ships this package once per owner, as DEV_common, PROD_common or
    # SBX_<name>_common (a sandbox name has no "_"): its own name says whose copy it is.
    package = __name__.split(".")[0]
    return "_".join(package.split("_")[:2]) if package.startswith("SBX_") else "DEV"


def settings_of(dev_prod_flag: str) -> str:
    """Whose connections and settings a DAG uses: PROD's, or DEV's (sandboxes included)."""
    return "PROD" if dev_prod_flag == "PROD" else "DEV"


def dbt_cloud_conn_id(dev_prod_flag: str) -> str:
    """MWAA has one secrets backend for both environments: their connections differ by id."""
    return f"{settings_of(dev_prod_flag)}_{{ cookiecutter.dbt_cloud_conn_id }}"


def aws_conn_id(dev_prod_flag: str) -> str:
    """The AWS connection of the environment, which assumes its own role (DEV_aws, PROD_aws);
    `aws_default` would run as the MWAA execution role, which reaches neither's data."""
    return f"{settings_of(dev_prod_flag)}_aws"


def data_prefix(dev_prod_flag: str) -> str:
    """Where the environment's data lives in DATA_BUCKET: "dev/", "prod/", and for a sandbox
    a folder of its own inside DEV's, "dev/sbx_<name>/", which DEV's role reaches too."""
    settings = settings_of(dev_prod_flag).lower()
    if dev_prod_flag.lower() == settings:
        return f"{settings}/"
    return f"{settings}/{dev_prod_flag.lower()}/"
