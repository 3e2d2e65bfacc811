"""Tests of mwaa_deploy/commands/."""
