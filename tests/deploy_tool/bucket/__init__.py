"""Tests of mwaa_deploy/bucket/."""
