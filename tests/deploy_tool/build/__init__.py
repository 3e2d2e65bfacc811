"""Tests of mwaa_deploy/build/."""
