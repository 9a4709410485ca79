"""``zhufu judge score`` and ``zhufu eval agreement`` through the console script, on small
files written here (hand-written greetings) and on a slice of the paper's pairs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ZHUFU = Path(sys.executable).parent / "zhufu"

ROWS = [
    {"id": "a", "query": "女儿生日祝福语", "label": 1,
     "response": "亲爱的女儿，生日快乐！愿你像春天的小树苗，向着阳光自由生长，"
                 "每一天都被爱温柔包围。"},
    {"id": "b", "query": "女儿生日祝福语", "label": 0, "response": "祝你新春快乐，过年红红火火！"},
    {"id": "c", "query": "朋友新婚祝福语", "label": 1,
     "response": "恭喜你们喜结良缘！愿你们的日子像刚出锅的汤圆，甜在心里，暖在手心，"
                 "携手把每一个平凡的清晨都过成诗。"},
    {"id": "d", "query": "朋友新婚祝福语", "label": 0,
     "response": "好的，以下是一条新婚祝福语：\n1. 新婚快乐！\n2. 百年好合！"},
    {"id": "e", "query": "开业祝福语", "label": 0,
     "response": "开业大吉！本店全场五折优惠，扫码下单还送好礼！"},
    {"id": "f", "query": "乔迁新居祝福语", "label": 1,
     "response": "乔迁之喜！愿新家的每一扇窗都迎进满屋阳光，每一盏灯都照亮团圆的饭桌，"
                 "从此安居乐业，福气满堂。"},
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ZHUFU), *args], capture_output=True, text=True, timeout=300)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def test_judge_score_adds_score_and_label_in_order(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "out" / "scored.jsonl"
    proc = run("judge", "score", "--input", str(src), "--output", str(out), "--details")
    assert proc.returncode == 0, proc.stderr
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in scored] == [r["id"] for r in ROWS]
    for row, got in zip(ROWS, scored, strict=True):
        assert {k: got[k] for k in row} == row  # every input field kept
        assert isinstance(got["score"], float) and got["label"] in (0, 1)
        assert got["label"] == row["label"], got["judge"]["reason"]
    assert "6 rows" in proc.stderr


def test_judge_score_bad_input_names_row_and_field(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "bad.jsonl", [ROWS[0], {"query": "生日祝福语"}])
    proc = run("judge", "score", "--input", str(src), "--output", str(tmp_path / "o.jsonl"))
    assert proc.returncode == 2
    assert "bad.jsonl" in proc.stderr and "2" in proc.stderr and "response" in proc.stderr
    good = write_jsonl(tmp_path / "good.jsonl", ROWS[:1])
    proc = run("judge", "score", "--input", str(good), "--output", str(tmp_path / "o.jsonl"),
               "--judge", "nonsense:judge")
    assert proc.returncode == 2 and "judge spec" in proc.stderr


def test_eval_agreement_on_labelled_and_pairs(tmp_path: Path) -> None:
    labelled = write_jsonl(tmp_path / "lab.jsonl", ROWS)
    proc = run("eval", "agreement", "--data", str(labelled))
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["n"] == 6 and rep["accuracy"] == 1.0 and rep["cohen_kappa"] == 1.0
    assert 0.5 <= rep["length_threshold_accuracy"] <= 1.0
    assert sum(b["n"] for b in rep["bands"].values()) == 6
    assert "pair_accuracy" not in rep

    pairs = [{"conversations": [{"from": "human", "value": g["query"]}],
              "chosen": {"from": "gpt", "value": g["response"]},
              "rejected": {"from": "gpt", "value": b["response"]}}
             for g, b in [(ROWS[0], ROWS[1]), (ROWS[2], ROWS[3]), (ROWS[5], ROWS[4])]]
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(pairs, ensure_ascii=False), encoding="utf-8")
    proc = run("eval", "agreement", "--data", str(path), "--scorer", "judge:offline")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["n_pairs"] == 3 and rep["n"] == 6 and rep["pair_accuracy"] == 1.0
    assert rep["longer_wins_accuracy"] == 1.0
    assert {"near_same_length_n", "near_same_length_accuracy",
            "near_same_length_longer_wins_accuracy"} <= set(rep)

    proc = run("eval", "agreement", "--data", str(labelled), "--scorer", "oracle")
    assert proc.returncode == 2 and "scorer 'oracle'" in proc.stderr


def test_agreement_on_a_slice_of_the_paper_pairs(shared_data: Path, tmp_path: Path) -> None:
    """Every 20th pair of the paper's reward data (a copy in tmp, never in the repo)."""
    from zhufu.pipeline.evaluation.agreement import agreement

    pairs = json.loads((shared_data / "reward_data_train.json").read_text(encoding="utf-8"))
    path = tmp_path / "slice.json"
    path.write_text(json.dumps(pairs[::20], ensure_ascii=False), encoding="utf-8")
    rep = agreement(str(path))
    assert rep["n_pairs"] == len(pairs[::20])
    assert rep["pair_accuracy"] >= 0.9
    assert rep["accuracy"] >= 0.8 and rep["auc"] >= 0.85
    assert rep["failures"] == 0


@pytest.mark.slow
def test_agreement_on_all_paper_pairs(shared_data: Path) -> None:
    """The figures reported for judge v1 (see the agreement report in the PR notes)."""
    from zhufu.pipeline.evaluation.agreement import agreement

    rep = agreement(str(shared_data / "reward_data_train.json"))
    assert rep["n_pairs"] == 6310
    assert rep["pair_accuracy"] >= 0.95
    assert rep["near_same_length_accuracy"] >= 0.74
    assert rep["near_same_length_accuracy"] > rep["near_same_length_longer_wins_accuracy"]
    assert rep["accuracy"] >= 0.88
    assert rep["accuracy"] > rep["length_threshold_accuracy"]
    assert rep["bands"]["30-50"]["accuracy"] > rep["bands"]["30-50"]["length_rule_accuracy"]


@pytest.mark.slow
def test_agreement_with_a_reward_model_scorer(tmp_path: Path) -> None:
    """The rm: branch end to end on the embedded tiny reward model (untrained: only the shape
    of the report is checked)."""
    labelled = write_jsonl(tmp_path / "lab.jsonl", ROWS)
    proc = run("eval", "agreement", "--data", str(labelled), "--scorer", "rm:tiny-rm")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["n"] == 6 and rep["scorer"] == "rm:tiny-rm" and 0 <= rep["accuracy"] <= 1
