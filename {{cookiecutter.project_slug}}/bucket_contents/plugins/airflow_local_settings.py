"""Airflow's cluster policies: what every task and DAG gets from whose copy it is.

Airflow imports this module from the plugins folder wherever it parses DAG files (MWAA's
DAG processor and workers, `make airflow-local`, the DAG integrity tests) and calls these
functions on each DAG and task it loads, whatever style made them: classic operators,
TaskFlow, tasks built in helper modules, `@asset`, dynamic task mapping. The owner is
read off the DAG id's prefix (DEV_, PROD_, SBX_<name>_); a DAG without one is left as
written. A DAG author writes none of this:

- DEV's tasks, and every sandbox's, run in DEV's pool, below PROD's priority;
- the project's developer role may do anything with DEV's and the sandboxes' DAGs and read
  PROD's; its PROD operator role may also trigger, clear and pause PROD's;
- PROD's tasks go first (a priority weight of at least PROD's) and retry before they fail,
  except a task whose params say `fails_on_purpose: True`;
- each DAG is tagged with its owner, the UI's filter of one environment's DAGs, unless
  `environment_tag` (pyproject.toml) is false;
- DEV's and the sandboxes' copies do not run on the clock: started by hand or by their
  own assets only, unless `dev_runs_on_schedule` (pyproject.toml) is true;
- a template file read from a folder beside the DAG files (`sql/orders.sql`) is read from
  the owner's own copy of that folder, which the deploy ships as `DEV_sql/`, `PROD_sql/`.

The numbers and names come from pyproject.toml [tool.mwaa_deploy], written beside this
file as mwaa_policy.json when plugins.zip is packed. A deploy reads the pool and priority
back from the environment (docs/run-time.md): a policy MWAA ignores fails the deploy.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

SETTINGS_FILE = Path(__file__).with_name("mwaa_policy.json")

log = logging.getLogger(__name__)


def _load() -> dict[str, Any] | None:
    try:
        return json.loads(SETTINGS_FILE.read_text())
    except (OSError, ValueError) as error:
        # Never stop Airflow over this: the deploy's read-back names every task left as is.
        log.error("Cluster policy not applied: cannot read %s (%s)", SETTINGS_FILE, error)
        return None


SETTINGS = _load()


def owner_of(dag_id: str) -> str | None:
    """DEV, PROD or SBX_<name> from the DAG id's prefix; None for a DAG of no owner."""
    if SETTINGS is None:
        return None
    found = re.match(f"({SETTINGS['owner_pattern']})_", dag_id)
    return found[1] if found else None


def dag_policy(dag: Any) -> None:
    owner = owner_of(dag.dag_id)
    if owner is None:
        return
    _grant_roles(dag, owner)
    if SETTINGS["environment_tag"] and owner not in (dag.tags or ()):
        # Airflow 2 keeps a DAG's tags in a list, Airflow 3 in a set.
        dag.tags = [*(dag.tags or ()), owner] if _is_list(dag.tags) else {*dag.tags, owner}
    if owner == SETTINGS["prod"] or SETTINGS["dev_runs_on_schedule"]:
        return
    dag.timetable = off_the_clock(dag.timetable)
    if "schedule_interval" in vars(dag):
        # Airflow 2 serializes this instead of the timetable where the two differ.
        dag.schedule_interval = dag.timetable.summary


def _is_list(tags: Any) -> bool:
    return tags is None or isinstance(tags, list)


def _grant_roles(dag: Any, owner: str) -> None:
    """The project's two roles on this DAG (docs/airflow-roles.md): all of DEV's and the
    sandboxes' to both, PROD's to read for the developer role and to run for the operator
    role. Roles the DAG file grants itself keep what it gives them."""
    developer, operator = SETTINGS["developer_role"], SETTINGS["prod_operator_role"]
    every = {"can_read", "can_edit", "can_delete"}
    if owner == SETTINGS["prod"]:
        granted = {developer: {"can_read"}, operator: {"can_read", "can_edit"}}
    else:
        granted = {developer: every, operator: every}
    dag.access_control = (dag.access_control or {}) | {
        role: {"DAGs": actions} for role, actions in granted.items()
    }


