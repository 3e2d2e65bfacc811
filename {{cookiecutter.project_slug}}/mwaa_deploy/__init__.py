"""Deploys one MWAA environment shared by DEV and PROD: stamp, sync, instance-wide files."""
