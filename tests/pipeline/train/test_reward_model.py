"""``zhufu train-rm`` end to end on small pair sets, against a local MLflow store in tmp.

Real TRL RewardTrainer, real MLflow (sqlite store under ZHUFU_HOME), the real CLI; the
console script ``zhufu rm score`` runs in a fresh process and reads the registered model back
through ``models:/zhufu-reward/latest``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhufu.pipeline import stage_runner
from zhufu.pipeline.cli import app
from zhufu.pipeline.config import RewardModelConfig
from zhufu.pipeline.data.rows import PreferencePair
from zhufu.pipeline.train import reward_model as R

ZHUFU = Path(sys.executable).parent / "zhufu"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZHUFU_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("ZHUFU_RESULT_FILE", raising=False)
    return tmp_path / "home"


def _sharegpt(pairs: list[tuple[str, str, str]], path: Path) -> Path:
    path.write_text(json.dumps([
        {"conversations": [{"from": "human", "value": q}], "chosen": {"from": "gpt", "value": c},
         "rejected": {"from": "gpt", "value": r}} for q, c, r in pairs], ensure_ascii=False),
        encoding="utf-8")
    return path


def _marker_pairs(n: int, seed: int) -> list[tuple[str, str, str]]:
    """Same-length pairs that differ only in one marker character (福 chosen, 差 rejected)."""
    rng = random.Random(seed)
    filler = "生日快乐新年身体健康万事如意"
    out = []
    for _ in range(n):
        body = "".join(rng.choice(filler) for _ in range(10))
        k = rng.randrange(len(body))
        out.append(("祝福语", body[:k] + "福" + body[k:], body[:k] + "差" + body[k:]))
    return out


def test_split_and_bands() -> None:
    tr, ev = R.split_pairs(list(range(100)), 0.1, seed=3)
    assert (len(tr), len(ev)) == (90, 10)
    assert R.split_pairs(list(range(100)), 0.1, seed=3) == (tr, ev)
    assert R.split_pairs(list(range(100)), 0.1, seed=4) != (tr, ev)
    with pytest.raises(ValueError, match="at least 2"):
        R.split_pairs([1], 0.5, seed=0)
    assert R.delta_band("a" * 100, "a" * 85) == "0-15pct"
    assert R.delta_band("a" * 100, "a" * 84) == "15-30pct"
    assert R.delta_band("a" * 10, "a" * 60) == "50-100pct"


def test_accuracy_report_counts_near_same_length() -> None:
    pairs = [PreferencePair("q", "a" * 10, "b" * 10), PreferencePair("q", "a" * 30, "b" * 10),
             PreferencePair("q", "a" * 10, "b" * 9)]
    rep = R.accuracy_report(pairs, [1.0, 0.0, 2.0], [0.0, 1.0, 2.0])
    assert rep["n"] == 3 and rep["n_near"] == 2
    assert rep["acc"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert rep["acc_near"] == pytest.approx(0.75)
    assert rep["n_band/50-100pct"] == 1 and rep["acc_band/50-100pct"] == 0.0


def test_degenerate_training_pairs_pit_a_greeting_against_its_own_corruption() -> None:
    """degenerate_negatives: round(k × n) extra pairs, each a training pair's chosen text
    against a corruption of it that the shared readability check calls unreadable or the
    judge's gate calls degenerate; 0 adds none; the held-out pairs are never used."""
    from zhufu.pipeline.analysis.degeneracy import READABLE_AT, readability
    from zhufu.pipeline.data import starter_pairs

    train = starter_pairs()[:40]
    extra = R.degenerate_training_pairs(train, 0.5, seed=1)
    assert len(extra) == 20 and R.degenerate_training_pairs(train, 0.0, seed=1) == []
    assert R.degenerate_training_pairs(train, 0.5, seed=1) == extra  # seeded
    chosen = {(p.query, p.chosen): p.rejected for p in train}
    for p in extra:
        assert (p.query, p.chosen) in chosen and p.rejected != p.chosen
    bad = [p for p in extra if readability(p.query, p.rejected).readability < READABLE_AT]
    assert len(bad) >= 0.9 * len(extra), [p.rejected for p in extra if p not in bad]
    # written twice: the chosen text doubled, and (every other one) the shorter rejected
    # greeting doubled, about as long as the chosen text it loses to
    many = R.degenerate_training_pairs(train, 3.0, seed=1)
    twice = [p for p in many if p.rejected.replace("\n", "").replace(" ", "") in {
        (t * 2) for t in (p.chosen, chosen[(p.query, p.chosen)])}]
    own = [p for p in twice if p.rejected.startswith(p.chosen)]
    assert len(twice) >= 6 and 0 < len(own) < len(twice)


