"""DEV's share of the workers: the pool that DEV's tasks, and every sandbox's, run in.

A pool caps how many of its tasks run at once, so however many tasks DEV starts (a
backfill, a mapped task over a thousand files), at most `dev_pool_slots` of them hold a
worker slot, and the rest of the instance stays PROD's. PROD's tasks run in the instance's
`default_pool` with a higher priority weight, so where both wait for a slot, PROD's go
first. The platform's cluster policy puts every task in its place (policy.py), and the
integrity tests and the deploy's read-back check every task against the names here.

Airflow knows a pool only once it is created, and leaves a task of an unknown pool waiting
for ever: `make deploy-prod` creates or resizes the pool on the MWAA environment, through
its REST API (as the parse gate asks it what it parsed, and within the same bound), and
`make airflow-local` on the local Airflow. Both say what they did, and doing it again
changes nothing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from mwaa_deploy.exceptions import PoolError

if TYPE_CHECKING:
    from mwaa_deploy.config import Settings

DEV_POOL = "DEV_pool"
SHOWN = 120  # characters of an answer that is not a pool
DESCRIPTION = (
    "DEV's share of the workers, the sandboxes' included: dev_pool_slots in pyproject.toml,"
    " set by make deploy-prod and make airflow-local"
)


class RestApi(Protocol):
    """Airflow's REST API, however it is reached: `call` gives Airflow's status and answer."""

    def call(
        self, method: str, path: str, query: dict[str, Any] | None, body: Any
    ) -> tuple[int, Any]: ...


def ensure(api: RestApi, slots: int) -> str:
    """Create DEV's pool with `slots` slots, or resize it to them; the line saying which."""
    status, answer = api.call("GET", f"/pools/{DEV_POOL}", None, None)
    if status == 404:
        body = {"name": DEV_POOL, "slots": slots, "description": DESCRIPTION}
        _check(api.call("POST", "/pools", None, body), "create")
        return f"Pool {DEV_POOL}: created with {slots} slots, DEV's share of the workers."
    _check((status, answer), "read")
    if not (isinstance(answer, dict) and type(answer.get("slots")) is int):
        raise PoolError(
            f"Airflow answered GET /pools/{DEV_POOL} with {json.dumps(answer)[:SHOWN]}, not a"
            " pool; set it under Admin > Pools"
        )
    if answer["slots"] == slots:
        return f"Pool {DEV_POOL}: {slots} slots, as set."
    # The same request for Airflow 2's API and 3's: only the slots change, but Airflow 3
    # validates the whole pool, so the body holds what it has as well.
    body = {
        "name": DEV_POOL,
        "slots": slots,
        "include_deferred": answer.get("include_deferred", False),
    }
    _check(api.call("PATCH", f"/pools/{DEV_POOL}", {"update_mask": "slots"}, body), "resize")
    return f"Pool {DEV_POOL}: resized from {answer['slots']} to {slots} slots."


def on_mwaa(settings: Settings) -> None:
    """After a PROD deploy to S3 with an MWAA environment configured: set DEV's pool there,
    within the bound on asking it (PARSE_GATE_SECONDS; 0: leave the pool as it is)."""
    if not (settings.s3_bucket and settings.mwaa_environment):
        return
    from mwaa_deploy.instance import live_instance

    if not live_instance.asks(settings):
        print(
            f"Pool {DEV_POOL}: not checked, as the bound on asking MWAA (PARSE_GATE_SECONDS or"
            " parse_gate_seconds) is 0."
        )
        return
    instance = live_instance.Instance(settings, settings.parse_gate_seconds)
    try:
        print(ensure(instance, settings.dev_pool_slots))
    except (live_instance.CannotAsk, PoolError) as error:
        # The parse gate runs after this step (commands.deploy), so it did not run.
        raise PoolError(
            f"PROD is deployed, but {DEV_POOL} is not set: {error}. The parse gate did not run"
            " either, so PROD's import errors are unchecked: see them in the Airflow UI, and"
            " once the cause above is fixed, run make deploy-prod again to set the pool"
        ) from None


def _check(outcome: tuple[int, Any], doing: str) -> None:
    status, answer = outcome
    if status >= 300:
        detail = answer.get("detail") if isinstance(answer, dict) else answer
        hint = (
            ": the deploy role's Airflow role may not change pools; it needs Op"
            " (iam/deploy-roles.yaml)"
            if status in (401, 403)
            else ""
        )
        raise PoolError(f"Airflow would not {doing} {DEV_POOL} ({status}: {detail}){hint}")
