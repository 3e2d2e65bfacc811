"""Deploys one MWAA environment shared by DEV and PROD: stamp, sync, history, instance-wide files.

A command passes down through the layers, one folder each; a layer imports only those
below it (each folder's __init__.py lists its modules):

commands/   one function a command, and who it is for: DEV, a sandbox, or PROD
local/      the stand-ins on this machine (airflow-local, s3-local, mwaa-local), .venv
instance/   the live MWAA environment: its API, parse gate, pools, roles, instance-wide files
            and their history, cleanup
adopt/      existing DAG files made to the convention (make adopt), old keys retired
bucket/     where a deploy writes: the local folder or S3, locks, sync, history
stamping/   bucket_contents/ stamped into one owner's build; a sandbox's part of it

and beside them, for every layer:

__main__.py     the command line, `python -m mwaa_deploy COMMAND`, behind the Makefile
checkout.py     what git says of the project, read once a command and passed down
config.py       the settings: pyproject.toml [tool.mwaa_deploy], environment overrides
settings_rules.py  each setting's kind and bounds, and the checks of what pyproject.toml gives
owners.py       who owns which keys: DEV, PROD, a story branch's sandbox SBX_<name>
file_state.py   a file known by its size, times and inode, so that an unchanged one is not read
exceptions.py   DeployError, the base of every error a user can fix, and the others
"""
