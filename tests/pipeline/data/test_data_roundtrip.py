"""Writers produce files the loaders read back unchanged (local files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhufu.pipeline.data import (
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
    read_jsonl,
    write_jsonl,
    write_labelled,
    write_pairs,
    write_prompts,
    write_queries,
    write_sft,
)

PAIRS = [PreferencePair("给老师的中秋祝福", "老师，中秋快乐！愿月光替我道一声谢谢。", "中秋快乐"),
         PreferencePair("闺蜜生日 幽默", "又老一岁，但你永远是我心里的小仙女！",
                        "生日快乐\n生日快乐")]


def test_pairs_round_trip_in_the_paper_layout(tmp_path: Path) -> None:
    path = tmp_path / "pairs.json"
    assert write_pairs(PAIRS, path) == 2
    assert detect_format(path) == "sharegpt-pairs"
    assert load_pairs(path) == PAIRS
    first = json.loads(path.read_text(encoding="utf-8"))[0]
    assert first == {"conversations": [{"from": "human", "value": "给老师的中秋祝福"}],
                     "chosen": {"from": "gpt", "value": PAIRS[0].chosen},
                     "rejected": {"from": "gpt", "value": "中秋快乐"}}
    assert "中秋" in path.read_text(encoding="utf-8")  # UTF-8, not \\u escapes


def test_paper_pairs_round_trip(shared_data: Path, tmp_path: Path) -> None:
    pairs = load_pairs(shared_data / "reward_data_train.json")
    write_pairs(pairs, tmp_path / "copy.json")
    assert load_pairs(tmp_path / "copy.json") == pairs


def test_labelled_sft_queries_prompts_round_trip(tmp_path: Path) -> None:
    rows = [LabelledExample("q1", "好的祝福", 1), LabelledExample("q2", "坏的", 0)]
    write_labelled(rows, tmp_path / "l.jsonl")
    assert load_labelled(tmp_path / "l.jsonl") == rows
    sft = [SFTExample("生日祝福", "", "生日快乐！"), SFTExample("春节", "给客户", "新春大吉")]
    write_sft(sft, tmp_path / "s.json")
    assert load_sft(tmp_path / "s.json") == sft
    queries = ["生日祝福语", "毕业 简短"]
    write_queries(queries, tmp_path / "q.txt")
    assert load_queries(tmp_path / "q.txt") == queries
    prompts = [Prompt.from_query(q) for q in queries]
    write_prompts(prompts, tmp_path / "p.parquet")
    assert detect_format(tmp_path / "p.parquet") == "verl-parquet"
    assert load_prompts(tmp_path / "p.parquet") == prompts


def test_jsonl_keeps_every_field_and_order(tmp_path: Path) -> None:
    rows = [{"query": "q", "response": "r", "id": 3, "meta": {"a": [1, 2]}},
            {"id": 1, "response": "r2", "query": "q2", "score": 0.5}]
    assert write_jsonl(rows, tmp_path / "x.jsonl") == 2
    back = read_jsonl(tmp_path / "x.jsonl", require=("query", "response"))
    assert back == rows and list(back[1]) == ["id", "response", "query", "score"]


def test_writers_refuse_rows_their_loader_would_reject(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        write_pairs([PAIRS[0], PreferencePair("q", "", "x")], tmp_path / "p.json")
    assert (info.value.row, info.value.field) == (2, "chosen.value")
    assert not (tmp_path / "p.json").exists()
    with pytest.raises(DataError):
        write_queries(["a\nb"], tmp_path / "q.txt")
    with pytest.raises(DataError):
        write_jsonl([{"x": object()}], tmp_path / "x.jsonl")
    with pytest.raises(ValueError):
        LabelledExample("q", "r", 2)


def test_errors_survive_pickling() -> None:
    import pickle

    from zhufu.pipeline.data import ObjectNotFound

    err = pickle.loads(pickle.dumps(DataError("f.json", 3, "output", "empty")))
    assert (err.file, err.row, err.field, str(err)) == ("f.json", 3, "output",
                                                        "f.json: row 3, field 'output': empty")
    missing = pickle.loads(pickle.dumps(ObjectNotFound("s3://b/k", "no such object")))
    assert isinstance(missing, FileNotFoundError) and str(missing) == "s3://b/k: no such object"
