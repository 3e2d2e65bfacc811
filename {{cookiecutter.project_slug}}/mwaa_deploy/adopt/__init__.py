"""make adopt: existing DAG files turned into the convention by a codemod on their concrete
syntax tree (libcst), comments and layout kept; and make retire-unprefixed, the old
un-prefixed copies they replace removed from the bucket. Both commands: commands/adopt.py.

files.py      which files, read as the stamp reads them, formatted once adopted
codemod.py    one file adopted: parsed, transformed, checked to compile
edits.py      one file's edits, applied once; the names they use
module.py     the top level: the flag, dev_prod_flag and the imports, in the right place
dags.py       DAG ids and cross-DAG references; task ids left as written
resources.py  assets, object storage paths, connection ids
signatures.py  the connections a provider's class takes, read off its source
default_args.py  the connection parameters each call's DAG gives in its default_args
boto3_calls.py  boto3 called in task code, made the Amazon hook on the environment's connection
values.py     a string made its environment's where it is written (or in its constant)
strings.py    the strings themselves: ids, data paths, connection ids
settings.py   a convention turned off in pyproject.toml
retire.py     make retire-unprefixed
"""
