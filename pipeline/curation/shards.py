"""Curation split over shards: which queries a shard curates, and reading a finished part.

With ``shards: N`` (N > 1) the queries are split by a stable hash of the query text, so a
query always lands in the same shard, whatever the order or the other queries: a rerun of
shard ``i`` finds its own journal under ``<output>/shard-<i>/`` and replays it. Each shard
writes its *part* there (``pairs.json``, ``trace.jsonl``, ``report.json``, ``journal.jsonl``);
a run over every shard reads the parts back (:func:`read_part`) and writes the whole result
at ``<output>/``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from zhufu.pipeline.config import CurateConfig
from zhufu.pipeline.data import storage

#: Config fields that do not change what a shard curates (a part made under other values of
#: these is still that shard's part).
NOT_CURATION = frozenset({"reward_model", "experiment"})


def shard_of(query: str, shards: int) -> int:
    """The shard a query belongs to: the first 8 bytes of its SHA-256, modulo ``shards``.

    >>> shard_of("给妈妈写一段生日祝福", 1), shard_of("给妈妈写一段生日祝福", 4)
    (0, 3)
    """
    digest = hashlib.sha256(query.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def queries_of(queries: list[str], shard: int, shards: int) -> list[str]:
    """The queries of ``shard`` among ``queries``, in their order."""
    return [q for q in queries if shard_of(q, shards) == shard]


def check_shard(shard: int | str | None, shards: int) -> int | None:
    """``shard`` as an int in ``[0, shards)`` (None stays None); a clear error otherwise."""
    from zhufu.pipeline.errors import ConfigError

    if shard is None:
        return None
    try:
        index = int(shard)
    except (TypeError, ValueError):
        raise ConfigError(f"--shard: expected a shard index (an integer), got {shard!r}") from None
    if shards < 2:
        raise ConfigError(f"--shard {index}: the config has shards: {shards}; --shard picks "
                          "one of several shards (set shards: N > 1)")
    if not 0 <= index < shards:
        raise ConfigError(f"--shard {index}: out of range, the config has shards: {shards} "
                          f"(indexes 0 to {shards - 1})")
    return index


def shard_dir(out: str, shard: int) -> str:
    """Where shard ``shard`` of the output ``out`` (a folder or an ``s3://`` prefix) lives."""
    return f"{out.rstrip('/')}/shard-{shard}"


def curation_identity(cfg: CurateConfig) -> dict[str, Any]:
    """The config as far as it decides what a shard curates (JSON form)."""
    return cfg.model_dump(mode="json", exclude=set(NOT_CURATION))


@dataclass
class Part:
    """A finished shard's traces and metrics, as its report and trace files hold them."""

    shard: int
    traces: list[dict[str, Any]]
    metrics: dict[str, float]


def read_part(cfg: CurateConfig, out: str, shard: int) -> Part | None:
    """Shard ``shard``'s part under ``out`` when it is finished and was curated under this
    config (:func:`curation_identity`); None when it is missing or stale."""
    folder = shard_dir(out, shard)
    report_uri, trace_uri = f"{folder}/report.json", f"{folder}/trace.jsonl"
    if not (storage.exists(report_uri) and storage.exists(trace_uri)):
        return None
    report = json.loads(storage.read_text(report_uri))
    if (report.get("shard") != shard or report.get("shards") != cfg.shards
            or report.get("identity") != curation_identity(cfg)):
        return None
    lines = storage.read_text(trace_uri).splitlines()
    traces = [json.loads(line) for line in lines if line.strip()]
    return Part(shard, traces, dict(report["metrics"]))
