"""The cluster policy's settings, and the plugins folder as every Airflow here loads it.

The policy itself (`bucket_contents/plugins/airflow_local_settings.py`) runs inside
Airflow, on MWAA too, where neither this package nor pyproject.toml is: it reads its
numbers and names from `mwaa_policy.json` beside it, which is packed from the settings
here into plugins.zip (deploy-requirements), and unpacked from the same zip into the
plugins folder of the local Airflow (airflow-local) and of the integrity tests
(tests/conftest.py) by instance_files.write_plugins. So the pool, priority and retries
Airflow applies are those the rules and the deploy's read-back check, from one place.
"""

from __future__ import annotations

import json

from mwaa_deploy.config import Settings
from mwaa_deploy.instance.pools import DEV_POOL
from mwaa_deploy.owners import OWNER

SETTINGS_FILE = "mwaa_policy.json"
PROD = "PROD"
# A task whose params hold this, True, fails on purpose (a test of alerting, say) and keeps
# the retries it was given in PROD.
FAILS_ON_PURPOSE = "fails_on_purpose"


def values(settings: Settings) -> dict[str, object]:
    """What the policy applies, by name."""
    return {
        "owner_pattern": OWNER.pattern,
        "prod": PROD,
        "dev_pool": DEV_POOL,
        "prod_priority_weight": settings.prod_priority_weight,
        "prod_retries": settings.prod_retries,
        "dev_runs_on_schedule": settings.dev_runs_on_schedule,
        "environment_tag": settings.environment_tag,
        "fails_on_purpose": FAILS_ON_PURPOSE,
        "developer_role": settings.developer_role,
        "prod_operator_role": settings.prod_operator_role,
    }


def generated_files(settings: Settings) -> dict[str, bytes]:
    """What plugins.zip holds besides plugins/: mwaa_policy.json, the same bytes for the
    same settings."""
    text = json.dumps(values(settings), indent=2, sort_keys=True) + "\n"
    return {SETTINGS_FILE: text.encode()}