def test_char_rm_learns_a_marker_beyond_length() -> None:
    """Length carries no signal here (both sides are equally long); the RM must find 福.

    Trains through the stage's own build/train/score functions without MLflow (the
    registration path is covered by the CLI test below).
    """
    from zhufu.pipeline.rewards.rm import score_with

    pairs = [PreferencePair(*p) for p in _marker_pairs(160, seed=0)]
    train_pairs, held_out = R.split_pairs(pairs, 0.25, seed=0)
    cfg = RewardModelConfig(base_model="char", max_steps=30, batch_size=16,
                            learning_rate=3e-3, max_length=32,
                            char_encoder={"hidden_size": 32, "num_layers": 1, "num_heads": 2})
    model, tok = R.build_model(cfg, train_pairs)
    trainer, timing = R.train(cfg, model, tok, train_pairs)
    model = trainer.model
    assert timing["steps"] == 30 and timing["pairs_per_s"] > 0
    model.eval()
    q = [p.query for p in held_out]
    rep = R.accuracy_report(held_out, score_with(model, tok, q, [p.chosen for p in held_out]),
                            score_with(model, tok, q, [p.rejected for p in held_out]))
    longer = R.baselines(train_pairs, held_out, seed=0)["longer"]
    assert rep["n"] == 40 and rep["n_near"] == 40
    assert rep["acc"] >= 0.9, rep
    assert longer["acc"] == 0.5  # every pair is a length tie: the rule cannot choose


