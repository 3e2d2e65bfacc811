"""Deploy a baked project with 500 DAG files three ways against one local S3 endpoint.

    make benchmark                       # or: .venv/bin/python benchmarks/deploy.py --help

The three ways, each deploying PROD into its own versioned bucket on the same endpoint:

  mwaa_deploy     the baked project's `python -m mwaa_deploy deploy PROD` (`make deploy-prod`)
  aws s3 sync     the usual CI script: copy dags/, flip the flag with sed, rename with mv,
                  then `aws s3 sync` of the result
  aws s3 cp       the same sed and mv, then `aws s3 cp --recursive`

Each runs from a fresh `git clone`, as CI does, for: the first deploy into an empty
bucket, an unchanged redeploy, and a redeploy with one DAG file changed. The endpoint
counts the requests it serves; uploads are those of files (a deploy's lock and record are
requests, not uploads); the wall time is the best of --rounds. Then `make rollback-prod`
undoes that one-file change, against `aws s3 sync` of the reverted tree, and a story
branch that edits one DAG file deploys its sandbox, against a DEV redeploy of the same
edit. Then the local loop: `make deploy-dev` into the embedded local bucket after editing
one DAG file, as `make airflow-local` users do, with 500 DAG files and with 3,000. Last,
where the time goes: the floor (Python, the AWS SDK, one LIST) and each phase of an
unchanged and of a one-file redeploy (phases.py). The figures, the ratios and the
project's targets are printed; the exit status is 1 if a target is missed.

Python keeps the bytecode it compiles, as on a user's machine (PYTHONDONTWRITEBYTECODE is
cleared): each fresh clone compiles its own mwaa_deploy, the venv's packages once.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
from phases import breakdown, floor_seconds, print_breakdown

TEMPLATE = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GIT = ["git", "-c", "user.name=benchmark", "-c", "user.email=benchmark@example.com"]
SCENARIOS = ("first deploy", "unchanged redeploy", "one file changed")
BIG_PROJECT_DAGS = 3000

# The stamp of the usual CI script: no syntax check, no import rewriting.
SED_AND_MV = """
set -e
rm -rf stage && cp -r bucket_contents/dags stage && cd stage
for file in *.py; do sed -i 's/^DEV = True$/DEV = False/' "$file"; mv "$file" "PROD_$file"; done
for folder in */; do mv "$folder" "PROD_${folder%/}"; done
"""
UPLOADERS = {
    "aws s3 sync": "aws s3 sync --only-show-errors . s3://$BUCKET/dags/",
    "aws s3 cp": "aws s3 cp --recursive --only-show-errors . s3://$BUCKET/dags/",
}


@dataclass
class Figures:
    seconds: float
    requests: int
    uploads: int


def load_test_endpoint() -> type:
    """The S3 endpoint the deploy package's tests use (tests/deploy_tool/s3_endpoint.py)."""
    path = TEMPLATE / "tests" / "deploy_tool" / "s3_endpoint.py"
    spec = importlib.util.spec_from_file_location("s3_endpoint", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.S3Endpoint


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--dags", type=int, default=500, help="DAG files in the project")
    parser.add_argument(
        "--big-dags", type=int, default=BIG_PROJECT_DAGS, help="DAG files of the big local case"
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each scenario; best time")
    parser.add_argument(
        "--latency-ms", type=float, default=0, help="added to every request, as for a far bucket"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mwaa-benchmark-") as scratch:
        origin = bake_project(Path(scratch), args.dags)
        sys.path.insert(0, str(origin))
        S3Endpoint = load_test_endpoint()  # noqa: N806 - a class

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request
        endpoint = S3Endpoint()
        try:
            base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            environment = base | {
                "AWS_ENDPOINT_URL": endpoint.url,
                "AWS_ACCESS_KEY_ID": "benchmark",
                "AWS_SECRET_ACCESS_KEY": "benchmark",
                "AWS_REGION": "eu-west-1",
                "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                # No MWAA environment here: deploys end when the bucket holds the files, with
                # no parse to wait for and no pool to set.
                "MWAA_ENVIRONMENT": "",
            }
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
            os.environ.update(environment)
            tools = {
                "mwaa_deploy": f"{sys.executable} -m mwaa_deploy deploy PROD",
                **{name: SED_AND_MV + command for name, command in UPLOADERS.items()},
            }
            results = {
                name: measure(name, command, origin, Path(scratch), endpoint, args)
                for name, command in tools.items()
            }
            rollback = measure_rollback(origin, Path(scratch), endpoint, args)
            sandbox = measure_sandbox(origin, Path(scratch), endpoint, args)
            floor = floor_seconds("bench-mwaa-deploy", environment, args.rounds)
            phases = profile_redeploys(origin, Path(scratch), results["mwaa_deploy"])
        finally:
            endpoint.stop()
        local_seconds = measure_local_redeploy(origin, Path(scratch), args.rounds)
        print(f"  a project of {args.big_dags} DAG files ...", file=sys.stderr, flush=True)
        big = bake_project(Path(scratch) / "big", args.big_dags)
        big_local_seconds = measure_local_redeploy(big, Path(scratch) / "big", args.rounds)
    report(results, args)
    sync_revert = results["aws s3 sync"]["one file changed"]
    print(
        f"\nUndoing the one-file change: make rollback-prod {rollback.seconds:.2f}s"
        f" ({rollback.requests} requests, {rollback.uploads} uploads); aws s3 sync of the"
        f" reverted tree {sync_revert.seconds / rollback.seconds:.1f}x that"
    )
    dev, branch = sandbox
    print(
        f"\nOne of {args.dags} DAG files edited, deployed: DEV redeploy {dev.seconds:.2f}s"
        f" ({dev.uploads} uploads); a story branch's first sandbox deploy {branch.seconds:.2f}s"
        f" ({branch.uploads} uploads), {branch.seconds / dev.seconds:.2f}x the DEV redeploy"
    )
    print(
        f"\nLocal bucket, DEV redeploy after editing one DAG file: {local_seconds:.2f}s of"
        f" {args.dags} files, {big_local_seconds:.2f}s of {args.big_dags}"
    )
    ours = results["mwaa_deploy"]["unchanged redeploy"].seconds
    print(
        f"\nThe floor (Python, the AWS SDK, one LIST): {floor:.2f}s; an unchanged redeploy"
        f" {ours / floor:.2f}x it"
    )
    for title, (seconds, shares) in phases.items():
        print_breakdown(title, seconds, shares)
    local = {args.dags: local_seconds, args.big_dags: big_local_seconds}
    return 0 if check_targets(results, rollback, sandbox, local, floor) else 1


def bake_project(scratch: Path, dags: int) -> Path:
    """The template's defaults, with DAG files added up to `dags`, committed to git."""
    scratch.mkdir(exist_ok=True)
    bake = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(scratch), str(TEMPLATE)]
    subprocess.run(bake, check=True, capture_output=True)
    project = scratch / "data-platform-airflow"
    folder = project / "bucket_contents" / "dags"
    example = (folder / "dbt_models.py").read_text()
    existing = len(list(folder.glob("*.py")))
    for n in range(dags - existing):
        (folder / f"dbt_models_{n:03}.py").write_text(
            example.replace('_dbt_models"', f'_dbt_models_{n:03}"')
        )
    for command in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "baked"]):
        subprocess.run([*GIT, *command], cwd=project, check=True)
    return project


