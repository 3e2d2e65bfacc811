"""The commands about the environment as a whole, one function each: its instance-wide
files, the packages of this venv, and the local stand-ins. The DAG deploys' commands are in
deploys.py; __main__.py parses the arguments.

Each command imports what it needs only, as in deploys.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import zipfile
from pathlib import Path

from mwaa_deploy import config
from mwaa_deploy.checkout import Checkout
from mwaa_deploy.commands.deploys import open_bucket
from mwaa_deploy.commands.prod_path import check_prod_path
from mwaa_deploy.exceptions import CheckError, DeployError, InstallError


def check_requirements(settings: config.Settings) -> int:
    """`check-requirements`: check requirements.txt, startup.sh and plugins/ for MWAA."""
    from mwaa_deploy.instance import instance_files

    files = instance_files.checked_files(settings)
    print(f"Checked for MWAA: {', '.join(files) or 'no instance-wide files'}.")
    return 0


def check_startup(settings: config.Settings) -> int:
    """`check-startup`: check startup.sh as MWAA runs it, and say what it leaves set."""
    from mwaa_deploy.instance import startup
    from mwaa_deploy.instance.instance_files import STARTUP

    script = settings.sources / STARTUP
    if not script.is_file():
        print(f"No {config.shown(script)}: nothing to check.")
        return 0
    found = startup.report(script, settings)
    for note in found.notes:
        print(note)
    if found.problems:
        raise CheckError(found.problems, "Check failed: fix startup.sh before it reaches MWAA.")
    print(f"Checked for MWAA: {config.shown(script)}.")
    return 0


def pack_wheels(settings: config.Settings) -> int:
    """`pack-wheels`: check, then write to build/offline/ the plugins.zip holding MWAA's
    wheels of requirements.txt and the requirements.txt that installs them with no index."""
    from mwaa_deploy.instance import instance_files

    offline = dataclasses.replace(settings, offline_wheels=True)
    folder = settings.build / "offline"
    try:
        files = instance_files.checked_files(offline)
    except CheckError as error:
        earlier = folder.is_dir() and any(folder.iterdir())
        left = (
            f"{config.shown(folder)}/ left as it was, with an earlier run's files"
            if earlier
            else f"nothing was written to {config.shown(folder)}/"
        )
        raise CheckError(error.problems, f"Check failed: {left}.") from None
    requirements = settings.sources / instance_files.REQUIREMENTS
    if instance_files.REQUIREMENTS not in files:
        raise DeployError(f"no {config.shown(requirements)}: no wheels to pack")
    # plugins.zip first: a failure at either leaves requirements.txt as it was, and a
    # requirements.txt never names wheels its plugins.zip lacks.
    _replace_files(
        folder,
        {name: files[name] for name in (instance_files.PLUGINS, instance_files.REQUIREMENTS)},
    )
    with zipfile.ZipFile(folder / instance_files.PLUGINS) as archive:
        count = sum(name.endswith(".whl") for name in archive.namelist())
    size = len(files[instance_files.PLUGINS]) / 1e6
    ships = (
        "make deploy-requirements ships them (offline_wheels = true)"
        if settings.offline_wheels
        else "set offline_wheels = true in pyproject.toml for make deploy-requirements to ship them"
    )
    print(
        f"{config.shown(folder)}: plugins.zip ({count} wheels, {size:.1f} MB) and the"
        f" requirements.txt that installs them on MWAA with no index, both checked; {ships}."
    )
    return 0


def _replace_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write `files` into `folder`, each whole to a temporary first, then renamed in order;
    DeployError naming what cannot be written (a read-only folder, a file in the way)."""
    written: list[tuple[Path, Path]] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, body in files.items():
            partial = folder / f".{name}.partial"
            written.append((partial, folder / name))
            partial.write_bytes(body)
        for partial, final in written:
            partial.replace(final)
    except OSError as error:
        blocked = Path(error.filename2) if error.filename2 else folder
        raise DeployError(
            f"cannot write {config.shown(blocked)}: {error.strerror}; make"
            f" {config.shown(folder)}/ a writable folder, then run make pack-wheels again"
        ) from None
    finally:
        for partial, _ in written:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)


def install(settings: config.Settings, group: str, uv: str) -> int:
    """`install --group GROUP`: install a dependency group into this venv with MWAA's pins;
    for the dev group, then compare the venv with MWAA's pins."""
    from mwaa_deploy.local import local_venv

    local_venv.install(settings, uv, sys.executable, group)
    if group == "dev":
        return check_pins(settings)
    return 0


