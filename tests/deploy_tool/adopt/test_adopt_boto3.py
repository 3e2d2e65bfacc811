"""make adopt on boto3 called directly (DESIGN: Adopting existing DAGs; isolation): inside a
function, where it runs as a task runs, it becomes the Amazon provider's hook on the
environment's AWS connection; what the hook cannot carry, or a call made whenever the file
is parsed, is left and named `file:line: what to do`."""

from __future__ import annotations

from mwaa_deploy.adopt.codemod import adopt_source

HEADER = '''"""Tables."""

from __future__ import annotations

import boto3
from boto3 import client as make_client
from airflow.sdk import DAG, task
'''
HOOK_IMPORT = "from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook\n"
HOOK = "AwsBaseHook(aws_conn_id=aws_conn_id(dev_prod_flag), "


def test_boto3_called_in_a_task_becomes_the_hook_on_the_environments_connection() -> None:
    text = HEADER + (
        "\n"
        "@task\n"
        "def create(table):\n"
        '    boto3.client("dynamodb").create_table(TableName=table)  # the table\n'
        '    boto3.resource("dynamodb", region_name="eu-west-1").Table(table).load()\n'
        "    client = make_client(\n"
        '        service_name="s3",\n'
        "        config=CONFIG,\n"
        "    )\n"
        "    return boto3.session.Session().region_name\n"
        "\n"
        'with DAG("tables", schedule=None, tags=["x"]):\n'
        '    create("orders")\n'
    )
    result = adopt_source("dags/x.py", text)
    assert result.report == []
    new = result.text
    boto3_imports = "import boto3\nfrom boto3 import client as make_client\n"
    assert HEADER.replace(boto3_imports, "") + HOOK_IMPORT + "from common.conventions" in new
    for line in (
        f'    {HOOK}client_type="dynamodb").get_conn().create_table(TableName=table)'
        "  # the table\n",
        f'    {HOOK}resource_type="dynamodb", region_name="eu-west-1").get_conn().Table(table)',
        "    client = AwsBaseHook(\n"
        "        aws_conn_id=aws_conn_id(dev_prod_flag),\n"
        '        client_type="s3",\n'
        "        config=CONFIG,\n"
        "    ).get_conn()\n",
        f"    return {HOOK[:-2]}).get_session().region_name\n",
    ):
        assert line in new, new
    compile(new, "x.py", "exec")
    assert adopt_source("dags/x.py", new).text == new


def test_the_hook_the_file_imports_already_is_used_and_not_imported_twice() -> None:
    text = HEADER + HOOK_IMPORT + '\ndef clean():\n    boto3.client("logs").delete_log_group()\n'
    new = adopt_source("dags/x.py", text).text
    assert new.count(HOOK_IMPORT) == 1
    assert f'{HOOK}client_type="logs").get_conn()' in new


def test_a_boto3_call_the_hook_cannot_carry_or_made_at_parse_time_is_left_and_named() -> None:
    text = HEADER + (
        "REGION = boto3.session.Session().region_name\n"
        "\n"
        "def clean(aws_conn_id):\n"
        '    boto3.client("logs").delete_log_group()\n'
        "\n"
        "def load():\n"
        '    boto3.client("s3", endpoint_url=URL).list_buckets()\n'
    )
    result = adopt_source("dags/x.py", text)
    use = f'use {HOOK}client_type="'
    assert result.report == [
        "dags/x.py:8: boto3.session.Session() runs as the MWAA execution role, whenever the"
        " file is parsed: move it into a task, then use"
        " AwsBaseHook(aws_conn_id=aws_conn_id(dev_prod_flag)).get_session()",
        "dags/x.py:11: boto3.client() runs as the MWAA execution role, and 'aws_conn_id' is a"
        f' local name here: rename it, then {use}logs").get_conn()',
        "dags/x.py:14: boto3.client() runs as the MWAA execution role, and AwsBaseHook cannot"
        " take its endpoint_url: set that in the environment's AWS connection, then"
        f' {use}s3").get_conn()',
    ]
    assert "boto3.client(" in result.text and HOOK_IMPORT not in result.text


def test_an_import_of_boto3_left_unused_by_the_rewrite_is_removed() -> None:
    task = '\n@task\ndef load():\n    return {}.list_buckets()\n\nwith DAG("t", schedule=None):\n'
    task += "    load()\n"
    only = adopt_source(
        "x.py",
        "import boto3\nfrom airflow.sdk import DAG, task\n" + task.format('boto3.client("s3")'),
    )
    assert "import boto3" not in only.text and HOOK in only.text
    renamed = adopt_source(
        "x.py",
        "from boto3 import client\nfrom airflow.sdk import DAG, task\n"
        + task.format('client("s3")'),
    )
    assert "from boto3" not in renamed.text and HOOK in renamed.text
    still_used = adopt_source(
        "x.py",
        "import boto3\nfrom airflow.sdk import DAG, task\n"
        + task.format('boto3.client("s3")')
        + "\nSESSION = boto3.DEFAULT_SESSION\n",
    )
    assert "import boto3\n" in still_used.text
