"""Deploys one MWAA environment shared by DEV and PROD: stamp, sync, history, instance-wide files.

One concern a module:

__main__.py          the command line, `python -m mwaa_deploy COMMAND`, behind the Makefile
commands.py          one function a DAG command: stamp, plan, deploy, history, rollback, clean, ...
environment_commands.py  the others: instance-wide files, this venv's packages, local stand-ins
config.py            the settings: pyproject.toml [tool.mwaa_deploy], environment overrides
owners.py            who owns which keys: DEV, PROD, a story branch's sandbox SBX_<name>
sandboxes.py         which owner a DEV command is for, and what of the project a sandbox holds
stamp.py             bucket_contents/ made into one owner's build (DEV_x.py, PROD_x.py)
stamp_cache.py       stamped files kept by what decides them: a stamp redoes only what changed
sources.py           a source of dags/ as written: the one DEV = True flag, no DAG in a helper
run_time_rules.py    what a source could do once it runs to undo its stamp, refused
sync.py              plan and apply a deploy or a rollback: an owner's keys made equal to a build
uploads.py           a deploy's uploads, concurrent, stopped at the first failure or Ctrl-C
claims.py            whose a sandbox is: the branch its first deploy was for
history.py           each deploy's record: its files' versions, where it came from; rollbacks
buckets.py           where a deploy writes: what every bucket offers
local_bucket.py      the local folder laid out like the bucket, versions kept
s3_bucket.py         the S3 bucket, through the AWS SDK, each failure one line
s3_lock.py           one deploy of an owner at a time in S3: the lock, its lease, its renewal
parse_gate.py        after a deploy to S3: wait for MWAA to parse it, fail on its import errors
policy_check.py      the parse gate's read-back: the cluster policy in force on MWAA, or not
pools.py             DEV's share of the workers: its pool, set on MWAA and on airflow-local
policy.py            the cluster policy's settings, and plugins/ as every Airflow here loads it
prod_path.py         PROD changes only from a clean checkout of the default branch
instance_files.py    requirements.txt, plugins.zip and startup.sh, checked for MWAA
pip_requirements.py  a requirements file as pip reads it and resolves it for MWAA
startup.py           startup.sh run as MWAA runs it, and what it leaves set
mwaa_constraints.py  MWAA's own pins per Airflow version: the project's copies, downloaded or given
local_venv.py        .venv built with MWAA's pins, and compared with them
tools_lock.py        tools.lock: the exact versions of the tools MWAA does not run
upgrade_check.py     upgrade-check: what stands between this project and another Airflow
live_instance.py     the MWAA environment's Airflow, asked through MWAA within the deploy's bound
mwaa_environment.py  the MWAA environment: what it runs, and updating it to new files
airflow_local.py     airflow-local: this project's Airflow on the local bucket
airflow_api.py       a running Airflow's REST API, asked directly as its admin
s3_local.py          s3-local: an S3 endpoint on this machine, to try the S3 deploys
mwaa_local.py        mwaa-local: MWAA's API on this machine, in front of airflow-local
mwaa_local_env.py    mwaa-local's one environment: what it runs, the updates it takes
exceptions.py        DeployError, the base of every error a user can fix, and the others
"""
