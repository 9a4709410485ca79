"""Lets the operator tests import their helpers (kube_emulator, opharness, kubelet)."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
