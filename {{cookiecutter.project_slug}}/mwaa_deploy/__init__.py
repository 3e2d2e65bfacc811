"""Deploys one MWAA environment shared by DEV and PROD: stamp, sync, instance-wide files."""


class DeployError(Exception):
    """Something the person running the command can fix; the message says what and how."""