def lock(settings: config.Settings, uv: str) -> int:
    """`lock`: resolve the tools afresh and write tools.lock, for review as any change."""
    from mwaa_deploy.local import tools_lock

    path = tools_lock.refresh(settings, uv)
    print(f"{config.shown(path)}: written; review `git diff {path.name}`, then run make install")
    return 0


def check_pins(settings: config.Settings) -> int:
    """`check-pins`: every package of this venv that MWAA pins, against MWAA's pin."""
    from mwaa_deploy.local import local_venv

    report, lines = local_venv.pins_report(settings, sys.executable)
    for line in lines:
        print(line)
    if report.runtime:
        raise InstallError(
            f"{len(report.runtime)} package(s) MWAA runs differ from MWAA's pins here:"
            " run make install again (rm -rf .venv first if it stays)"
        )
    return 0


def upgrade_check(settings: config.Settings, to: str | None, uv: str, venv: str | None) -> int:
    """`upgrade-check TO`: what stands between this project and Airflow TO on MWAA."""
    from mwaa_deploy.local import upgrade_check as checking

    if not to:
        current = settings.airflow_version
        newer = [v for v in checking.MWAA_VERSIONS if checking.newer_than(v, current)]
        if not newer:
            print(
                f"This project runs Airflow {current}, the newest MWAA offers here"
                f" ({', '.join(checking.MWAA_VERSIONS)}): nothing to upgrade to yet. When MWAA"
                " offers a newer one: make upgrade-check TO=<it>."
            )
            return 0
        raise DeployError(
            f"say which Airflow version to check the upgrade to: MWAA offers"
            f" {', '.join(reversed(newer))} beyond this project's {current}, such as"
            f" make upgrade-check TO={newer[-1]}"
        )
    folder = Path(venv) if venv else settings.root / f".venv-airflow-{to}"
    return checking.run(settings, to, uv, folder)


def deploy_requirements(settings: config.Settings, force: bool) -> int:
    """`deploy-requirements`: check, upload the changed instance-wide files and update
    the MWAA environment; with the local bucket, write them there."""
    from mwaa_deploy.commands import requirements_history as recorded
    from mwaa_deploy.instance import instance_files, live_instance, mwaa_environment

    if settings.s3_bucket and not force:
        check_prod_path(
            Checkout.read(settings.root), settings.default_branch, "deploy-requirements"
        )
    files = instance_files.checked_files(settings)
    bucket = open_bucket(settings)
    if not settings.s3_bucket:
        changed = mwaa_environment.changed_files(files, bucket.get)
        mwaa_environment.write_local(bucket, changed)
        if changed:
            recorded.record_local(bucket, recorded.about(settings), list(changed))
        written = ", ".join(changed) or "nothing"
        print(f"{written} written to {bucket.description}; no MWAA environment to update.")
        return 0
    mwaa, name = live_instance.client(settings), settings.mwaa_environment
    running = mwaa_environment.running_versions(mwaa, name, bucket.name)
    changed = mwaa_environment.changed_files(
        files, lambda key: bucket.get(key, running[key]) if key in running else None
    )
    if not changed:
        print(f"{name} already runs these instance-wide files: no upload, no update.")
        return 0
    versions = mwaa_environment.upload(bucket, changed)
    print(f"Uploaded {', '.join(f'{key} (version {v})' for key, v in versions.items())}.")
    with recorded.recording(bucket, recorded.about(settings), running, versions, files) as ended:
        mwaa_environment.update_environment(mwaa, name, versions, ended.update)
    return 0


def airflow_local(settings: config.Settings, port: int, mwaa_local: bool) -> int:
    """`airflow-local`: run Airflow on the local bucket's dags/, DEV and PROD, until Ctrl-C;
    with `mwaa_local`, on the folder mwaa-local copies an S3 bucket's dags/ into."""
    from mwaa_deploy.local.airflow_local import run

    return run(settings, port, mwaa_local)


def s3_local(settings: config.Settings, port: int) -> int:
    """`s3-local`: an S3 endpoint on this machine with the project's bucket, until Ctrl-C."""
    from mwaa_deploy.local.s3_local import run

    return run(settings, port)


def mwaa_local(settings: config.Settings, port: int, airflow_port: int) -> int:
    """`mwaa-local`: MWAA's API on this machine, in front of airflow-local, until Ctrl-C."""
    from mwaa_deploy.local.mwaa_local import run

    return run(settings, port, airflow_port)
