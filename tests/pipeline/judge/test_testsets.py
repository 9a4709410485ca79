"""The judge's test sets: big enough, well-formed, original, and fair (equal length).

They are data the project ships (``pipeline/judge/testsets``); these tests check the promises
their docstring makes, not any judge.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from zhufu.pipeline.analysis.text import char_length
from zhufu.pipeline.judge.degenerate import KINDS, degenerate_pairs, make
from zhufu.pipeline.judge.testsets import (
    PAIR_KINDS,
    degenerate_items,
    principle_pairs,
)


def test_degenerate_set_size_sources_and_splits() -> None:
    items = degenerate_items()
    assert len(items) >= 300
    assert len({d.id for d in items}) == len(items)
    by_source = Counter(d.source for d in items)
    assert by_source["hand"] >= 100 and by_source["generated"] >= 200
    assert {d.split for d in items if d.source == "hand"} == {"final"}
    gen = [d for d in items if d.source == "generated"]
    assert Counter(d.split for d in gen)["held_out"] >= len(gen) // 3 - 1
    assert {d.kind for d in gen} == set(KINDS)
    hand_kinds = {d.kind for d in items if d.source == "hand"}
    for kind in ("empty", "punctuation", "punct_soup", "repeated_chars", "repeated_phrase",
                 "query_echo", "english", "code", "html", "numbers", "emoji", "cut_off",
                 "written_twice", "shuffled", "refusal", "meta", "stutter"):
        assert kind in hand_kinds, kind


def test_principle_pairs_size_kinds_splits_and_equal_length() -> None:
    pairs = principle_pairs()
    hand = [p for p in pairs if p.source == "hand"]
    assert len(hand) >= 200 and len({p.id for p in pairs}) == len(pairs)
    assert Counter(p.kind for p in hand).keys() == set(PAIR_KINDS)
    for kind in PAIR_KINDS:
        rows = [p for p in hand if p.kind == kind]
        held = [p for p in rows if p.split == "held_out"]
        assert len(held) * 3 >= len(rows) - 2, kind  # a third of every kind held out
    assert {p.split for p in pairs if p.source != "hand"} == {"final"}
    assert len([p for p in pairs if p.split == "final"]) >= 80
    for p in pairs:
        assert p.good != p.bad and p.query
        g, b = char_length(p.good), char_length(p.bad)
        limit = 0.3 if p.kind == "format" else 0.2
        assert abs(g - b) / max(g, b) <= limit, (p.id, g, b)
    # bad and good have the same length on average, so length cannot tell them apart
    mean_g = sum(char_length(p.good) for p in hand) / len(hand)
    mean_b = sum(char_length(p.bad) for p in hand) / len(hand)
    assert abs(mean_g - mean_b) < 2.0, (mean_g, mean_b)


def test_test_sets_share_no_text_with_the_paper_data(shared_data: Path) -> None:
    paper: set[str] = set()
    for row in json.loads((shared_data / "sft_data.json").read_text(encoding="utf-8")):
        paper.add(row["output"])
    for row in json.loads((shared_data / "reward_data_train.json").read_text(encoding="utf-8")):
        paper.update((row["chosen"]["value"], row["rejected"]["value"]))
    ours = [d.response for d in degenerate_items()]
    ours += [t for p in principle_pairs() for t in (p.good, p.bad)]
    n = 16
    windows = {t[i:i + n] for t in ours for i in range(len(t) - n + 1)}
    shared = {t[i:i + n] for t in paper for i in range(len(t) - n + 1)} & windows
    assert not shared, sorted(shared)[:5]


def test_degenerate_makers_are_seeded_and_never_return_the_greeting() -> None:
    good = "老李，三十年风里雨里，办公室那盏最早亮的灯总是你。退休快乐，常回来喝杯茶！"
    for kind in KINDS:
        a = make(kind, "给退休的老同事的祝福语", good, random.Random(3))
        assert a == make(kind, "给退休的老同事的祝福语", good, random.Random(3))
        assert a != good, kind
    rows = degenerate_pairs(["q"] * 2, [good, "生日快乐，天天开心！"], 2 * len(KINDS), seed=0)
    assert len(rows) == 2 * len(KINDS) and Counter(k for *_, k in rows) == Counter(
        {k: 2 for k in KINDS})
