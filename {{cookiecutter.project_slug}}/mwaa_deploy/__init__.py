"""Deploys one MWAA environment shared by DEV and PROD: stamp, sync, instance-wide files.

One concern a module:

__main__.py          the command line, `python -m mwaa_deploy COMMAND`, behind the Makefile
commands.py          one function a command: stamp, plan, deploy, clean, check-requirements,
                     deploy-requirements, airflow-local, s3-local, mwaa-local
config.py            the settings: pyproject.toml [tool.mwaa_deploy], environment overrides
stamp.py             bucket_contents/ made into one environment's build (DEV_x.py, PROD_x.py)
sync.py              plan and apply a deploy: an environment's keys made equal to its build
buckets.py           where a deploy writes: S3, or the local folder laid out like it
parse_gate.py        after a deploy to S3: wait for MWAA to parse it, fail on its import errors
pools.py             DEV's share of the workers: its pool, set on MWAA and on airflow-local
prod_path.py         PROD changes only from a clean checkout of the default branch
instance_files.py    requirements.txt, plugins.zip and startup.sh, checked for MWAA
mwaa_environment.py  the MWAA environment: what it runs, and updating it to new files
airflow_local.py     airflow-local: this project's Airflow on the local bucket
s3_local.py          s3-local: an S3 endpoint on this machine, to try the S3 deploys
mwaa_local.py        mwaa-local: MWAA's API on this machine, in front of airflow-local
exceptions.py        DeployError, the base of every error a user can fix, and the others
"""