def test_train_rm_registers_and_cli_scores_in_order(home: Path, tmp_path: Path,
                                                    shared_data: Path) -> None:
    full = json.loads((shared_data / "reward_data_train.json").read_text(encoding="utf-8"))
    small = tmp_path / "pairs.json"
    small.write_text(json.dumps(full[:48], ensure_ascii=False), encoding="utf-8")
    result_file = tmp_path / "result.json"
    cfg_file = tmp_path / "rm.yaml"
    cfg_file.write_text(f"data: {small}\nbase_model: char\neval_fraction: 0.25\nmax_steps: 4\n"
                        "batch_size: 8\nchar_encoder: {hidden_size: 32, num_layers: 1, "
                        "num_heads: 2}\n", encoding="utf-8")
    env = {**os.environ, "ZHUFU_HOME": str(home), "ZHUFU_RESULT_FILE": str(result_file)}
    # Training runs in-process through the real CLI (saves a second torch import); scoring
    # below runs the installed console script in a fresh process.
    train = CliRunner().invoke(app, ["train-rm", "--config", str(cfg_file), "--set",
                                     "max_steps=3"], env={"ZHUFU_RESULT_FILE": str(result_file)})
    assert train.exit_code == 0, train.output[-3000:]
    result = json.loads(result_file.read_text(encoding="utf-8"))
    assert result["stage"] == "train-rm" and result["registered"] == {"zhufu-reward": "1"}
    for key in ("rm/acc", "rm/n_near", "ngram/acc", "longer/acc", "rm/n"):
        assert key in result["metrics"], key
    assert result["metrics"]["rm/n"] == 12
    # the judge test suite ran on the model (AUC of good greetings against degenerate text)
    assert 0 <= result["metrics"]["suite/degenerate_auc"] <= 1
    assert 0 <= result["metrics"]["suite/pair_acc_held_out"] <= 1

    import mlflow

    from zhufu.pipeline import tracking

    tracking.configure()
    run = mlflow.get_run(result["mlflow_run_id"])
    assert run.data.params["base_model"] == "char"
    assert 0 <= run.data.metrics["ngram/acc"] <= 1
    arts = {a.path for a in mlflow.artifacts.list_artifacts(run_id=run.info.run_id)}
    assert {"plots", "rm_report.json"} <= arts
    plots = mlflow.artifacts.list_artifacts(run_id=run.info.run_id, artifact_path="plots")
    assert [p.path for p in plots] == ["plots/rm_accuracy_by_length.png"]
    candidate = mlflow.MlflowClient().get_model_version_by_alias("zhufu-reward", "candidate")
    assert str(candidate.version) == "1"

    rows = [{"id": i, "query": p["conversations"][0]["value"], "response": p[side]["value"]}
            for i, p in enumerate(full[100:103]) for side in ("chosen", "rejected")]
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                   encoding="utf-8")
    score = subprocess.run([str(ZHUFU), "rm", "score", "--model", "models:/zhufu-reward/latest",
                            "--input", str(inp), "--output", str(out), "--batch-size", "4"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert score.returncode == 0, score.stderr[-3000:]
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [{k: v for k, v in r.items() if k != "reward"} for r in scored] == rows
    assert all(isinstance(r["reward"], float) for r in scored)

    from zhufu.pipeline.rewards.rm import score_texts

    local = score_texts(result["outputs"]["model"], [r["query"] for r in rows][::-1],
                        [r["response"] for r in rows][::-1], batch_size=1)
    assert [r["reward"] for r in scored] == pytest.approx(local[::-1], abs=1e-4)

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "生日", "response": "快乐"}\n{"query": "生日"}\n', encoding="utf-8")
    fail = CliRunner().invoke(app, ["rm", "score", "--model", result["outputs"]["model"],
                                    "--input", str(bad), "--output", str(tmp_path / "o.jsonl")])
    assert fail.exit_code == 2 and "row 2" in fail.output and "response" in fail.output


def test_tiny_default_with_lora_trains_and_merges(home: Path) -> None:
    """The default base (tiny Qwen2) on the starter pairs, through LoRA: a few steps."""
    cfg = RewardModelConfig(max_steps=2, batch_size=4, lora={"r": 4, "alpha": 8},
                            register_as="zhufu-reward-tiny")
    result = stage_runner.run("train-rm", cfg)
    assert result.registered == {"zhufu-reward-tiny": "1"}
    saved = Path(result.outputs["model"])
    assert not (saved / "adapter_config.json").exists()  # merged, a plain HF model dir
    from zhufu.pipeline.rewards.rm import score_texts

    scores = score_texts(str(saved), ["生日祝福语"], ["生日快乐！"])
    assert len(scores) == 1 and isinstance(scores[0], float)


@pytest.mark.slow
def test_example_config_smoke_on_paper_pairs(home: Path, shared_data: Path) -> None:
    """examples/reward-model.yaml on the full paper pairs, cut to 60 steps (minutes on 2 cores).

    The baselines are full strength; the RM after 60 steps already beats chance clearly.
    """
    from zhufu.pipeline.config import load_config

    example = Path(__file__).resolve().parents[3] / "examples" / "reward-model.yaml"
    cfg = load_config(RewardModelConfig, example,
                      [f"data={shared_data / 'reward_data_train.json'}", "max_steps=60"])
    m = stage_runner.run("train-rm", cfg).metrics
    assert m["rm/n"] == 1262
    assert m["longer/acc"] > 0.9 and m["ngram/acc"] > 0.97
    assert m["rm/acc"] > 0.9
