"""make adopt adds the environment's connection to a call that names none, unless the call's
own DAG gives it in default_args: per DAG, never one DAG's default_args for another's."""

from __future__ import annotations

from mwaa_deploy.adopt.codemod import adopt_source
from tests.deploy_tool.adopt.test_adopt import site_packages

HEADER = """from airflow.sdk import DAG, dag, task
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator

ARGS = {"aws_conn_id": "aws_default"}
"""
ADDED = "aws_conn_id=aws_conn_id(dev_prod_flag)"


def lines_of(text: str) -> dict[str, str]:
    """task id -> the line of the call that makes it."""
    adopted = adopt_source("x.py", HEADER + text, site_packages())
    assert adopted.report == []
    return {
        line.split('task_id="')[1].split('"')[0]: line
        for line in adopted.text.splitlines()
        if 'task_id="' in line
    }


def test_a_dags_default_args_stand_only_for_the_calls_in_that_dag() -> None:
    found = lines_of(
        'with DAG("given", schedule=None, default_args={"aws_conn_id": "aws_default"}):\n'
        '    S3CreateBucketOperator(task_id="in_given", bucket_name="b")\n'
        'with DAG("not_given", schedule=None):\n'
        '    S3CreateBucketOperator(task_id="in_not_given", bucket_name="b")\n'
    )
    assert ADDED not in found["in_given"]
    assert ADDED in found["in_not_given"]


def test_a_dag_named_by_dag_or_declared_by_at_dag_is_the_calls_dag() -> None:
    found = lines_of(
        'old = DAG("old", schedule=None, default_args=ARGS)\n'
        'other = DAG("other", schedule=None)\n'
        'S3CreateBucketOperator(task_id="in_old", bucket_name="b", dag=old)\n'
        'S3CreateBucketOperator(task_id="in_other", bucket_name="b", dag=other)\n'
        "\n"
        "@dag(schedule=None, default_args=ARGS)\n"
        "def decorated():\n"
        '    S3CreateBucketOperator(task_id="in_decorated", bucket_name="b")\n'
        "\n"
        "@dag(schedule=None)\n"
        "def plain():\n"
        '    S3CreateBucketOperator(task_id="in_plain", bucket_name="b")\n'
    )
    assert ADDED not in found["in_old"] and ADDED not in found["in_decorated"]
    assert ADDED in found["in_other"] and ADDED in found["in_plain"]


def test_a_hook_gets_the_connection_whatever_default_args_its_dag_gives() -> None:
    """default_args reach tasks, never a hook their code builds."""
    text = HEADER + (
        "with DAG('given', schedule=None, default_args=ARGS):\n"
        "    @task\n"
        "    def read():\n"
        '        return S3Hook().list_keys("b")\n'
    )
    assert f"S3Hook({ADDED})" in adopt_source("x.py", text, site_packages()).text


def test_a_call_whose_dag_cannot_be_told_is_left_and_named_where_some_dag_gives_it() -> None:
    """A factory's operator may be given a DAG whose default_args carry its connection, or
    one whose do not: make adopt adds none and says where to look."""
    text = HEADER + (
        "def make(parent):\n"
        '    return S3CreateBucketOperator(task_id="made", bucket_name="b", dag=parent)\n'
        'with DAG("given", schedule=None, default_args=ARGS):\n'
        "    pass\n"
    )
    adopted = adopt_source("x.py", text, site_packages())
    assert ADDED not in adopted.text
    assert adopted.report == [
        "x.py:7: S3CreateBucketOperator names no aws_conn_id, and its DAG is made where make"
        " adopt cannot tell (a factory?): give the environment's in that DAG's default_args"
    ]
