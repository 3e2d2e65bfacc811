"""Every error the deploy raises.

A `DeployError` is something the person running the command can fix: `python -m mwaa_deploy`
prints its message, never a traceback, and exits with its `exit_status`. The message says
what is wrong and what to do, in one line, or, for a `ProblemsError`, one line a problem.
"""

from __future__ import annotations


class DeployError(Exception):
    """Something the person running the command can fix; the message says what and how."""

    exit_status = 1


class ProblemsError(DeployError):
    """Everything wrong with some files, found in one run: one line a problem (`path:line:
    what to do`), then a trailer that says what the command therefore did not do."""

    def __init__(self, problems: list[str], trailer: str = "") -> None:
        # Every argument goes on to Exception, so the error survives the trip from the
        # stamping process (pickling rebuilds an exception from its arguments).
        super().__init__(problems, trailer)
        self.problems = problems
        self.trailer = trailer

    def __str__(self) -> str:
        return "\n".join([*self.problems, self.trailer] if self.trailer else self.problems)


class StampError(ProblemsError):
    """Source files that cannot be stamped. The stamp finds the problems; the command that
    stamped adds the trailer, since only it knows what it did not do."""


class CheckError(ProblemsError):
    """Instance-wide files (requirements.txt, startup.sh) that must not reach the bucket."""

    def __init__(
        self, problems: list[str], trailer: str = "Check failed: nothing was uploaded."
    ) -> None:
        super().__init__(problems, trailer)


class ParseGateError(ProblemsError):
    """The MWAA environment did not import some deployed DAG files (one line each), or
    could not be asked; the trailer says the files are deployed and what to do."""


class ConstraintsError(DeployError):
    """MWAA's constraint files cannot be read or downloaded; the message says what to do."""


class InstallError(DeployError):
    """The venv cannot be built with MWAA's pins; the message names what conflicts."""


class ConfigError(DeployError):
    """A setting is missing, misspelt or of the wrong kind; the message names it."""


class OffProdPath(DeployError):
    """Not on the default branch, or uncommitted changes; the message says which."""


class BucketError(DeployError):
    """The bucket refused or failed a request; the message says which and why.

    `permanent`: the same request fails the same way again (a denied permission, a key
    the bucket cannot hold), so running the deploy again will not help by itself.
    """

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class RecordMoved(DeployError):
    """The owner's record is no longer the one a deploy planned from: another deploy of
    the owner ended between that plan and this deploy's lock."""


class SyncError(DeployError):
    """A deploy stopped part-way; the message says what was and was not done."""


class Interrupted(SyncError):
    """Ctrl-C stopped a deploy; the message says what was and was not done."""

    exit_status = 130  # what a shell reports for a command that SIGINT ended


class SandboxError(DeployError):
    """A sandbox cannot be told or used: a detached HEAD, or its name held by another branch."""


class HistoryError(DeployError):
    """A rollback has no deploy to restore: none recorded, none by that id, or its files gone."""


class UpdateError(DeployError):
    """The MWAA environment could not take the new files; the message says where to look."""


class MwaaError(DeployError):
    """The MWAA environment cannot be asked before a deploy; the message says why, that
    nothing was deployed, and what to do."""


class PoolError(DeployError):
    """DEV's pool could not be created or resized on the instance; the message says why."""


class RolesError(DeployError):
    """The project's Airflow roles could not be created or updated; the message says why."""


class LocalAirflowError(DeployError):
    """Airflow cannot start here; the message says why and what to do."""


class LocalSettingsError(ProblemsError):
    """airflow_settings.yaml breaks the DEV/PROD rules or its own format: one line each."""


class LocalS3Error(DeployError):
    """The local S3 endpoint cannot start here; the message says why and what to do."""


class LocalMwaaError(DeployError):
    """The local MWAA stand-in cannot start here, or its Airflow refused it; the message
    says why and what to do."""


class OwnershipError(AssertionError):
    """A key outside the environment's own prefix was about to be touched.

    Not a DeployError: no setting or file of the user's can cause it, only a bug here, so
    it stops the command with a traceback to report.
    """
