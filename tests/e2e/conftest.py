"""Lets the e2e tests import the harness (cluster, kubelet, stack…) and the emulator."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _dir in (str(HERE), str(HERE.parent / "operator")):
    if _dir not in sys.path:
        sys.path.insert(0, _dir)
