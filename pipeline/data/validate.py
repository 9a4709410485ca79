"""Check a data file end to end and summarise it (what ``zhufu data validate`` prints)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from statistics import mean
from typing import Any

from zhufu.pipeline.data import formats as F
from zhufu.pipeline.data.loaders import (
    parse_labelled,
    parse_pairs,
    parse_prompts_parquet,
    parse_queries_txt,
    parse_sft,
)
from zhufu.pipeline.data.storage import read_bytes


def _mean_len(texts: Sequence[str]) -> float:
    return round(mean(len(t) for t in texts), 1) if texts else 0.0


def summarize(uri: str | os.PathLike[str]) -> dict[str, Any]:
    """Load ``uri`` strictly (DataError/StorageError on any problem) and return its summary:
    ``file``, ``format``, ``rows`` and per-format stats (lengths are in characters)."""
    name = str(uri)
    data = read_bytes(name)
    fmt = F.detect_format_bytes(data, name)
    out: dict[str, Any] = {"file": name, "format": fmt}
    if fmt == F.ALPACA:
        rows = parse_sft(data, name)
        out.update(rows=len(rows),
                   mean_instruction_chars=_mean_len([r.instruction for r in rows]),
                   mean_output_chars=_mean_len([r.output for r in rows]))
    elif fmt == F.SHAREGPT_PAIRS:
        pairs = parse_pairs(data, name)
        chosen, rejected = [p.chosen for p in pairs], [p.rejected for p in pairs]
        out.update(rows=len(pairs), mean_chosen_chars=_mean_len(chosen),
                   mean_rejected_chars=_mean_len(rejected),
                   chosen_longer_fraction=round(
                       sum(len(c) > len(r) for c, r in zip(chosen, rejected, strict=True))
                       / len(pairs), 4),
                   identical_pairs=sum(c == r for c, r in zip(chosen, rejected, strict=True)))
    elif fmt == F.VERL_PARQUET:
        queries = [p.query for p in parse_prompts_parquet(data, name)]
        out.update(rows=len(queries), unique_queries=len(set(queries)),
                   mean_query_chars=_mean_len(queries))
    elif fmt == F.QUERIES_TXT:
        queries = parse_queries_txt(data, name)
        out.update(rows=len(queries), unique_queries=len(set(queries)),
                   mean_query_chars=_mean_len(queries))
    else:
        rows_l = parse_labelled(data, name)
        good = [r.response for r in rows_l if r.label == 1]
        bad = [r.response for r in rows_l if r.label == 0]
        out.update(rows=len(rows_l), good=len(good), bad=len(bad),
                   mean_response_chars=_mean_len([r.response for r in rows_l]),
                   mean_good_chars=_mean_len(good), mean_bad_chars=_mean_len(bad))
    return out
