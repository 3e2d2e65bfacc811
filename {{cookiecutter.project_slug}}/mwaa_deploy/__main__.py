"""Command line behind the Makefile: `python -m mwaa_deploy COMMAND`; `--help` lists them.

This module reads the command line and runs the command (a function of the commands package); a
DeployError becomes its message and exit status, never a traceback. An option the Makefile
has a variable for (FORCE, FULL, TO, N, PORT, ...) also comes from that variable in the
environment, where make hands every value its user gives it, read here as data: never
pasted into a shell, and refused in one line where it means nothing.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

from mwaa_deploy import config
from mwaa_deploy.exceptions import ConfigError, DeployError
from mwaa_deploy.owners import ENVIRONMENTS


class Command(NamedTuple):
    # "module.function" of commands/, given the settings and `arguments`: imported only
    # when it runs, so that a command loads what it needs and nothing of the others'.
    run: str
    help: str
    # (name, add_argument's options; "variable": the Makefile's variable that also gives it)
    arguments: tuple[tuple[str, dict[str, Any]], ...] = ()


def _positive(text: str) -> int:
    """A count the command line gives: a whole number from 1 up."""
    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of 1 or more")
    return int(text)


def _port(text: str) -> int:
    if not text.isdecimal() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use a number from 1 to 65535")
    return int(text)


# What a switch variable (FORCE=1) may say, in any case; nothing else switches it either way.
ON, OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _switch(variable: str, text: str) -> bool:
    if text.lower() in ON + OFF:
        return text.lower() in ON
    raise ConfigError(
        f"{variable}={text!r} is not a switch: {variable}=1 (or true, yes, on) switches it on,"
        f" {variable}=0 (or false, no, off, or nothing) leaves it off"
    )


FORCE_HELP = "run although not on the default branch, or with uncommitted changes"
ENV = ("env", {"choices": ENVIRONMENTS})
FULL = (
    "--full",
    {
        "action": "store_true",
        "variable": "FULL",
        "help": "a sandbox: the whole project, not what the branch changes",
    },
)
FORCE = (
    "--force",
    {"action": "store_true", "variable": "FORCE", "help": f"PROD: {FORCE_HELP}"},
)
UV = (
    "--uv",
    {"default": "uv", "variable": "UV", "help": "the uv to install with (default: uv on PATH)"},
)
PORT = (
    "--port",
    {"type": _port, "default": 8080, "variable": "PORT", "help": "where the UI listens (8080)"},
)
# The commands that ask a running airflow-local (no bucket configured) find it here.
AIRFLOW_LOCAL_PORT = PORT[:1] + (PORT[1] | {"help": "airflow-local's port (8080)"},)

LAST = ("--last", {"type": _positive, "default": 10, "variable": "N", "help": "how many (10)"})

COMMANDS = {
    "stamp": Command(
        "deploys.stamp",
        "write build/<owner>/ from bucket_contents/, checking every DAG file",
        (ENV, FULL),
    ),
    "plan": Command(
        "deploys.plan", "stamp, then show what a deploy would change; changes nothing", (ENV, FULL)
    ),
    "deploy": Command(
        "deploys.deploy",
        "stamp, then upload new and changed files and delete stale ones",
        (ENV, FORCE, FULL),
    ),
    "clean": Command(
        "deploys.clean",
        "delete every file of the branch's sandbox (of DEV on the default branch) in the bucket",
        (("env", {"choices": ["DEV"]}), AIRFLOW_LOCAL_PORT),
    ),
    "history": Command(
        "deploys.show_history",
        "list the last deploys of DEV (on a story branch, its sandbox) or PROD",
        (
            ENV,
            LAST,
        ),
    ),
    "rollback": Command(
        "deploys.rollback",
        "put back the exact files of an earlier deploy (default: the one before the last)",
        (
            ENV,
            ("--to", {"variable": "TO", "help": "the ID of the deploy, as the history shows it"}),
            FORCE,
        ),
    ),
    "sandboxes": Command(
        "deploys.list_sandboxes",
        "list the story branches' sandboxes in the bucket: files, last deploy, stale ones",
    ),
    "clean-runs": Command(
        "airflow_cleanup.clean_runs",
        "delete DEV's and the sandboxes' runs older than dev_run_retention_days from Airflow",
        (AIRFLOW_LOCAL_PORT,),
    ),
    "adopt": Command(
        "adopt.adopt",
        "turn existing DAG files into the convention, in place; say what is left by hand",
        (
            (
                "--files",
                {"variable": "FILES", "help": "the DAG files (default: every one in dags/)"},
            ),
        ),
    ),
    "retire-unprefixed": Command(
        "adopt.retire_unprefixed",
        "list the bucket's old un-prefixed copies of adopted DAG files; --delete deletes them",
        (
            (
                "--delete",
                {"action": "store_true", "variable": "DELETE", "help": "delete them"},
            ),
            FORCE,
        ),
    ),
    "check-requirements": Command(
        "environment.check_requirements",
        "check requirements.txt, startup.sh and plugins/ for MWAA",
    ),
    "check-startup": Command(
        "environment.check_startup",
        "check startup.sh as MWAA runs it; say what it leaves set",
    ),
    "pack-wheels": Command(
        "environment.pack_wheels",
        "check, then pack MWAA's wheels of requirements.txt into build/offline/plugins.zip,"
        " with the requirements.txt that installs them with no index",
    ),
    "install": Command(
        "environment.install",
        "install a dependency group into this venv with MWAA's pins",
        (("--group", {"choices": ["deploy", "dev"], "required": True}), UV),
    ),
    "lock": Command(
        "environment.lock",
        "resolve the tools MWAA does not run afresh and write tools.lock",
        (UV,),
    ),
    "check-pins": Command(
        "environment.check_pins", "compare the packages of this venv with MWAA's pins"
    ),
    "upgrade-check": Command(
        "environment.upgrade_check",
        "check an upgrade to another Airflow version on MWAA; one report, exit 1 if blocked",
        (
            ("to", {"nargs": "?", "variable": "TO", "help": "the Airflow version, such as 3.3.1"}),
            UV,
            (
                "--venv",
                {
                    "variable": "UPGRADE_VENV",
                    "help": "the scratch venv for the target (default .venv-airflow-TO)",
                },
            ),
        ),
    ),
    "deploy-requirements": Command(
        "environment.deploy_requirements",
        "check, upload the changed instance-wide files and update the MWAA environment",
        (FORCE,),
    ),
    "history-requirements": Command(
        "requirements_history.history_requirements",
        "list the last runs of deploy-requirements: their files, how each update ended",
        (LAST,),
    ),
    "rollback-requirements": Command(
        "requirements_history.rollback_requirements",
        "point the environment back at an earlier run's instance-wide files (default: the"
        " run before the last)",
        (("--to", {"variable": "TO", "help": "the ID of the run, as the history shows it"}), FORCE),
    ),
    "airflow-local": Command(
        "environment.airflow_local",
        "run Airflow on the local bucket's dags/, DEV and PROD, until Ctrl-C",
        (
            PORT,
            (
                "--mwaa-local",
                {
                    "action": "store_true",
                    "variable": "MWAA_LOCAL",
                    "help": "read what mwaa-local copies from the S3 bucket instead",
                },
            ),
        ),
    ),
    "airflow-roles": Command(
        "roles.airflow_roles",
        "create the developer and PROD operator roles on MWAA (or airflow-local), or complete them",
        (AIRFLOW_LOCAL_PORT,),
    ),
    "s3-local": Command(
        "environment.s3_local",
        "run an S3 endpoint here with the project's bucket, to try S3 deploys, until Ctrl-C",
        (("--port", PORT[1] | {"default": 4566, "help": "where it listens (4566)"}),),
    ),
    "mwaa-local": Command(
        "environment.mwaa_local",
        "run MWAA's API here in front of airflow-local, to try the parse gate, until Ctrl-C",
        (
            ("--port", PORT[1] | {"default": 4567, "help": "where it listens (4567)"}),
            (
                "--airflow-port",
                PORT[1] | {"variable": "AIRFLOW_PORT", "help": "airflow-local's port (8080)"},
            ),
        ),
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Run the command `argv` names (by default, this process's); return its exit status."""
    try:
        command, arguments = parse(argv)
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
            subparser.add_argument(argument, **_without_variable(options))
    arguments = vars(parser.parse_args(argv))
    command = COMMANDS[arguments.pop("command")]
    for argument, options in command.arguments:
        name = argument.lstrip("-").replace("-", "_")
        if "variable" in options and arguments[name] is None:
            arguments[name] = _from_variable(options)
    return function(command.run), arguments


