"""Loaders on the paper's released files (row counts from its README) and on the starter set."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhufu.pipeline.data import (
    FORMATS,
    PROMPT_TEMPLATE,
    DataError,
    LabelledExample,
    PreferencePair,
    Prompt,
    SFTExample,
    detect_format,
    load_labelled,
    load_pairs,
    load_prompts,
    load_queries,
    load_sft,
    starter_labelled,
    starter_queries,
)


def test_sft_data(shared_data: Path) -> None:
    rows = load_sft(shared_data / "sft_data.json")
    assert len(rows) == 4000
    assert all(isinstance(r, SFTExample) and r.instruction and r.output for r in rows)
    assert rows[0].instruction == "给女生的生日祝福" and rows[0].input == ""


def test_reward_pairs(shared_data: Path) -> None:
    pairs = load_pairs(shared_data / "reward_data_train.json")
    assert len(pairs) == 6310
    assert isinstance(pairs[0], PreferencePair) and pairs[0].query == "生意兴隆的祝福语"
    chosen = sum(len(p.chosen) for p in pairs) / len(pairs)
    rejected = sum(len(p.rejected) for p in pairs) / len(pairs)
    assert 55 < chosen < 70 and 25 < rejected < 35  # the README's ~62 vs ~30 characters


@pytest.mark.parametrize(("name", "rows"), [("grpo_train.parquet", 3200),
                                            ("grpo_test.parquet", 800)])
def test_verl_parquet(shared_data: Path, name: str, rows: int) -> None:
    prompts = load_prompts(shared_data / name)
    assert len(prompts) == rows
    first = prompts[0]
    assert isinstance(first, Prompt)
    assert first.messages[-1]["role"] == "user"
    # The query is the user message without the format's instruction prefix.
    assert first.messages[-1]["content"] == PROMPT_TEMPLATE.format(query=first.query)
    assert not any(p.query.startswith("请只生成一条祝福语") for p in prompts)


def test_query_file(shared_data: Path) -> None:
    queries = load_queries(shared_data / "random_query.txt")
    assert len(queries) == 10_000
    assert queries[0] == "生日祝福语"
    unique = load_queries(shared_data / "random_query.txt", unique=True)
    assert len(unique) == len(set(queries)) < 10_000
    assert unique[0] == "生日祝福语" and unique[1] == "生日快乐祝福语"  # first-seen order


@pytest.mark.parametrize(("name", "fmt", "rows"), [
    ("sft_data.json", "alpaca", 4000),
    ("reward_data_train.json", "sharegpt-pairs", 6310),
    ("grpo_test.parquet", "verl-parquet", 800),
    ("random_query.txt", "queries-txt", 10_000),
])
def test_detect_format_and_queries_from_any_format(shared_data: Path, name: str, fmt: str,
                                                   rows: int) -> None:
    assert detect_format(shared_data / name) == fmt
    assert len(load_queries(shared_data / name)) == rows


def test_detect_format_by_content(tmp_path: Path) -> None:
    """Files without a telling suffix are recognised from their first bytes."""
    cases = {
        "a.data": ('[{"instruction": "q", "input": "", "output": "a"}]', "alpaca"),
        "b.data": ('[{"conversations": [{"from": "human", "value": "q"}], '
                   '"chosen": {"from": "gpt", "value": "x"}, '
                   '"rejected": {"from": "gpt", "value": "y"}}]', "sharegpt-pairs"),
        "c.data": ('{"query": "q", "response": "r", "label": 1}\n', "labelled-jsonl"),
        "d": ("生日祝福语\n", "queries-txt"),
        "e.jsonl": ('{"query": "q", "response": "r", "label": true}\n', "labelled-jsonl"),
    }
    for name, (text, fmt) in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert detect_format(tmp_path / name) == fmt, name
        assert fmt in FORMATS


def test_prompts_from_query_text(tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_text("给老师的中秋祝福\n毕业祝福语 简短\n", encoding="utf-8")
    prompts = load_prompts(path)
    assert [p.query for p in prompts] == ["给老师的中秋祝福", "毕业祝福语 简短"]
    assert prompts[0].messages == [{"role": "user",
                                    "content": "请只生成一条祝福语：给老师的中秋祝福"}]


def test_labelled_accepts_bool_labels_and_keeps_order(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text('{"query": "a", "response": "好", "label": true}\n'
                    '{"query": "b", "response": "坏", "label": 0, "note": "kept out"}\n',
                    encoding="utf-8")
    assert load_labelled(path) == [LabelledExample("a", "好", 1), LabelledExample("b", "坏", 0)]


def test_none_gives_the_starter_set() -> None:
    assert load_queries(None) == starter_queries()
    assert load_labelled(None) == starter_labelled()
    sft = load_sft(None)
    assert len(sft) >= 150 and all(ex.instruction in set(starter_queries()) for ex in sft)
    prompts = load_prompts(None)
    assert [p.query for p in prompts] == starter_queries()
    pairs = load_pairs(None)
    assert pairs and all(p.chosen != p.rejected for p in pairs)
    bad = {(ex.query, ex.response) for ex in starter_labelled() if ex.label == 0}
    assert all((p.query, p.rejected) in bad for p in pairs)


def test_loader_rejects_the_wrong_format(shared_data: Path) -> None:
    with pytest.raises(DataError, match="expected alpaca, found sharegpt-pairs"):
        load_sft(shared_data / "reward_data_train.json")
    with pytest.raises(DataError, match="expected labelled-jsonl, found queries-txt"):
        load_labelled(shared_data / "random_query.txt")