def measure(
    name: str, command: str, origin: Path, scratch: Path, endpoint, args: argparse.Namespace
) -> dict[str, Figures]:
    bucket = "bench-" + name.replace(" ", "-").replace("_", "-")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    clones = iter(range(1_000_000))

    def deploy(prepare: Callable[[Path], None] = lambda _clone: None) -> Figures:
        clone = scratch / f"clone-{next(clones)}"
        subprocess.run(["git", "clone", "--quiet", str(origin), str(clone)], check=True)
        prepare(clone)
        endpoint.reset()
        endpoint.latency = args.latency_ms / 1000
        start = time.perf_counter()
        run = subprocess.run(
            ["bash", "-c", command],
            cwd=clone,
            # No MWAA environment reads the benchmark's bucket: no parse gate to wait for.
            env=os.environ | {"S3_BUCKET": bucket, "BUCKET": bucket},
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        if run.returncode != 0:
            sys.exit(f"{name} failed:\n{run.stdout}{run.stderr}")
        figures = Figures(seconds, endpoint.count(), file_uploads(endpoint))
        shutil.rmtree(clone)
        return figures

    def empty_bucket() -> None:
        keys = [{"Key": key} for key in list_keys(s3, bucket)]
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000]})

    def edit_one_dag(clone: Path) -> None:
        """A merged change: PROD deploys run from a clean checkout of main."""
        dag = clone / "bucket_contents" / "dags" / "dbt_models.py"
        dag.write_text(dag.read_text() + f"# edited at {time.time()}\n")
        subprocess.run([*GIT, "commit", "-qam", "edit"], cwd=clone, check=True)

    print(f"  {name} ...", file=sys.stderr, flush=True)
    rounds: dict[str, list[Figures]] = {scenario: [] for scenario in SCENARIOS}
    for _ in range(args.rounds):
        empty_bucket()
        rounds["first deploy"].append(deploy())
        rounds["unchanged redeploy"].append(deploy())
        rounds["one file changed"].append(deploy(edit_one_dag))
    return {
        scenario: Figures(
            min(f.seconds for f in runs), runs[-1].requests, max(f.uploads for f in runs)
        )
        for scenario, runs in rounds.items()
    }


