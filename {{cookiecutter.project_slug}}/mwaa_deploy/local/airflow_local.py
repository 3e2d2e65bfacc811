"""airflow-local: this project's real Airflow, standalone, reading the local bucket's DAGs.

After `make deploy-dev deploy-prod` it lists every DAG twice, DEV_ and PROD_, as MWAA
will; a redeploy to the local bucket shows up within seconds, without a restart. Once it
answers, DEV's pool is set on it as a PROD deploy sets it on MWAA (pools.py); it loads the
plugins as MWAA unpacks plugins.zip, the cluster policy with them (instance/policy.py). With
MWAA_LOCAL=1 it reads instead the folder that mwaa-local copies an S3 bucket's dags/ into.
Everything it starts runs in one process group of its own, which Ctrl-C stops whole, also
when this command's output goes to a pipe that the same Ctrl-C closed (`| tee log`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from mwaa_deploy.config import Settings, shown
from mwaa_deploy.exceptions import (
    ConfigError,
    LocalAirflowError,
    LocalMwaaError,
    LocalSettingsError,
    PoolError,
)
from mwaa_deploy.instance import instance_files, pools, roles
from mwaa_deploy.local import airflow_db, airflow_settings, fab_standalone, local_roles

HOST = "127.0.0.1"
# How often Airflow looks for new DAG files: seconds, not the minutes a production scheduler
# waits, so that a local deploy shows up at once (a listing of the folder, which costs an idle
# Airflow no measurable CPU). A changed file is parsed again as soon as it is seen (Airflow's
# file_parsing_sort_mode, modified_time); the others every 30 seconds, Airflow's and MWAA's
# default, not in a loop that would keep a laptop's cores busy.
RESCAN_SECONDS = "2"
GRACE_SECONDS = 60


def say(line: str) -> None:
    """Print a line at once, to a pipe or a log file too, while Airflow runs. Where nothing
    reads any more (`| tee log` ended by the same Ctrl-C), the rest goes nowhere: stopping
    Airflow matters more than saying so."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        # Python's advice: point stdout at devnull, so that no later print, nor the flush
        # at exit, fails on the closed pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def stop_on_ctrl_c() -> None:
    """Ctrl-C (SIGINT) and SIGTERM (a closed terminal, a CI runner) raise KeyboardInterrupt,
    also where a shell started this command with SIGINT ignored, as it does a background
    job (`make s3-local &`); what this process starts then gets the default back too."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def serve_until_ctrl_c(what: str) -> None:
    """Hold the command (a local endpoint serving on its threads) until Ctrl-C, which ends it
    as a stop should: one line, no traceback."""
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        say(f"\n{what} stopped.")


def home(settings: Settings) -> Path:
    """Airflow's own folder: its database, logs and generated password."""
    return settings.root / "airflow_home"


def dags_folder(settings: Settings, mwaa_local: bool) -> Path:
    """The DAGs folder Airflow reads: the local bucket's, or the one mwaa-local copies an
    S3 bucket's dags/ into, a folder of its own (the local bucket holds deploys of its own),
    named dags/ as on MWAA, where the parse gate finds a DAG file's path after /dags/."""
    return home(settings) / "mwaa_local" / "dags" if mwaa_local else settings.local_bucket / "dags"


def plugins_folder(settings: Settings) -> Path:
    """plugins.zip unpacked, as MWAA holds it (run() writes it at every start)."""
    return home(settings) / "plugins"


def environment(settings: Settings, port: int, dags: Path) -> dict[str, str]:
    """The variables that make a standalone Airflow read `dags` on `port`."""
    venv_bin = Path(sys.executable).parent
    env = os.environ | {
        "AIRFLOW_HOME": str(home(settings)),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder(settings)),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # A laptop, not a cluster: the local executor starts one worker per slot up front.
        "AIRFLOW__CORE__PARALLELISM": "4",
        # `airflow standalone` starts each of its parts as `airflow ...` from PATH.
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    if _is_airflow_2(settings):
        return env | {
            "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": HOST,
            "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(port),
            "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": RESCAN_SECONDS,
            # The REST API with the same login as the UI, for scripts and curl.
            "AIRFLOW__API__AUTH_BACKENDS": (
                "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session"
            ),
        }
    return env | {
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": RESCAN_SECONDS,
    }


def health_url(settings: Settings, port: int) -> str:
    path = "/health" if _is_airflow_2(settings) else "/api/v2/monitor/health"
    return f"http://{HOST}:{port}{path}"


def admin_password(settings: Settings) -> str | None:
    """The password standalone Airflow generated for `admin` on its first start."""
    file = home(settings) / fab_standalone.PASSWORD_FILE
    return file.read_text().strip() if file.is_file() else None


