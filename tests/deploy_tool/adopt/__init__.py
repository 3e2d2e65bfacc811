"""Tests of mwaa_deploy/adopt/ and make adopt."""
