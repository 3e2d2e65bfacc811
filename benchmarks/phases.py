"""Where a deploy's time goes: the floor it cannot go below, and its phases, profiled.

The floor is what any Python deploy to S3 pays: the interpreter, the AWS SDK, one LIST.
The phases come from one profiled deploy (cProfile, which slows every call alike, so the
shares are the figure to read, scaled to the deploy's unprofiled time).
"""

from __future__ import annotations

import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The functions a deploy's phases run in (file, function), in the order a deploy runs
# them; a phase's time is its functions' cumulative time, less the phases inside it.
PHASES = (
    ("the interpreter and mwaa_deploy's imports", ()),
    (
        "git: the checkout, PROD's files against HEAD",
        (("checkout.py", "read"), ("prod_path.py", "check_committed")),
    ),
    ("the build: sources listed, changed ones read and keyed", (("build.py", "__init__"),)),
    ("the bucket opened: the SDK loaded, its client made", (("deploys.py", "open_bucket"),)),
    ("the plan: LIST, the record, stamping what changed", (("sync.py", "plan"),)),
    ("stamping (inside the plan)", (("build.py", "stamped"),)),
    ("the lock, uploads, the record (a deploy with work)", (("sync.py", "apply"),)),
)

FLOOR = """
import botocore.session
client = botocore.session.Session().create_client("s3")
client.list_objects_v2(Bucket={bucket!r}, Prefix="dags/PROD_")
"""


def floor_seconds(bucket: str, environment: dict[str, str], rounds: int) -> float:
    """The best time of a fresh Python that loads the SDK and lists the bucket once."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", FLOOR.format(bucket=bucket)], env=environment, check=True
        )
        times.append(time.perf_counter() - start)
    return min(times)


def breakdown(command: list[str], cwd: Path, environment: dict[str, str]) -> dict[str, float]:
    """Each phase's share of one profiled run of `command` (`python -m mwaa_deploy ...`)."""
    with tempfile.TemporaryDirectory(prefix="deploy-profile-") as scratch:
        profile = Path(scratch) / "deploy.prof"
        profiled = [command[0], "-m", "cProfile", "-o", str(profile), *command[1:]]
        subprocess.run(profiled, cwd=cwd, env=environment, check=True, capture_output=True)
        stats = pstats.Stats(str(profile))
    cumulative: dict[tuple[str, str], float] = {}
    for (file, _, function), (_, _, _, inclusive, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = (os.path.basename(file), function)
        cumulative[where] = max(cumulative.get(where, 0.0), inclusive)
    total = stats.total_tt  # type: ignore[attr-defined]
    shares = {
        name: sum(cumulative.get(where, 0.0) for where in wheres) / total
        for name, wheres in PHASES
        if wheres
    }
    # The stamp runs inside the plan: the plan's own share is what is left of it.
    plan, stamping = PHASES[4][0], PHASES[5][0]
    shares[plan] = max(shares[plan] - shares[stamping], 0.0)
    shares[PHASES[0][0]] = max(1.0 - sum(shares.values()), 0.0)
    return {name: shares[name] for name, _ in PHASES}


def print_breakdown(title: str, seconds: float, shares: dict[str, float]) -> None:
    print(f"\n{title}: {seconds:.2f}s, by phase (profiled shares of that time)")
    for name, share in shares.items():
        print(f"  {name:<55} {share * seconds:5.2f}s  {share:4.0%}")
