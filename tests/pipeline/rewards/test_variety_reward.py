"""The variety reward: a closing line pasted onto answers for many queries loses reward; the
starter data's own recurring closings, and a group's answers to one query, do not."""

from __future__ import annotations

import doctest
from collections import Counter

import pytest

import zhufu.pipeline.rewards.variety as variety
from zhufu.pipeline.analysis.text import closing_line
from zhufu.pipeline.config import GRPOConfig
from zhufu.pipeline.data import starter_greetings
from zhufu.pipeline.rewards.variety import VarietyReward

STOCK = "愿你永远有人陪，永远有梦追。"
QUERIES = [f"query {i}" for i in range(40)]


def test_doctests() -> None:
    import zhufu.pipeline.analysis.text as text
    import zhufu.pipeline.evaluation.closings as closings

    for module in (variety, text, closings):
        result = doctest.testmod(module)
        assert result.attempted >= 1 and result.failed == 0, module.__name__


def own_line(i: int) -> str:
    """A closing line of its own for each ``i`` (its Chinese characters differ)."""
    return f"{chr(0x4E00 + i)}{chr(0x5000 + i)}朋友，今天也要开心呀。"


def test_a_line_pasted_across_queries_loses_reward_as_it_spreads() -> None:
    reward = VarietyReward(window=256, floor=0.04, ceiling=0.12, min_others=128)
    # 4 steps of 32 completions, 8 queries × 4; the stock line spreads from 1 in 32 to 12 in 32
    means = []
    for step, stock_share in enumerate((1, 4, 8, 12)):
        queries = [QUERIES[8 * step + i // 4] for i in range(32)]
        texts = [f"加油！{STOCK}" if i < stock_share else own_line(1000 * step + i)
                 for i in range(32)]
        got = reward(queries, texts, query=queries)
        assert all(v == 1.0 for v in got[stock_share:])  # distinct closings keep the full reward
        means.append(sum(got[:stock_share]) / stock_share)
    assert means[0] == 1.0 and means[-1] == 0.0
    assert means == sorted(means, reverse=True)


def test_answers_to_the_same_query_may_share_a_line() -> None:
    reward = VarietyReward(window=64, min_others=8)
    same = ["生日祝福语"] * 32
    assert reward(same, [f"生日快乐！{STOCK}"] * 32, query=same) == [1.0] * 32
    # the same line for other queries is then judged against the remembered answers
    other = ["毕业祝福语"] * 4
    assert reward(other, [f"毕业快乐！{STOCK}"] * 4, query=other) == [0.0] * 4


def test_the_starter_datas_own_closings_are_not_stock_lines() -> None:
    """Every starter greeting through the reward, 32 at a time in a shuffled order: a policy
    that writes like the starter data keeps (almost) all of its variety reward."""
    import random

    rows = list(starter_greetings())
    random.Random(0).shuffle(rows)
    reward = VarietyReward()
    got: list[float] = []
    for i in range(0, len(rows), 32):
        batch = rows[i : i + 32]
        got += reward([r.query for r in batch], [r.response for r in batch],
                      query=[r.query for r in batch])
    assert len(got) == len(rows) and sum(got) / len(got) > 0.99
    most_common = Counter(closing_line(r.response) for r in rows).most_common(1)[0][1]
    assert most_common / len(rows) < 0.04  # under the reward's floor


def test_a_short_or_missing_closing_line_is_never_penalised() -> None:
    reward = VarietyReward(window=8, min_others=1)
    queries = [f"q{i}" for i in range(8)]
    assert reward(queries, ["好！"] * 8, query=queries) == [1.0] * 8
    assert closing_line("") == "" and closing_line("！！！") == ""


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="floor < ceiling"):
        VarietyReward(floor=0.2, ceiling=0.1)


def test_each_grpo_run_gets_its_own_memory() -> None:
    from zhufu.pipeline.train.grpo_setup import build_rewards

    cfg = GRPOConfig(rewards=[{"name": "variety", "weight": 0.25}])
    (first,), weights = build_rewards(cfg, {})
    (second,), _ = build_rewards(cfg, {})
    assert weights == [0.25] and first is not second
