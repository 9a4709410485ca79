"""The ``zhufu`` command's one error rule: a ZhufuError is one line and exit 2; anything
else is a bug that keeps its traceback and exits 1. Also: every group registered once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhufu.pipeline.cli import GROUPS, app
from zhufu.pipeline.errors import (
    ConfigError,
    DataError,
    LLMError,
    ModelSpecError,
    StorageError,
    TrackingError,
    ZhufuError,
)
from zhufu.pipeline.results import RESULT_FILE_ENV, StageResult


def test_the_hierarchy_keeps_the_builtin_bases() -> None:
    """Old ``except ValueError/OSError/RuntimeError`` clauses still catch the new classes."""
    for cls, base in ((ConfigError, ValueError), (DataError, ValueError),
                      (ModelSpecError, ValueError), (StorageError, OSError),
                      (TrackingError, RuntimeError), (LLMError, RuntimeError)):
        assert issubclass(cls, ZhufuError) and issubclass(cls, base), cls
    from zhufu.pipeline.curation.journal import JournalError
    from zhufu.pipeline.curation.retrieval import RetrievalUnavailable
    from zhufu.pipeline.data.storage import ObjectNotFound
    from zhufu.pipeline.evaluation.agreement import ScorerSpecError
    from zhufu.pipeline.judge import JudgeSpecError
    from zhufu.pipeline.models.tokenizer import TokenizerSourceError

    for cls in (JournalError, RetrievalUnavailable, ObjectNotFound, ScorerSpecError,
                JudgeSpecError, TokenizerSourceError):
        assert issubclass(cls, ZhufuError), cls


def test_every_group_and_command_is_registered_once() -> None:
    import typer.main

    root = typer.main.get_command(app)
    names = list(root.commands)  # type: ignore[attr-defined]
    assert len(names) == len(set(names))
    assert {n for n, _ in GROUPS if n} <= set(names)
    assert {"run", "sft", "curate", "train-rm", "grpo", "ui"} <= set(names)
    judge = root.commands["judge"].commands  # type: ignore[attr-defined]
    assert {"score", "train", "ablation"} <= set(judge)


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = tmp_path / "nope.jsonl"
    out = runner.invoke(app, ["eval", "agreement", "--data", str(missing)])
    assert out.exit_code == 2, out.output
    assert out.output.strip() == f"error: {missing}: file not found"
    out = runner.invoke(app, ["run", "--reward", "both"])
    assert out.exit_code == 2 and "expected judge, rm or mix, got 'both'" in out.output


_BUG = """
import sys
import zhufu.pipeline.evaluation.agreement as agreement

def broken(*args, **kwargs):
    raise ValueError("a bug, not bad input")

agreement.agreement = broken
from zhufu.pipeline.cli import main

sys.argv = ["zhufu", "eval", "agreement", "--data", "whatever.jsonl"]
main()
"""


def test_a_bug_keeps_its_traceback_and_exits_1(tmp_path: Path) -> None:
    """A ValueError from library code is not bad input: traceback, exit 1 (it used to be
    one line and exit 2, hiding the bug)."""
    proc = subprocess.run([sys.executable, "-P", "-c", _BUG], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120, env={**os.environ, "ZHUFU_HOME":
                                                          str(tmp_path / "home")})
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.rstrip().endswith("ValueError: a bug, not bad input")


def test_judge_train_writes_its_result_file(zhufu_home: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``zhufu judge train`` leaves its StageResult where the operator reads it (a
    JudgeTraining pod's termination message); before, it wrote nothing."""
    import mlflow

    result_file = tmp_path / "termination-log"
    monkeypatch.setenv(RESULT_FILE_ENV, str(result_file))
    out = CliRunner().invoke(app, [
        "judge", "train", "--set", "rounds=1", "--set", "register_as=zhufu-judge-cli",
        "--set", "experiment=judge-cli", "--set", f"output_dir={tmp_path / 'out'}"])
    assert out.exit_code == 0, out.output
    printed = StageResult.from_json(out.output.strip().splitlines()[-1])
    written = StageResult.from_json(result_file.read_text(encoding="utf-8"))
    assert written == printed and written.stage == "judge-train"
    version = written.registered["zhufu-judge-cli"]
    mv = mlflow.MlflowClient().get_model_version("zhufu-judge-cli", version)
    assert mv.run_id == written.mlflow_run_id
    assert json.loads(result_file.read_text(encoding="utf-8"))["metrics"]["dev_acc_best"] > 0


def test_compare_policy_list_is_checked_before_anything_runs() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["eval", "compare", "--policy", "sft=tiny"])
    assert out.exit_code == 2 and "--policy: need at least two policies, got 1" in out.output
    out = runner.invoke(app, ["eval", "compare", "--policy", "sft", "--policy", "b=tiny"])
    assert out.exit_code == 2 and "expected NAME=SPEC, got 'sft'" in out.output
    out = runner.invoke(app, ["run", "--reward", "judge", "--ablate", "debate"])
    assert out.exit_code == 2 and "--ablate debate: ablates the rm reward" in out.output
