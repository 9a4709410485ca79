"""The shipped starter set: sizes, integrity, originality against the paper data, split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.conftest import paper_greetings, shared_runs
from zhufu.pipeline.data import (
    detect_format,
    starter_greetings,
    starter_labelled,
    starter_queries,
    starter_sft,
    starter_split,
)
from zhufu.pipeline.data.starter import GREETINGS_FILE, LABELLED_FILE, QUERIES_FILE

OCCASIONS = ["生日", "春节", "中秋", "端午", "元宵", "新婚", "乔迁", "升学", "毕业", "退休",
             "开业", "满月", "教师节", "母亲节", "父亲节", "康复", "出差", "升职"]


def test_sizes_and_formats() -> None:
    assert len(starter_queries()) >= 60
    assert len(starter_greetings()) >= 150
    assert len(starter_labelled()) >= 100
    assert detect_format(QUERIES_FILE) == "queries-txt"
    assert detect_format(GREETINGS_FILE) == detect_format(LABELLED_FILE) == "labelled-jsonl"


def test_queries_cover_occasions_and_styles() -> None:
    text = "\n".join(starter_queries())
    assert [o for o in OCCASIONS if o not in text] == []
    assert sum(s in text for s in ("简短", "幽默", "文艺", "正式", "押韵", "四字")) == 6


def test_no_duplicates_and_every_query_known() -> None:
    queries = starter_queries()
    assert len(set(queries)) == len(queries)
    greetings = [g.response for g in starter_greetings()]
    labelled = [ex.response for ex in starter_labelled()]
    assert len(set(greetings + labelled)) == len(greetings) + len(labelled)
    known = set(queries)
    assert all(g.query in known and g.label == 1 for g in starter_greetings())
    assert all(ex.query in known for ex in starter_labelled())
    # every query has at least two greetings
    assert min(Counter(g.query for g in starter_greetings()).values()) >= 2


def test_greeting_lengths_vary() -> None:
    lengths = [len(g.response) for g in starter_greetings()]
    assert min(lengths) >= 15 and max(lengths) <= 120 and max(lengths) >= 80


def test_both_labels_and_length_does_not_separate_them() -> None:
    rows = starter_labelled()
    labels = Counter(ex.label for ex in rows)
    assert labels[0] >= 40 and labels[1] >= 40
    lengths = [len(ex.response) for ex in rows]
    best = 0.0
    for t in sorted(set(lengths)):
        longer_good = sum((n > t) == (ex.label == 1) for n, ex in zip(lengths, rows, strict=True))
        best = max(best, longer_good / len(rows), 1 - longer_good / len(rows))
    assert best < 0.7, f"a length threshold separates the labels ({best:.2f})"


def test_shares_no_text_with_the_paper_data(shared_data: Path) -> None:
    """No starter greeting equals a paper greeting, and none shares a 16-character run."""
    paper = paper_greetings(shared_data)
    ours = [g.response for g in starter_greetings()] + [e.response for e in starter_labelled()]
    assert not set(ours) & paper
    shared = shared_runs(ours, paper)
    assert not shared, sorted(shared)[:5]


def test_sft_rows_and_split() -> None:
    train, held = starter_split()
    assert (train, held) == starter_split(0.2, 0)
    assert not set(train) & set(held) and len(train) + len(held) == len(starter_queries())
    assert abs(len(held) - 0.2 * len(starter_queries())) <= 1
    assert starter_split(0.2, 1) != (train, held)
    sft = starter_sft(train)
    assert sft and {ex.instruction for ex in sft} <= set(train)
    assert all(ex.input == "" and ex.output for ex in sft)
    assert len(starter_sft()) == len(starter_greetings())
