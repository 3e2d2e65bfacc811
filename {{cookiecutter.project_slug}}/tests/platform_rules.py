"""What the platform's cluster policy applies (bucket_contents/plugins/airflow_local_settings.py),
checked on the DAGs after it ran, as Airflow runs them: pool, priority, PROD's retries, DEV
off the clock. A DAG file writes none of these; a line here means the policy did not run
(Airflow did not load the plugins), or the DAG sets something the policy leaves as written.
Also what Airflow does with a DAG after it is loaded: its DAG processor serializes it, and
its workers read its template files. The shared helpers are in dag_rules.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mwaa_deploy.instance.policy import FAILS_ON_PURPOSE
from mwaa_deploy.instance.pools import DEV_POOL
from tests.dag_rules import owner_of, problem, settings_of
from tests.helpers import SETTINGS

try:  # Airflow 3.1 and later
    from airflow.serialization.serialized_objects import DagSerialization as Serializer
except ImportError:
    from airflow.serialization.serialized_objects import SerializedDAG as Serializer

# PROD's tasks run in it: the instance's own limit on running tasks, not a resource of
# either environment.
DEFAULT_POOL = "default_pool"
APPLIED = "the platform's cluster policy sets it (plugins/airflow_local_settings.py)"


def slot_problems(dag: Any) -> Iterator[str]:
    """DEV's tasks, and every sandbox's, run in DEV's pool, whose few slots keep the rest of
    the workers PROD's; PROD's tasks run in the instance's default pool (or a PROD_ pool of
    their own) with a priority weight that queues them before DEV's (isolation of the
    workers)."""
    if not _placed_by_id(dag):
        return
    prod = settings_of(owner_of(dag)) == "PROD"
    weight = SETTINGS.prod_priority_weight
    for task in dag.tasks:
        if prod and task.pool != DEFAULT_POOL and not task.pool.startswith("PROD_"):
            yield problem(
                dag,
                task,
                "pool",
                f"{task.pool!r} is not PROD's: a PROD task runs in {DEFAULT_POOL}, or in a PROD_"
                " pool of its own",
            )
        if not prod and task.pool != DEV_POOL:
            yield problem(
                dag,
                task,
                "pool",
                f"{task.pool!r} must be {DEV_POOL}: DEV's tasks, and the sandboxes', share its"
                f" slots; {APPLIED}",
            )
        if prod and task.priority_weight < weight:
            yield problem(
                dag,
                task,
                "priority",
                f"a PROD task needs priority_weight >= {weight}, to be queued before DEV's;"
                f" {APPLIED}",
            )
        if not prod and task.priority_weight >= weight:
            yield problem(
                dag,
                task,
                "priority",
                f"priority_weight={task.priority_weight} would queue a DEV task before PROD's;"
                f" keep it below {weight}",
            )


def retry_problems(dag: Any) -> Iterator[str]:
    """PROD tasks retry before they fail: a blip at dbt Cloud or S3 should not page anyone.
    DEV tasks may fail at once, which is what a developer watching them wants; so may a
    PROD task that fails on purpose and says so."""
    if owner_of(dag) != "PROD" or not _placed_by_id(dag):
        return
    for task in dag.tasks:
        if not task.retries and not _fails_on_purpose(task):
            yield problem(
                dag,
                task,
                "retries",
                f"a PROD task needs retries >= 1; {APPLIED}. A task that fails on purpose"
                f" says so: params=dict({FAILS_ON_PURPOSE}=True)",
            )


def schedule_problems(dag: Any) -> Iterator[str]:
    """DEV's copies, and the sandboxes', run when started or by their own assets, never on
    PROD's clock (unless dev_runs_on_schedule): otherwise every scheduled DAG runs twice,
    and DEV's dbt Cloud jobs and data loads with it."""
    if SETTINGS.dev_runs_on_schedule or settings_of(owner_of(dag)) == "PROD":
        return
    if not _placed_by_id(dag):
        return
    timetable = dag.timetable
    condition = getattr(timetable, "asset_condition", None) or getattr(
        timetable, "dataset_condition", None
    )
    assets_alone = condition is not None and getattr(timetable, "timetable", None) is None
    if timetable.can_be_scheduled and not (
        assets_alone and not type(condition).__name__.startswith("_Null")
    ):
        yield problem(
            dag,
            None,
            "schedule",
            f"{_shown(timetable)!r} runs a DEV copy on PROD's clock; {APPLIED}: DEV's copies"
            " run when started (dev_runs_on_schedule = true in pyproject.toml keeps the clock)",
        )


def serialization_problems(dag: Any) -> Iterator[str]:
    """Every DAG serializes as Airflow's DAG processor serializes it: one that does not is
    never scheduled, and MWAA reports it as an import error."""
    try:
        Serializer.to_dict(dag)
    except Exception as error:  # whatever Airflow raises, its DAG processor reports
        cause = error.__cause__ or error
        yield problem(
            dag,
            None,
            "serialization",
            f"Airflow cannot serialize it ({type(cause).__name__}: {cause}), so its DAG"
            " processor never schedules it; a custom weight rule or timetable is registered"
            " in a plugin",
        )


def template_problems(dag: Any) -> Iterator[str]:
    """A template file a task names (`sql="sql/orders.sql"`) is found, as Airflow's workers
    render it: the policy points it at the owner's own copy of its folder."""
    jinja = dag.get_template_env()
    for task in dag.tasks:
        for field, path in _template_files(task):
            try:
                jinja.loader.get_source(jinja, path)
            except Exception as error:  # jinja2's TemplateNotFound, or a loader's own
                yield problem(
                    dag,
                    task,
                    "template file",
                    f"{field}={path!r} is not found ({type(error).__name__}); put it beside the"
                    " DAG files, in a folder of dags/ (the deploy ships each owner its copy)",
                )


def _fails_on_purpose(task: Any) -> bool:
    """The task's params say it fails on purpose, as the policy reads them."""
    params = getattr(task, "params", None) or {}
    if not params and hasattr(task, "partial_kwargs"):  # a mapped task's
        params = task.partial_kwargs.get("params") or {}
    value = params.get(FAILS_ON_PURPOSE, False) if hasattr(params, "get") else False
    return getattr(value, "value", value) is True  # a Param holds its value


def _placed_by_id(dag: Any) -> bool:
    """The policy goes by the DAG id; one that names another owner than its file is named
    by the DAG id rules (dag_rules.py), and judged here by neither."""
    return dag.dag_id.startswith(f"{owner_of(dag)}_")


def _shown(timetable: Any) -> str:
    """A schedule as written: Airflow 2's timetables sum themselves up, 3's hold it."""
    return getattr(timetable, "summary", None) or getattr(
        timetable, "expression", type(timetable).__name__
    )


def _template_files(task: Any) -> Iterator[tuple[str, str]]:
    """The template fields of a task that name a file (by the operator's template_ext)."""
    extensions = tuple(getattr(task, "template_ext", ()) or ())
    if not extensions or hasattr(task, "partial_kwargs"):
        return  # a mapped task's fields are rendered per expanded value, at run time
    for field in task.template_fields:
        value = getattr(task, field, None)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.endswith(extensions):
                yield field, item
