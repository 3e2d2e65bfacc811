"""The parse gate's read-back: is the platform's cluster policy in force on the environment?

The policy (plugins/airflow_local_settings.py in plugins.zip, policy.py) puts every task of
DEV's and the sandboxes' in DEV's pool below PROD's priority, and PROD's at PROD's. MWAA
has been seen to ignore it silently (aws/amazon-mwaa-docker-images issue 627, Airflow
3.2.1), and then DEV's tasks would take PROD's workers with nothing failing. So once the
gate has seen the deployed files parsed, it reads the pool and priority weight of every
task of their DAGs back through the REST API (`/dags/{dag_id}/tasks`, the same path on
Airflow 2's API v1 and 3's v2), and fails naming each task that is not as its
environment requires.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mwaa_deploy.exceptions import ParseGateError
from mwaa_deploy.instance.pools import DEV_POOL
from mwaa_deploy.owners import environment_of

if TYPE_CHECKING:
    from mwaa_deploy.config import Settings
    from mwaa_deploy.instance.live_instance import Instance

DEFAULT_POOL = "default_pool"
SHOWN_TASKS = 20


def check(settings: Settings, instance: Instance, owner: str, dag_ids: list[str]) -> None:
    """Read back the tasks of `dag_ids`, `owner`'s just parsed; ParseGateError names every
    task the policy did not place, or says the tasks could not be read."""
    prod = environment_of(owner) == "PROD"
    weight = settings.prod_priority_weight
    wrong, checked = [], 0
    for dag_id in dag_ids:
        for task in _tasks(instance, owner, dag_id):
            checked += 1
            pool, priority = task.get("pool"), task.get("priority_weight")
            if isinstance(priority, float) and priority.is_integer():
                priority = int(priority)  # Airflow 3's API gives weights as numbers: 1.0
            if not isinstance(priority, int) or not _as_required(prod, pool, priority, weight):
                wrong.append(f"{dag_id}.{task.get('task_id')}: pool {pool!r}, priority {priority}")
    if wrong:
        required = (
            f"{DEFAULT_POOL} or a PROD_ pool, priority at least {weight}"
            if prod
            else f"{DEV_POOL}, priority below {weight}"
        )
        more = [f"... and {len(wrong) - SHOWN_TASKS} more"] if len(wrong) > SHOWN_TASKS else []
        raise ParseGateError(
            wrong[:SHOWN_TASKS] + more,
            f"Parse gate: {owner} is deployed, but on {instance.name} {len(wrong)} of its"
            f" {checked} task(s) (above) are not as {owner} requires ({required}): the"
            " platform's cluster policy is not in force there. Check that plugins.zip holds"
            " airflow_local_settings.py and mwaa_policy.json (make deploy-requirements) and"
            " the environment's scheduler logs for 'airflow_local_settings'.",
        )
    if checked:
        print(f"{instance.name} runs {owner}'s {checked} task(s) in {owner}'s pool and priority.")


def _as_required(prod: bool, pool: Any, priority: int, weight: int) -> bool:
    if prod:
        in_prods_pool = pool == DEFAULT_POOL or (isinstance(pool, str) and pool.startswith("PROD_"))
        return in_prods_pool and priority >= weight
    return pool == DEV_POOL and priority < weight


def _tasks(instance: Instance, owner: str, dag_id: str) -> list[dict[str, Any]]:
    """The tasks of one DAG as the environment serialized them."""
    from mwaa_deploy.instance.live_instance import CannotAsk, shown

    path = f"/dags/{dag_id}/tasks"
    try:
        status, answer = instance.call("GET", path)
    except CannotAsk as error:
        raise _unchecked(owner, str(error)) from None
    tasks = answer.get("tasks") if isinstance(answer, dict) else None
    if status >= 300 or not isinstance(tasks, list):
        raise _unchecked(
            owner, f"{instance.name} answered GET {path} with {status}: {shown(answer)}"
        )
    return [task for task in tasks if isinstance(task, dict)]


def _unchecked(owner: str, why: str) -> ParseGateError:
    return ParseGateError(
        [],
        f"Parse gate: {owner} is deployed and parsed, its tasks' pools and priorities"
        f" unchecked: {why}. See them in the Airflow UI; PARSE_GATE_SECONDS=0 skips the gate.",
    )