def function(name: str) -> Callable[..., int]:
    """The function of commands/ that `name` ("module.function") names."""
    module, _, attribute = name.partition(".")
    return getattr(importlib.import_module(f"mwaa_deploy.commands.{module}"), attribute)


def _without_variable(options: dict[str, Any]) -> dict[str, Any]:
    """add_argument's options; where a variable may give the value, None for not given on
    the command line, so that the variable is read only then, and only for this command."""
    if "variable" not in options:
        return options
    given = {k: v for k, v in options.items() if k != "variable"}
    return given | {"default": None, "help": f"{options['help']} (make: {options['variable']}=)"}


def _from_variable(options: dict[str, Any]) -> Any:
    """The option's value as its variable gives it, or its default without the variable."""
    variable = options["variable"]
    text = config.variable(variable)
    if options.get("action") == "store_true":
        return _switch(variable, text or "")
    if text is None or (not text and "type" in options):  # N= and PORT=: as if not given
        return options.get("default")
    try:
        return options.get("type", str)(text)
    except argparse.ArgumentTypeError as error:
        raise ConfigError(f"{variable}={error}") from None


if __name__ == "__main__":
    # Reference counting frees what a command lets go of. The cycle collector would only
    # walk the AWS SDK's many objects, over and over while they load and once more at
    # exit, finding nothing to free.
    gc.disable()
    status = main()
    gc.freeze()
    sys.exit(status)
