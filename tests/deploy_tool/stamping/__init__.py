"""Tests of mwaa_deploy/stamping/."""
