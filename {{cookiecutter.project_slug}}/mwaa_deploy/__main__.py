"""Command line behind the Makefile: `python -m mwaa_deploy COMMAND`; `--help` lists them.

This module reads the command line and runs the command (a function in commands.py); a
DeployError becomes its message and exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

from mwaa_deploy import commands, config
from mwaa_deploy.exceptions import DeployError
from mwaa_deploy.owners import ENVIRONMENTS


class Command(NamedTuple):
    run: Callable[..., int]  # a function of commands.py, given the settings and `arguments`
    help: str
    arguments: tuple[tuple[str, dict[str, Any]], ...] = ()  # (name, add_argument's options)


def _positive(text: str) -> int:
    """A count the command line gives: a whole number from 1 up."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of 1 or more")
    return int(text)


FORCE_HELP = "run although not on the default branch, or with uncommitted changes"
ENV = ("env", {"choices": ENVIRONMENTS})
FULL = (
    "--full",
    {"action": "store_true", "help": "a sandbox: the whole project, not what the branch changes"},
)
UV = ("--uv", {"default": "uv", "help": "the uv to install with (default: uv on PATH)"})
PORT = ("--port", {"type": int, "default": 8080, "help": "where the UI listens (default 8080)"})

COMMANDS = {
    "stamp": Command(
        commands.stamp,
        "write build/<owner>/ from bucket_contents/, checking every DAG file",
        (ENV, FULL),
    ),
    "plan": Command(
        commands.plan, "stamp, then show what a deploy would change; changes nothing", (ENV, FULL)
    ),
    "deploy": Command(
        commands.deploy,
        "stamp, then upload new and changed files and delete stale ones",
        (ENV, ("--force", {"action": "store_true", "help": f"PROD: {FORCE_HELP}"}), FULL),
    ),
    "clean": Command(
        commands.clean,
        "delete every file of the branch's sandbox (of DEV on the default branch) in the bucket",
        (("env", {"choices": ["DEV"]}),),
    ),
    "history": Command(
        commands.show_history,
        "list the last deploys of DEV (on a story branch, its sandbox) or PROD",
        (ENV, ("--last", {"type": _positive, "default": 10, "help": "how many (default 10)"})),
    ),
    "rollback": Command(
        commands.rollback,
        "put back the exact files of an earlier deploy (default: the one before the last)",
        (
            ENV,
            ("--to", {"help": "the ID of the deploy, as the history shows it"}),
            ("--force", {"action": "store_true", "help": f"PROD: {FORCE_HELP}"}),
        ),
    ),
    "sandboxes": Command(
        commands.list_sandboxes,
        "list the story branches' sandboxes in the bucket: files, last deploy, stale ones",
    ),
    "check-requirements": Command(
        commands.check_requirements, "check requirements.txt, startup.sh and plugins/ for MWAA"
    ),
    "check-startup": Command(
        commands.check_startup, "check startup.sh as MWAA runs it; say what it leaves set"
    ),
    "install": Command(
        commands.install,
        "install a dependency group into this venv with MWAA's pins",
        (("--group", {"choices": ["deploy", "dev"], "required": True}), UV),
    ),
    "lock": Command(
        commands.lock,
        "resolve the tools MWAA does not run afresh and write tools.lock",
        (UV,),
    ),
    "check-pins": Command(
        commands.check_pins, "compare the packages of this venv with MWAA's pins"
    ),
    "upgrade-check": Command(
        commands.upgrade_check,
        "check an upgrade to another Airflow version on MWAA; one report, exit 1 if blocked",
        (
            ("to", {"nargs": "?", "help": "the Airflow version, such as 3.3.1"}),
            UV,
            ("--venv", {"help": "the scratch venv for the target (default .venv-airflow-TO)"}),
        ),
    ),
    "deploy-requirements": Command(
        commands.deploy_requirements,
        "check, upload the changed instance-wide files and update the MWAA environment",
        (("--force", {"action": "store_true", "help": FORCE_HELP}),),
    ),
    "airflow-local": Command(
        commands.airflow_local,
        "run Airflow on the local bucket's dags/, DEV and PROD, until Ctrl-C",
        (PORT,),
    ),
    "s3-local": Command(
        commands.s3_local,
        "run an S3 endpoint here with the project's bucket, to try S3 deploys, until Ctrl-C",
        (("--port", {"type": int, "default": 4566, "help": "where it listens (default 4566)"}),),
    ),
    "mwaa-local": Command(
        commands.mwaa_local,
        "run MWAA's API here in front of airflow-local, to try the parse gate, until Ctrl-C",
        (
            ("--port", {"type": int, "default": 4567, "help": "where it listens (default 4567)"}),
            (
                "--airflow-port",
                {"type": int, "default": 8080, "help": "airflow-local's port (default 8080)"},
            ),
        ),
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Run the command `argv` names (by default, this process's); return its exit status."""
    command, arguments = parse(argv)
    try:
        return command(config.load(), **arguments)
    except DeployError as error:
        print(error, file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


def parse(argv: list[str] | None) -> tuple[Callable[..., int], dict[str, Any]]:
    """The command's function, and the arguments it takes, from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m mwaa_deploy", description=__doc__.splitlines()[0]
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=command.help)
        for argument, options in command.arguments:
            subparser.add_argument(argument, **options)
    arguments = vars(parser.parse_args(argv))
    return COMMANDS[arguments.pop("command")].run, arguments


if __name__ == "__main__":
    # Reference counting frees what a command lets go of. The cycle collector would only
    # walk the AWS SDK's many objects, over and over while they load and once more at
    # exit, finding nothing to free.
    gc.disable()
    status = main()
    gc.freeze()
    sys.exit(status)
