"""bucket_contents/ made into one owner's build, checked; nothing here touches a bucket.

build.py             one owner's build: each file's source key, stamped when first asked for
stamp.py             one file stamped for an owner (DEV_x.py, PROD_x.py) and checked; the tree
stamp_cache.py       stamped files kept by what decides them, and the source index: a build
                     reads and stamps only what changed
sources.py           a source of dags/ as written: the one DEV = True flag, no DAG in a helper
run_time_rules.py    what a source could do once it runs to undo its stamp, refused
selection.py         a sandbox's part of the project: what its branch changed, and what that needs
"""
