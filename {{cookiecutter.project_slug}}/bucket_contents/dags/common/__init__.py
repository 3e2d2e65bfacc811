"""Helper code shared by the DAG files.

The deploy stamps this package once per environment (dags/DEV_common/, dags/PROD_common/)
and points each DAG file's imports at its own copy, so a DEV deploy never changes code
that PROD runs. Import it with absolute imports: `from common.conventions import ...`.
"""
