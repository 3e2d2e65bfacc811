"""The naming convention that keeps DEV, PROD and the story branches' sandboxes apart
inside one Airflow.

Every DAG id, task id, tag set and cross-DAG reference starts with `dev_prod_flag`:
`PROD` where the DAG file's flag says `DEV = False`, else `DEV`, or in the sandbox of a
story branch `SBX_<name>`. A sandbox is a DEV copy: it uses DEV's connections and settings,
DEV's AWS role and DEV's share of the workers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

DBT_CLOUD_ACCOUNT_ID = {{ cookiecutter.dbt_cloud_account_id }}
# The bucket of the team's data: DEV's tasks reach only its dev/ prefix, PROD's only its
# prod/ (iam/task-roles.yaml).
DATA_BUCKET = "{{ cookiecutter.data_bucket }}"

# DEV's copies of scheduled DAGs (and the sandboxes') run when started by hand or by an
# asset of their own, never by the clock: otherwise every scheduled DAG runs twice, dbt
# Cloud jobs included. True gives them PROD's schedules too.
DEV_RUNS_ON_SCHEDULE = False

# DEV's share of the workers, the sandboxes' included: at most dev_pool_slots (pyproject.toml)
# of its tasks run at once. PROD's run in the instance's default pool, and are queued before
# DEV's. `make deploy-prod` creates the pool on MWAA, `make airflow-local` on your machine.
DEV_POOL = "DEV_pool"
PROD_PRIORITY_WEIGHT = 1000


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


def schedule_for(dev_prod_flag: str, schedule: Any) -> Any:
    """A DAG's clock schedule in PROD; in DEV and the sandboxes none, unless
    DEV_RUNS_ON_SCHEDULE (then a DAG runs by hand, or by its own assets)."""
    return schedule if settings_of(dev_prod_flag) == "PROD" or DEV_RUNS_ON_SCHEDULE else None


def default_args(dev_prod_flag: str) -> dict[str, Any]:
    """Task defaults: PROD retries before it pages anyone and goes first when slots are
    short; DEV and sandboxes fail fast and share DEV's few slots."""
    prod = settings_of(dev_prod_flag) == "PROD"
    return {
        "owner": "data-platform",
        "retries": 2 if prod else 0,
        "retry_delay": timedelta(minutes=5),
        "pool": "default_pool" if prod else DEV_POOL,
        "priority_weight": PROD_PRIORITY_WEIGHT if prod else 1,
    }
