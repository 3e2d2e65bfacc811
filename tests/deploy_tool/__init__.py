"""The deploy package's own tests: `mwaa_deploy` of a bake of the template's defaults.

The package lives in the baked repository, where its users run it; its tests live here,
so that every user's pull request checks the user's DAGs and not this tool. Importing
this package bakes the defaults once and puts the baked project first on `sys.path`.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

from tests.helpers import bake

_SCRATCH = Path(tempfile.mkdtemp(prefix="deploy-tool-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
BAKED = bake(_SCRATCH)
sys.path.insert(0, str(BAKED))
