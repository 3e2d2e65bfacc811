"""The commands behind the Makefile (__main__.py parses their arguments):

deploys.py       the DAG commands: stamp, plan, deploy, history, rollback, clean, sandboxes
environment.py   the others: instance-wide files, this venv's packages, local stand-ins
roles.py         airflow-roles: the project's two Airflow roles on MWAA or airflow-local
sandboxes.py     which owner a DEV command is for, and which sandboxes a bucket holds
branch_state.py  whether a sandbox's branch is merged or gone, as git here sees it
airflow_cleanup.py  a cleaned sandbox's DAGs and DEV's old runs, removed from Airflow
prod_path.py     PROD changes only from a clean checkout of the default branch
requirements_history.py  history-requirements, rollback-requirements: the instance-wide files
"""
