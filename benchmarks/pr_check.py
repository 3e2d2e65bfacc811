"""Time a baked project's pull request check, as its ci.yml runs it, with warm caches.

    make benchmark-pr                    # or: .venv/bin/python benchmarks/pr_check.py --help

Bakes the template's defaults into a git repository, runs `make install` once to warm uv's
cache (as CI restores it), then times `make pr-check` (what ci.yml runs: install, lint, test,
check-requirements, plan-prod) into a fresh venv --rounds times and prints the best wall time
against the target: every pull request pays it.
install and check-requirements read MWAA's constraint files from a local copy (the
template's test data), as a machine without GitHub would with MWAA_CONSTRAINTS (the tests'
user_environment sets it); pip and uv still ask the package index.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TEMPLATE))

from tests.helpers import NEWEST, bake, commit_all, user_environment  # noqa: E402 - after the path

TARGET_SECONDS = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--airflow", default=NEWEST, help=f"Airflow version (default {NEWEST})")
    args = parser.parse_args()
    environment = user_environment()
    with tempfile.TemporaryDirectory() as scratch:
        project = bake(Path(scratch), airflow_version=args.airflow)
        commit_all(project)

        def run(step: str, venv: Path) -> float:
            started = time.monotonic()
            done = subprocess.run(
                ["make", step, f"VENV={venv}"],
                cwd=project,
                env=environment,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                sys.exit(f"make {step} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
            return time.monotonic() - started

        # A fresh venv each round, as in CI's fresh checkout; uv's cache warm, as CI restores it.
        run("install", Path(scratch) / "warm-up")
        timings = [run("pr-check", Path(scratch) / f"venv-{n}") for n in range(args.rounds)]
    total = min(timings)
    print(f"Pull request check of a baked project (Airflow {args.airflow}), best of {args.rounds}:")
    print("  " + ", ".join(f"{seconds:.1f} s" for seconds in timings))
    met = "met" if total <= TARGET_SECONDS else "MISSED"
    print(f"  make pr-check {total:.1f} s, target {TARGET_SECONDS:.0f} s on 2 cores: {met}")
    return 0 if total <= TARGET_SECONDS else 1


if __name__ == "__main__":
    os.chdir(TEMPLATE)
    sys.exit(main())
