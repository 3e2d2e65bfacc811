"""Where a deploy writes, and how an owner's keys are made equal to its build.

buckets.py           what every bucket offers
local_bucket.py      the local folder laid out like the bucket, versions kept
s3_bucket.py         the S3 bucket, through the AWS SDK, each failure one line
s3_lock.py           one deploy of an owner at a time in S3: the lock, its lease, its renewal
sync.py              plan and apply a deploy or a rollback: an owner's keys made equal to a build
plans.py             what an owner's keys should hold, and what a deploy of them would do
uploads.py           a deploy's uploads, concurrent, stopped at the first failure or Ctrl-C
claims.py            whose a sandbox is: the branch its first deploy was for
history.py           each deploy's record: its files' versions, where it came from; rollbacks
"""