def task_policy(task: Any) -> None:
    owner = owner_of(task.dag_id)
    if owner is None:
        return
    _read_own_templates(task, owner)
    weight = SETTINGS["prod_priority_weight"]
    if owner != SETTINGS["prod"]:
        task.pool = SETTINGS["dev_pool"]
        if task.priority_weight >= weight:
            task.priority_weight = weight - 1
        return
    if task.priority_weight < weight:
        task.priority_weight = weight
    if task.retries < 1 and not _fails_on_purpose(task):
        task.retries = SETTINGS["prod_retries"]


def _read_own_templates(task: Any, owner: str) -> None:
    """Point each template file path whose folder the deploy shipped under the owner's
    prefix (`sql/a.sql`: only `DEV_sql/` is there) at the owner's copy."""
    folder = Path(task.dag.fileloc).parent
    extensions = tuple(getattr(task, "template_ext", ()) or ())
    if not extensions:
        return
    kwargs = getattr(task, "partial_kwargs", None)  # a mapped task keeps them here
    for field in task.template_fields:
        mapped = isinstance(kwargs, dict) and field in kwargs
        value = kwargs[field] if mapped else getattr(task, field, None)
        if isinstance(value, str):
            own = _own_copy(value, folder, owner, extensions)
        elif isinstance(value, list):
            own = [
                _own_copy(v, folder, owner, extensions) if isinstance(v, str) else v for v in value
            ]
        else:
            continue
        if own != value:
            if mapped:
                kwargs[field] = own
            else:
                setattr(task, field, own)


def _own_copy(path: str, folder: Path, owner: str, extensions: tuple[str, ...]) -> str:
    top, _, rest = path.partition("/")
    if not (rest and path.endswith(extensions)) or (folder / top).exists():
        return path
    return f"{owner}_{path}" if (folder / f"{owner}_{top}").is_dir() else path


def _fails_on_purpose(task: Any) -> bool:
    """A task that fails on purpose (a test of alerting, say) keeps its retries."""
    params = getattr(task, "params", None) or {}
    if not params and hasattr(task, "partial_kwargs"):  # a mapped task's
        params = task.partial_kwargs.get("params") or {}
    value = params.get(SETTINGS["fails_on_purpose"], False) if hasattr(params, "get") else False
    return getattr(value, "value", value) is True  # a Param holds its value


def off_the_clock(timetable: Any) -> Any:
    """The timetable without its clock: an asset-or-time schedule keeps its assets, a
    clock schedule (cron, interval, @once, @continuous, events) becomes none."""
    condition = getattr(timetable, "asset_condition", None) or getattr(
        timetable, "dataset_condition", None
    )
    # Airflow's timetables without assets hold a null one, _NullAsset or _NullDataset.
    if condition is not None and not type(condition).__name__.startswith("_Null"):
        if getattr(timetable, "timetable", None) is None:
            return timetable  # assets alone
        # AssetOrTimeSchedule (Airflow 3) and DatasetOrTimeSchedule (2) hold their clock as
        # .timetable and extend the timetable of assets alone.
        return type(timetable).__bases__[0](condition)
    if not timetable.can_be_scheduled:
        return timetable
    return _null_timetable_like(timetable)()


def _null_timetable_like(timetable: Any) -> type:
    """Airflow 3's DAGs take the Task SDK's timetables, Airflow 2's the core ones."""
    if type(timetable).__module__.startswith("airflow.sdk."):
        from airflow.sdk.definitions.timetables.simple import NullTimetable
    else:
        from airflow.timetables.simple import NullTimetable
    return NullTimetable
