"""The judge's figures for issue 12, before/after a change: degenerate set, principle pairs,
the paper's held-out labels (examples/judge.yaml's split) and a few named samples.

    .venv/bin/python -P bench/judge_figures.py [--judge SPEC] [--json OUT]

Reads the paper's data from ../shared/data/greetings at run time (never copied).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO.parent / "shared" / "data" / "greetings" / "reward_data_train.json"
SAMPLES = [("闺蜜生日祝福语 幽默一点", "。"), ("闺蜜生日祝福语 幽默一点", "，，，，"),
           ("闺蜜生日祝福语 幽默一点", "来寿快乐，，。祝，！\n\n\n！。。您愿，，，，…"),
           ("闺蜜生日祝福语 幽默一点",
            "恭喜你在地球上成功续费一年！新的一岁，钱包鼓鼓，烦恼清零，体重随缘，我永远是你的头号粉丝。"),
           ("闺蜜生日祝福语 幽默一点",
            "生日快乐我的大宝贝！又长了一岁，但放心，在我眼里你永远是那个吃火锅必须加两份毛肚的十八岁少女。")]


def paper_held_out(spec: str | None) -> dict[str, float]:
    from zhufu.pipeline.config import JudgeTrainConfig, load_config
    from zhufu.pipeline.data import load_pairs, starter_labelled
    from zhufu.pipeline.evaluation.metrics import band_of
    from zhufu.pipeline.judge import load_judge
    from zhufu.pipeline.judge.rounds import _pair_rows, split_groups

    cfg = load_config(JudgeTrainConfig, REPO / "examples" / "judge.yaml", [])
    groups = [[r] for r in starter_labelled()] + [_pair_rows(p) for p in load_pairs(str(PAPER))]
    _, _, test = split_groups(groups, cfg.dev_fraction, cfg.test_fraction, cfg.seed)
    judge = load_judge(spec)
    res = asyncio.run(judge.score_many([(r.query, r.response) for r in test]))
    from zhufu.pipeline.analysis.text import char_length

    right = sum(int(r.label == x.label) for r, x in zip(res, test, strict=True))
    out = {"n": len(test), "acc": right / len(test)}
    for band in ("<30", "30-50"):
        idx = [i for i, r in enumerate(test) if band_of(char_length(r.response)) == band]
        out[f"acc_{band}"] = sum(int(res[i].label == test[i].label) for i in idx) / len(idx)
    return out


def short_goods(spec: str | None) -> dict[str, float]:
    from zhufu.pipeline.analysis.text import char_length
    from zhufu.pipeline.data import starter_greetings, starter_labelled
    from zhufu.pipeline.judge import load_judge

    rows = [g for g in (*starter_greetings(), *starter_labelled())
            if g.label == 1 and char_length(g.response) < 30]
    res = asyncio.run(load_judge(spec).score_many([(g.query, g.response) for g in rows]))
    return {"n": len(rows), "labelled_good": sum(r.label for r in res) / len(rows)}


def samples(spec: str | None) -> list[dict]:
    from zhufu.pipeline.judge import load_judge

    res = asyncio.run(load_judge(spec).score_many(SAMPLES))
    return [{"text": t[:30], "overall": round(r.overall, 2), "verdict": r.verdict,
             "scores": {k: round(v, 2) for k, v in r.scores.items()}}
            for (_, t), r in zip(SAMPLES, res, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--judge", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from zhufu.pipeline.evaluation.judge_suite import (
        chosen_of,
        format_report,
        judge_scorer,
        run_suite,
    )

    suite = run_suite(judge_scorer(args.judge), extra_goods=chosen_of(str(PAPER)))
    print(format_report(suite))
    figures = {"paper_held_out": paper_held_out(args.judge), "short_goods": short_goods(args.judge),
               "samples": samples(args.judge)}
    print(json.dumps(figures, ensure_ascii=False, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"suite": suite, **figures}, ensure_ascii=False,
                                              indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
