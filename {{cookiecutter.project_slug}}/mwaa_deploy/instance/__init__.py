"""The live MWAA environment, and the files that are the whole instance's.

live_instance.py     the environment's Airflow, asked through MWAA within the deploy's bound
parse_gate.py        after a deploy to S3: wait for MWAA to parse it, fail on its import errors
dag_sources.py       whether a parse Airflow reports was of the deployed bytes or the previous ones
metadata_cleanup.py  a removed sandbox's DAGs, and DEV's old runs, deleted from Airflow
pools.py             DEV's share of the workers: its pool, set on MWAA and on airflow-local
roles.py             the project's developer and PROD operator roles, created or completed
policy.py            the cluster policy's settings, and plugins/ as every Airflow here loads it
policy_check.py      the parse gate's read-back: each task's pool and priority as its owner needs
mwaa_environment.py  the environment: what it runs, and updating it to new files
instance_files.py    requirements.txt, plugins.zip and startup.sh, checked for MWAA
instance_history.py  each deploy-requirements recorded: the versions it ran, how the update ended
record_shape.py      a record of that history checked whole: its types, instance-wide files only
pip_requirements.py  a requirements file as pip reads it and resolves it for MWAA
resolved_requirements.py  pip's recent passes, remembered so an unchanged file is not resolved again
sdist_pins.py        MWAA's pins published as an sdist alone, built into a pure wheel
wheels.py            requirements.txt's wheels in plugins.zip, for MWAA with no index
startup.py           startup.sh run as MWAA runs it, and what it leaves set
mwaa_constraints.py  MWAA's own pins per Airflow version: the project's copies, downloaded or given
"""