def run(settings: Settings, port: int, mwaa_local: bool) -> int:
    """Start Airflow, say where it is once it answers, and stop all of it on Ctrl-C."""
    dags = dags_folder(settings, mwaa_local)
    if mwaa_local:
        dags.mkdir(parents=True, exist_ok=True)  # mwaa-local fills it
    _check_can_start(settings, dags, port)
    if wrong := airflow_settings.problems(settings.root, dict(os.environ)):
        raise LocalSettingsError(wrong, "Airflow was not started.")
    seed = airflow_settings.seed(settings.root, dict(os.environ))
    home(settings).mkdir(exist_ok=True)
    if not _is_airflow_2(settings):
        # MWAA's auth manager, whose roles the project's are. Set before the database is
        # checked: one set up under another auth manager lacks FAB's tables.
        os.environ["AIRFLOW__CORE__AUTH_MANAGER"] = fab_standalone.AUTH_MANAGER
    setup = airflow_db.prepare(home(settings))
    instance_files.write_plugins(settings, plugins_folder(settings))
    log = home(settings) / "standalone.log"
    say(f"Starting Airflow {settings.airflow_version} on the DAGs in {shown(dags)}/")
    say(f"({setup or 'on its database from the last start'}; logs: {shown(log)})")
    _say_seeded(seed)
    stop_on_ctrl_c()
    # On a database set up for this Airflow, standalone's own check of it is a wait for nothing.
    standalone = ["mwaa_deploy.local.fab_standalone", *(["--set-up"] if setup else [])]
    for role in _project_roles(settings):
        standalone += ["--role", role]
    with open(log, "ab") as output:
        airflow = subprocess.Popen(
            [sys.executable, "-m", *standalone],
            env=environment(settings, port, dags) | seed.environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Its own process group: Ctrl-C reaches only this command, which then stops
            # every part of Airflow in order instead of leaving some of them behind.
            start_new_session=True,
        )
        try:
            return _serve(settings, airflow, port, log, mwaa_local)
        except KeyboardInterrupt:
            return 0
        finally:
            # However the wait ended (Ctrl-C, Airflow ending on its own, an error), nothing
            # of Airflow outlives this command.
            _stop(airflow)


def _project_roles(settings: Settings) -> tuple[str, ...]:
    """The roles the cluster policy grants DAGs to; none where the settings name wrong
    ones, which the roles' own step then reports."""
    try:
        return roles.owned(settings)
    except ConfigError:
        return ()


def _check_can_start(settings: Settings, dags: Path, port: int) -> None:
    """Raise LocalAirflowError, with what to do, unless there are DAGs and a free port."""
    if not dags.is_dir():
        deploy = "make deploy-dev deploy-prod"
        raise LocalAirflowError(
            f"{shown(dags)} does not exist yet: run `{deploy}` first"
            if not settings.s3_bucket
            else f"{shown(dags)} does not exist yet: run `S3_BUCKET= {deploy}` first,"
            " to deploy to the local bucket instead of S3"
        )
    if port_in_use(port):
        raise LocalAirflowError(
            f"port {port} is in use, perhaps by another Airflow: stop it,"
            f" or run `make airflow-local PORT={port + 1}`"
        )


def _serve(
    settings: Settings,
    airflow: subprocess.Popen[bytes],
    port: int,
    log: Path,
    mwaa_local: bool,
) -> int:
    """Say where Airflow is once it answers, then wait for it: 1 if it ends on its own."""
    if not _wait_until_ready(airflow, health_url(settings, port)):
        say(f"Airflow stopped while starting; the end of {shown(log)}:")
        say("\n".join(log.read_text(errors="replace").splitlines()[-20:]))
        return 1
    airflow_db.mark_set_up(home(settings))
    password = admin_password(settings)
    say(f"Airflow is ready: http://{HOST}:{port}")
    say(f"Log in as admin, password {password or f'see {shown(home(settings))}'}")
    _set_dev_pool(settings, port, password)
    local_roles.set_up(settings, f"http://{HOST}:{port}", password, say)
    # With a bucket set, deploys go to S3 unless told otherwise; this Airflow reads the folder.
    deploy = "S3_BUCKET= make deploy-dev" if settings.s3_bucket else "make deploy-dev"
    if mwaa_local:
        say("Run `make mwaa-local` in another terminal: it copies the S3 bucket's dags/ here.")
    else:
        say(f"Run `{deploy}` in another terminal: changes show up in seconds.")
    say("Press Ctrl-C to stop Airflow.")
    airflow.wait()
    say(f"Airflow stopped on its own; see {shown(log)}")
    return 1


def _say_seeded(seed: airflow_settings.Seed) -> None:
    """Which of airflow_settings.yaml's connections and variables this start gives Airflow."""
    if seed.loaded:
        say(f"From {airflow_settings.FILE}: {', '.join(seed.loaded)}")
    for line in seed.left_out:
        say(line)


def _set_dev_pool(settings: Settings, port: int, password: str | None) -> None:
    """DEV's pool, as on MWAA: without it Airflow would never start a DEV task."""
    from mwaa_deploy.local.airflow_api import AirflowApi

    problem = "no admin password to log in with"
    if password is not None:
        api = AirflowApi(f"http://{HOST}:{port}", settings.airflow_version, password)
        try:
            say(pools.ensure(api, settings.dev_pool_slots))
            return
        except (PoolError, LocalMwaaError, OSError) as error:
            problem = str(error)
    say(
        f"Could not set {pools.DEV_POOL} ({problem}): DEV's tasks wait until it exists; add"
        f" it under Admin > Pools with {settings.dev_pool_slots} slots."
    )


def _is_airflow_2(settings: Settings) -> bool:
    """Airflow 2 serves its UI from a webserver, Airflow 3 from an API server."""
    return settings.airflow_version.startswith("2.")


def _wait_until_ready(airflow: subprocess.Popen[bytes], url: str) -> bool:
    while airflow.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    return False


def _stop(airflow: subprocess.Popen[bytes]) -> None:
    """Ask standalone Airflow to stop its parts, then make sure nothing of it is left."""
    running = airflow.poll() is None
    if running:
        say("\nStopping Airflow...")
        airflow.send_signal(signal.SIGINT)
        try:
            airflow.wait(GRACE_SECONDS)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            pass
    # Its parts too, which may outlive the standalone process that started them.
    try:
        os.killpg(airflow.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    airflow.wait()
    if running:
        say("Airflow stopped.")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def port_in_use(port: int) -> bool:
    """Whether something already listens on `port` of this machine's loopback address."""
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) == 0
