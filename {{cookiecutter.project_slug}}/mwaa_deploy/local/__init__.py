"""What runs on this machine: the local stand-ins, and the venv built as MWAA's.

airflow_local.py     airflow-local: this project's Airflow on the local bucket
airflow_db.py        airflow-local's database, kept from one start to the next
fab_standalone.py    airflow standalone with the project's roles; on Airflow 3 with FAB, as MWAA
airflow_settings.py  airflow_settings.yaml: each environment's local connections, variables
local_roles.py       the project's Airflow roles on airflow-local, as on MWAA
airflow_api.py       a running Airflow's REST API, asked directly as its admin
s3_local.py          s3-local: an S3 endpoint on this machine, to try the S3 deploys
mwaa_local.py        mwaa-local: MWAA's API on this machine, in front of airflow-local
mwaa_local_env.py    mwaa-local's one environment: what it runs, the updates it takes
local_venv.py        .venv built with MWAA's pins, and compared with them
find_python.py       MWAA's Python, wherever pyenv, uv or PATH keep it: .venv's alone
tools_lock.py        tools.lock: the exact versions of the tools MWAA does not run
upgrade_check.py     upgrade-check: what stands between this project and another Airflow
"""
