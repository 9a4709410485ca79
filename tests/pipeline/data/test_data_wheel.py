"""The starter files ship in a built wheel (package data), not only in an editable install."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_wheel_contains_starter_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("zhufu", "pipeline", "operator"):
        shutil.copytree(REPO / folder, src / folder, ignore=ignore)
    pip = Path(sys.executable).parent / "pip"
    subprocess.run([str(pip), "wheel", "--no-deps", "--no-build-isolation", "-q", str(src),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("zhufu-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("queries.txt", "greetings.jsonl", "labelled.jsonl", "__init__.py"):
        assert f"zhufu/pipeline/data/starter/{name}" in names
