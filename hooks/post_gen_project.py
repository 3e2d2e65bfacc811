"""Print the next steps. Nothing else: `cruft update` runs this hook again in a scratch folder."""

import json
import os
import shlex

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# cookiecutter runs this hook inside the new project, but the steps are read in the shell
# that ran cookiecutter (or make demo), whose folder its PWD still names: the project's path
# from there, or from / where it is not below it.
here = os.environ.get("PWD") or "/"
where = os.path.relpath(os.getcwd(), here)
where = os.getcwd() if where.startswith("..") else where

if ANSWERS["s3_bucket"]:
    deploys = f"""  S3_BUCKET= make deploy-dev deploy-prod
                                 stamp DEV_ and PROD_ copies of every DAG into ./local_bucket,
                                 a folder laid out like s3://{ANSWERS["s3_bucket"]} (no AWS needed)
  make s3-local                  then try the S3 deploys on an S3 endpoint on this machine
  make deploy-dev                and, with AWS credentials, deploy DEV to s3://{ANSWERS["s3_bucket"]}"""
else:
    deploys = """  make deploy-dev deploy-prod    stamp DEV_ and PROD_ copies of every DAG into
                                 ./local_bucket, a folder laid out like the bucket MWAA reads"""
print(
    f"""
Baked {ANSWERS["project_slug"]}: one MWAA environment, DEV and PROD side by side.

Next:
  cd {shlex.quote(where)}
  git init -b {ANSWERS["default_branch"]} && git add . && git commit -m "Bake from mwaa-single-env"
{deploys}
  make install test              Airflow {ANSWERS["airflow_version"]} in .venv, with MWAA's pins,
                                 then the DAG checks
  make airflow-local             that Airflow on this machine, DEV and PROD side by side
  make                           every target, one line each

README.md explains the DEV = True convention and the daily workflow; docs/ the rest.
"""
)