def measure_rollback(origin: Path, scratch: Path, endpoint, args: argparse.Namespace) -> Figures:
    """`make rollback-prod` from a fresh clone of main, in the bucket mwaa_deploy deployed
    to: each round undoes the one-file change the round before put back."""
    clone = scratch / "clone-rollback"
    subprocess.run(["git", "clone", "--quiet", str(origin), str(clone)], check=True)
    command = [sys.executable, "-m", "mwaa_deploy", "rollback", "PROD"]
    environment = os.environ | {"S3_BUCKET": "bench-mwaa-deploy"}
    print("  rollback ...", file=sys.stderr, flush=True)
    rounds = []
    for _ in range(args.rounds):
        endpoint.reset()
        endpoint.latency = args.latency_ms / 1000
        start = time.perf_counter()
        run = subprocess.run(command, cwd=clone, env=environment, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if run.returncode != 0:
            sys.exit(f"rollback failed:\n{run.stdout}{run.stderr}")
        rounds.append(Figures(seconds, endpoint.count(), file_uploads(endpoint)))
    return min(rounds, key=lambda f: f.seconds)


def measure_sandbox(
    origin: Path, scratch: Path, endpoint, args: argparse.Namespace
) -> tuple[Figures, Figures]:
    """One DAG file edited: `make deploy-dev` on main (DEV, all files stamped, one uploaded)
    against the same on a new story branch (its sandbox: that file and its helper package)."""
    bucket = "bench-sandboxes"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    clone = scratch / "clone-sandboxes"
    subprocess.run(["git", "clone", "--quiet", str(origin), str(clone)], check=True)
    environment = os.environ | {"S3_BUCKET": bucket}
    deploy = [sys.executable, "-m", "mwaa_deploy", "deploy", "DEV"]

    def run() -> None:
        done = subprocess.run(deploy, cwd=clone, env=environment, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"sandboxes: deploy DEV failed:\n{done.stdout}{done.stderr}")

    run()
    dag = clone / "bucket_contents" / "dags" / "dbt_models.py"
    original = dag.read_text()
    endpoint.latency = args.latency_ms / 1000

    def timed(round_: int) -> Figures:
        dag.write_text(original + f"# edit {round_}\n")
        endpoint.reset()
        endpoint.latency = args.latency_ms / 1000
        start = time.perf_counter()
        run()
        return Figures(time.perf_counter() - start, endpoint.count(), file_uploads(endpoint))

    print("  sandboxes ...", file=sys.stderr, flush=True)
    dev, branch = [], []
    for round_ in range(args.rounds):
        dev.append(timed(round_))
        subprocess.run(
            [*GIT, "checkout", "-q", "-b", f"story/bench-{round_}"], cwd=clone, check=True
        )
        branch.append(timed(round_))
        dag.write_text(original)
        subprocess.run([*GIT, "checkout", "-q", "main"], cwd=clone, check=True)
    return min(dev, key=lambda f: f.seconds), min(branch, key=lambda f: f.seconds)


def profile_redeploys(
    origin: Path, scratch: Path, figures: dict[str, Figures]
) -> dict[str, tuple[float, dict[str, float]]]:
    """The phases of a one-file redeploy (the bucket holds the last round's edit, which a
    fresh clone of main reverts) and of an unchanged one, each from a fresh clone."""
    print("  profiles ...", file=sys.stderr, flush=True)
    command = [sys.executable, "-m", "mwaa_deploy", "deploy", "PROD"]
    environment = os.environ | {"S3_BUCKET": "bench-mwaa-deploy"}
    found = {}
    for scenario in ("one file changed", "unchanged redeploy"):
        clone = scratch / f"clone-profile-{scenario.replace(' ', '-')}"
        subprocess.run(["git", "clone", "--quiet", str(origin), str(clone)], check=True)
        shares = breakdown(command, clone, environment)
        found[f"mwaa_deploy, {scenario}"] = (figures[scenario].seconds, shares)
    return found


def file_uploads(endpoint) -> int:
    """Uploads of files: a deploy's lock and record are requests, not uploads of content."""
    puts = [r.key for r in endpoint.requests if r.action == "put"]
    return len([key for key in puts if not key.endswith((".lock", ".deployed.json"))])


def measure_local_redeploy(origin: Path, scratch: Path, rounds: int) -> float:
    """`make deploy-dev` into the local bucket after one edit: the airflow-local loop."""
    clone = scratch / "clone-local"
    subprocess.run(["git", "clone", "--quiet", str(origin), str(clone)], check=True)
    deploy = [sys.executable, "-m", "mwaa_deploy", "deploy", "DEV"]
    local = os.environ | {"S3_BUCKET": ""}
    subprocess.run(deploy, cwd=clone, env=local, check=True, capture_output=True)
    dag = clone / "bucket_contents" / "dags" / "dbt_models.py"
    times = []
    for round_ in range(rounds):
        # Files as old as a person's edits are apart: the local bucket and the build read
        # files written in the last two seconds at every deploy (file_state.py's SETTLED_NS).
        time.sleep(2)
        dag.write_text(dag.read_text() + f"# edit {round_}\n")
        start = time.perf_counter()
        run = subprocess.run(deploy, cwd=clone, env=local, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
        assert b"DEV deployed: 1 uploaded" in run.stdout, run.stdout
    return min(times)


def list_keys(s3, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def report(results: dict[str, dict[str, Figures]], args: argparse.Namespace) -> None:
    print(
        f"\nPROD deploy of {args.dags} DAG files, best of {args.rounds},"
        f" endpoint latency {args.latency_ms:g} ms per request\n"
    )
    print(f"{'':<14}" + "".join(f"{scenario:<29}" for scenario in SCENARIOS))
    print(f"{'':<14}" + "time     requests  uploads    " * len(SCENARIOS))
    for name, figures in results.items():
        cells = (
            f"{f.seconds:6.2f}s  {f.requests:8}  {f.uploads:7}    "
            for f in (figures[s] for s in SCENARIOS)
        )
        print(f"{name:<14}" + "".join(cells))
    print("\nTime of each alternative over mwaa_deploy's:")
    ours = results["mwaa_deploy"]
    for scenario in SCENARIOS:
        ratios = ", ".join(
            f"{name} {results[name][scenario].seconds / ours[scenario].seconds:.1f}x"
            for name in UPLOADERS
        )
        print(f"  {scenario:<20} {ratios}")


def check_targets(
    results: dict[str, dict[str, Figures]],
    rollback: Figures,
    sandbox: tuple[Figures, Figures],
    local: dict[int, float],
    floor: float,
) -> bool:
    ours = results["mwaa_deploy"]
    dev, branch = sandbox
    one_file_ratio = (
        results["aws s3 sync"]["one file changed"].seconds / ours["one file changed"].seconds
    )
    beyond = ours["one file changed"].requests - ours["unchanged redeploy"].requests
    over_floor = ours["unchanged redeploy"].seconds / floor
    rollback_ratio = rollback.seconds / results["aws s3 sync"]["one file changed"].seconds
    sync_ratio = (
        results["aws s3 sync"]["unchanged redeploy"].seconds / ours["unchanged redeploy"].seconds
    )
    first_ratio = ours["first deploy"].seconds / results["aws s3 cp"]["first deploy"].seconds
    targets = [
        (
            "an unchanged redeploy makes 0 uploads",
            ours["unchanged redeploy"].uploads == 0,
            f"{ours['unchanged redeploy'].uploads}",
        ),
        (
            "an unchanged redeploy is at least 10x faster than aws s3 sync from a fresh clone",
            sync_ratio >= 10,
            f"{sync_ratio:.1f}x",
        ),
        (
            "an unchanged redeploy takes at most 1.5x the floor (Python, the SDK, one LIST)",
            over_floor <= 1.5,
            f"{over_floor:.2f}x",
        ),
        (
            "a one-file change is at least 8x faster than aws s3 sync from a fresh clone",
            one_file_ratio >= 8,
            f"{one_file_ratio:.1f}x",
        ),
        (
            "a one-file change makes at most 4 requests beyond an unchanged redeploy",
            beyond <= 4,
            f"{beyond}",
        ),
        (
            "a one-file change makes exactly 1 upload",
            ours["one file changed"].uploads == 1,
            f"{ours['one file changed'].uploads}",
        ),
        (
            "the first deploy is no slower than aws s3 cp --recursive",
            first_ratio <= 1,
            f"{first_ratio:.2f}x its time",
        ),
        (
            "a rollback of a one-file change makes exactly 1 upload",
            rollback.uploads == 1,
            f"{rollback.uploads}",
        ),
        (
            "a rollback of a one-file change is no slower than aws s3 sync of the reverted tree",
            rollback_ratio <= 1,
            f"{rollback_ratio:.2f}x its time",
        ),
        (
            "a sandbox deploy of a one-file change uploads that file and its helper package",
            branch.uploads == 4,
            f"{branch.uploads} uploads",
        ),
        (
            "a sandbox deploy of a one-file change takes at most 1.2x a DEV redeploy of it",
            branch.seconds <= 1.2 * dev.seconds,
            f"{branch.seconds / dev.seconds:.2f}x",
        ),
        *(
            (
                f"a local redeploy of one edited DAG of {dags} takes under 0.2s",
                seconds < 0.2,
                f"{seconds:.2f}s",
            )
            for dags, seconds in local.items()
        ),
    ]
    print("\nTargets:")
    for text, met, figure in targets:
        print(f"  [{'met' if met else 'MISSED'}] {text}: {figure}")
    return all(met for _, met, _ in targets)


if __name__ == "__main__":
    sys.exit(main())
