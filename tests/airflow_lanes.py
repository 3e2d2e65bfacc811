"""How xdist shares the tests among its workers: the tests that start a real Airflow run in
two lanes, each lane whole on a worker of its own and in collection order; every other test
goes to whichever worker is free, as xdist's worksteal gives them.

At most two Airflows then run at once (more on two cores and airflow-local's DAG runs miss
their time), and no module's Airflow starts twice because xdist moved half of its tests to
another worker. A lane's worker spends much of its time waiting for Airflow, whose own
processes do the work, so the suite runs a worker per lane beyond one per core.
"""

from __future__ import annotations

import os

from xdist.scheduler import WorkStealingScheduling
from xdist.scheduler.worksteal import MIN_PENDING

# Each lane: the node ids it holds begin with one of these. The two lanes take about as long.
LANES = (
    ("tests/test_airflow_local.py", "tests/test_airflow_local_starts.py"),
    (
        "tests/deploy_tool/instance/test_on_real_airflow.py",
        "tests/deploy_tool/instance/test_policy_check.py",
    ),
)


def in_a_lane(nodeid: str) -> bool:
    return any(nodeid.startswith(lane) for lane in LANES)


def workers() -> int:
    return (os.cpu_count() or 1) + len(LANES)


class AirflowLanes(WorkStealingScheduling):
    """xdist's worksteal, except that each lane goes first to a worker of its own, which
    takes other tests only once its lane is done, and never gives any of its lane away."""

    laned: frozenset[int] = frozenset()

    def schedule(self) -> None:
        if self.collection is None:
            if not self._check_nodes_have_same_collection():
                return  # xdist has said how the workers' collections differ
            self.collection = next(iter(self.node2collection.values()))
            self._start_lanes(self.collection)
        self.check_schedule()

    def _start_lanes(self, collection: list[str]) -> None:
        nodes = list(self.node2pending)
        laned = []
        for number, lane in enumerate(LANES):
            tests = [index for index, nodeid in enumerate(collection) if nodeid.startswith(lane)]
            if tests:
                node = nodes[number % len(nodes)]
                self.node2pending[node].extend(tests)
                node.send_runtest_some(tests)
                laned += tests
        self.laned = frozenset(laned)
        self.pending[:] = [index for index in range(len(collection)) if index not in self.laned]

    def check_schedule(self) -> None:
        # Worksteal takes up to all but MIN_PENDING tests from the end of the longest queue,
        # and gives the pending ones to a worker with fewer than MIN_PENDING. It sees only
        # the first MIN_PENDING of a lane, at the head of its worker's queue: a lane's worker
        # is busy until its lane is done, and keeps every test of its lane.
        hidden = {}
        for node, queue in self.node2pending.items():
            hidden[node] = [index for index in queue if index in self.laned][MIN_PENDING:]
            queue[:] = [index for index in queue if index not in hidden[node]]
        try:
            super().check_schedule()
        finally:
            for node, lane in hidden.items():
                if node in self.node2pending:
                    self.node2pending[node][MIN_PENDING:MIN_PENDING] = lane
