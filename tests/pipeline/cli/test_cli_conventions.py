"""The ``zhufu`` command's conventions: ``--version``, ``-v`` logging on stderr, stdout
carrying the result only, and the exit codes documented in ``--help``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhufu import __version__
from zhufu.pipeline.cli import app

REPO = Path(__file__).resolve().parents[3]
ZHUFU = Path(sys.executable).parent / "zhufu"


def test_version() -> None:
    out = CliRunner().invoke(app, ["--version"])
    assert out.exit_code == 0
    assert out.stdout == f"zhufu {__version__}\n"


def test_help_documents_the_exit_codes() -> None:
    out = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert out.exit_code == 0
    text = " ".join(out.stdout.split())
    for part in ("Exit status: 0 done", "2 bad input", "one 'error: ...' line on stderr",
                 "1 a bug", "--verbose", "--version"):
        assert part in text, part


_NOISY = r"""
import subprocess, sys
from zhufu.pipeline.cli.common import result_stdout
with result_stdout() as out:
    print("library print")
    sys.stdout.buffer.write(b"buffer write\n"); sys.stdout.flush()
    import os; os.write(1, b"fd write\n")
    subprocess.run(["echo", "child process"], check=True)
print('{"result": 1}', file=out)
print("after the block")
"""


def test_result_stdout_sends_everything_else_to_stderr() -> None:
    """Inside the block Python prints, raw writes to descriptor 1 and child processes all
    reach stderr; the result written to the yielded stream is stdout's only line, and
    stdout is back to normal after the block."""
    proc = subprocess.run([sys.executable, "-P", "-c", _NOISY], capture_output=True,
                          text=True, timeout=60, check=True)
    assert proc.stdout.splitlines() == ['{"result": 1}', "after the block"]
    for noise in ("library print", "buffer write", "fd write", "child process"):
        assert noise in proc.stderr


def test_verbose_logs_curation_progress(zhufu_home: Path, tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    """In process: ``-v`` turns Zhufu's INFO logs on (curation progress), stdout is the
    result JSON alone; without ``-v`` Zhufu logs warnings only."""
    import logging

    args = ["curate", "--config", str(REPO / "examples" / "curate.yaml"), "--set",
            "maxQueries=2", "--set", f"outputDir={tmp_path / 'out'}", "--fresh",
            "--no-progress"]
    with caplog.at_level(logging.NOTSET):
        out = CliRunner().invoke(app, ["-v", *args])
    assert out.exit_code == 0, out.output[-3000:]
    assert json.loads(out.stdout)["stage"] == "curate"
    judged = [r.getMessage() for r in caplog.records if "candidates judged" in r.getMessage()]
    assert judged and re.fullmatch(r"curate: (\d+)/\1 candidates judged", judged[-1])
    assert logging.getLogger("zhufu").getEffectiveLevel() == logging.INFO
    caplog.clear()
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output[-3000:]
    assert logging.getLogger("zhufu").level == logging.NOTSET
    assert not [r for r in caplog.records if r.name.startswith("zhufu") and r.levelno < 30]


@pytest.mark.slow
def test_curate_prints_only_its_result_and_logs_progress_with_v(tmp_path: Path) -> None:
    """Two real ``zhufu curate`` processes (~25 s each): stdout is exactly one JSON object
    (the StageResult); with ``-v`` the curation progress is logged on stderr, without it
    not."""
    env = {**os.environ, "ZHUFU_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)

    def curate(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ZHUFU), *flags, "curate", "--config", str(REPO / "examples" / "curate.yaml"),
             "--set", "maxQueries=2", "--set", f"outputDir={tmp_path / 'out'}", "--fresh"],
            capture_output=True, text=True, timeout=300, cwd=REPO, env=env)

    loud = curate("-v")
    assert loud.returncode == 0, loud.stderr[-3000:]
    result = json.loads(loud.stdout)  # the whole of stdout is one JSON document
    assert result["stage"] == "curate" and result["outputs"]["pairs"]
    assert "INFO zhufu.pipeline.curation.stage: curate: " in loud.stderr
    assert "candidates judged" in loud.stderr
    quiet = curate()
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    json.loads(quiet.stdout)
    assert "candidates judged" not in quiet.stderr
