"""Tests of mwaa_deploy/local/."""
