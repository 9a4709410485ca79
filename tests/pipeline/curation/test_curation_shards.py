"""Curation split over shards (issue 15 item 4): a stable split of the queries, one part and
one journal per shard, and a whole result read from the parts that equals an unsharded run.

The offline backend (the principle analyser) answers every agent; nothing is mocked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zhufu.pipeline import stage_runner
from zhufu.pipeline.config import CurateConfig
from zhufu.pipeline.curation import shards
from zhufu.pipeline.curation.stage import run_curation
from zhufu.pipeline.data.loaders import load_pairs
from zhufu.pipeline.data.starter import starter_queries
from zhufu.pipeline.errors import ConfigError


def pairs_of(path: Path) -> list[tuple[str, str, str]]:
    return sorted((p.query, p.chosen, p.rejected) for p in load_pairs(path))


def test_the_split_is_stable_and_covers_every_query_once() -> None:
    queries = list(dict.fromkeys(starter_queries()))
    for n in (2, 3, 8):
        parts = [shards.queries_of(queries, i, n) for i in range(n)]
        assert sorted(q for part in parts for q in part) == sorted(queries)
        assert all(parts), f"{n} shards: a shard of the starter queries is empty"
        # the same query lands in the same shard whatever else is curated with it
        assert shards.queries_of(list(reversed(queries[:5])), 0, n) == [
            q for q in reversed(queries[:5]) if q in parts[0]]


def test_shard_index_errors_name_the_problem() -> None:
    assert shards.check_shard("1", 2) == 1 and shards.check_shard(None, 2) is None
    with pytest.raises(ConfigError, match="out of range.*shards: 2"):
        shards.check_shard(2, 2)
    with pytest.raises(ConfigError, match="shards: 1"):
        shards.check_shard(0, 1)
    with pytest.raises(ConfigError, match="integer"):
        shards.check_shard("one", 2)


def config(curation_set: Any, out: Path, **over: Any) -> CurateConfig:
    return CurateConfig.model_validate({
        "responses": str(curation_set.labelled), "exemplars": str(curation_set.exemplars),
        "dev_labels": str(curation_set.labelled), "output_dir": str(out), **over})


def test_parts_make_the_same_pairs_as_one_run(curation_set: Any, tmp_path: Path) -> None:
    whole = run_curation(config(curation_set, tmp_path / "one"), progress=False)
    cfg = config(curation_set, tmp_path / "two", shards=2)
    parts = [run_curation(cfg, progress=False, shard=i) for i in (0, 1)]
    for i, part in enumerate(parts):
        folder = tmp_path / "two" / f"shard-{i}"
        assert part.outputs["pairs"] == str(folder / "pairs.json")
        assert (folder / "journal.jsonl").is_file()
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        assert (report["shard"], report["shards"]) == (i, 2)
        assert {t["query"] for t in part.traces} == set(
            shards.queries_of(curation_set.queries, i, 2))
    assert sum(p.metrics["candidates"] for p in parts) == whole.metrics["candidates"] == 12
    assert all(p.metrics["calls"] > 0 for p in parts)

    merged = run_curation(cfg, progress=False)  # reads both parts, calls nothing
    assert merged.metrics["shards_read"] == 2
    assert merged.metrics["calls"] == whole.metrics["calls"]  # the parts' calls, summed
    assert merged.metrics["llm_calls"] == whole.metrics["llm_calls"]
    for key in ("candidates", "judged", "pairs", "ties", "verdict_accuracy", "pair_accuracy"):
        assert merged.metrics[key] == whole.metrics[key], key
    assert pairs_of(tmp_path / "two" / "pairs.json") == pairs_of(tmp_path / "one" /
                                                                  "pairs.json")
    assert len(merged.traces) == 12


def test_a_rerun_shard_replays_its_journal_and_a_stale_part_is_curated_again(
        curation_set: Any, tmp_path: Path) -> None:
    cfg = config(curation_set, tmp_path / "out", shards=2)
    first = run_curation(cfg, progress=False, shard=1)
    again = run_curation(cfg, progress=False, shard=1)
    assert first.metrics["calls"] > 0
    assert again.metrics["calls"] == 0
    assert again.metrics["calls_replayed"] == first.metrics["calls"]

    # shard 0 never ran, and a part curated under another config is not read
    other = cfg.model_copy(update={"reflect": False})
    merged = run_curation(other, progress=False)
    assert merged.metrics["shards_read"] == 0
    assert merged.metrics["candidates"] == 12 and merged.metrics["judged"] == 12
    # both parts are now this config's: the next whole run reads them
    assert run_curation(other, progress=False).metrics["shards_read"] == 2
    # the reward model section is not part of what a shard curates
    with_rm = other.model_copy(update={"reward_model": {"max_steps": 1}})
    assert shards.read_part(with_rm, str(tmp_path / "out"), 0) is not None


def test_a_shard_without_queries_writes_an_empty_part(curation_set: Any,
                                                      tmp_path: Path) -> None:
    n = 64  # more shards than the set's 6 queries: some shard holds none
    empty = next(i for i in range(n) if not shards.queries_of(curation_set.queries, i, n))
    out = run_curation(config(curation_set, tmp_path / "out", shards=n), progress=False,
                       shard=empty)
    assert out.pairs == [] and out.metrics["candidates"] == 0
    part = tmp_path / "out" / f"shard-{empty}"
    assert json.loads((part / "pairs.json").read_text(encoding="utf-8")) == []
    assert (part / "trace.jsonl").read_text(encoding="utf-8") == ""


def test_a_shards_pod_curates_its_part_and_skips_the_reward_model(
        curation_set: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``zhufu curate --shard I`` with ``reward_model:`` set: the step after curation is
    the second Job's, on every part."""
    monkeypatch.setenv("ZHUFU_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = config(curation_set, tmp_path / "out", shards=2,
                 reward_model={"max_steps": 1, "batch_size": 4})
    result = stage_runner.run("curate", cfg, progress=False, shard="1", fresh=False)
    assert result.outputs["pairs"] == str(tmp_path / "out" / "shard-1" / "pairs.json")
    assert result.registered == {}
    assert not any(k.startswith("rm_") for k in result.metrics)
    with pytest.raises(ConfigError, match="out of range"):
        stage_runner.run("curate", cfg, progress=False, shard="2", fresh=False)
