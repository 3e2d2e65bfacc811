"""Tests of mwaa_deploy/instance/."""
