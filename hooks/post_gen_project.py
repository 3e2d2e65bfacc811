"""Print the next steps. Nothing else: `cruft update` runs this hook again in a scratch folder."""

import json

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

target = (
    f"s3://{ANSWERS['s3_bucket']}" if ANSWERS["s3_bucket"] else "./local_bucket (no S3 bucket yet)"
)
print(
    f"""
Baked {ANSWERS["project_slug"]}: one MWAA environment, DEV and PROD side by side.

Next:
  cd {ANSWERS["project_slug"]}
  git init -b {ANSWERS["default_branch"]} && git add . && git commit -m "Bake from mwaa-single-env"
  make deploy-dev deploy-prod    stamp DEV_ and PROD_ copies of every DAG into {target}
  make install test              Airflow {ANSWERS["airflow_version"]} in .venv, then the DAG checks
  make                           every target, one line each

The README explains the DEV = True convention and the daily workflow.
"""
)
