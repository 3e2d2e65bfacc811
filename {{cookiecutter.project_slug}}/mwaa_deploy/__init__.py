"""Deploys one MWAA environment shared by DEV and PROD: stamp, sync, instance-wide files.

One concern a module:

__main__.py          the command line, `python -m mwaa_deploy COMMAND`, behind the Makefile
commands.py          one function a command: stamp, plan, deploy, clean, check-requirements,
                     deploy-requirements, airflow-local, s3-local
config.py            the settings: pyproject.toml [tool.mwaa_deploy], environment overrides
stamp.py             bucket_contents/ made into one environment's build (DEV_x.py, PROD_x.py)
sync.py              plan and apply a deploy: an environment's keys made equal to its build
buckets.py           where a deploy writes: S3, or the local folder laid out like it
prod_path.py         PROD changes only from a clean checkout of the default branch
instance_files.py    requirements.txt, plugins.zip and startup.sh, checked for MWAA
mwaa_environment.py  the MWAA environment: what it runs, and updating it to new files
airflow_local.py     airflow-local: this project's Airflow on the local bucket
s3_local.py          s3-local: an S3 endpoint on this machine, to try the S3 deploys
exceptions.py        DeployError, the base of every error a user can fix, and the others
"""
