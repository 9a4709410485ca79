"""The curation stage: candidates → agents → preference pairs, resumable and observable.

:func:`run_curation` does the work and returns the traces, pairs and metrics; :func:`curate`
(the stage's run function) logs them to the stage's MLflow run (counts, agreement and cost as
metrics; pairs, trace and report as artifacts); the stage wrapper does the rest. In a
CurationJob, :func:`train_on_curated_pairs` points the reward-model step at the pairs.

Outputs under ``output_dir`` (a folder, or an ``s3://`` prefix uploaded at the end):
``pairs.json`` (ShareGPT preference format), ``trace.jsonl`` (one line per candidate with
every agent's output), ``report.json`` (the metrics) and ``journal.jsonl`` (the resume
journal). For an ``s3://`` output the journal lives in a local work folder, is fetched from
the prefix at start when the local copy is missing, and is uploaded every minute and at the
end, so a restarted pod resumes from its last upload.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhufu.pipeline import aio, gcscope
from zhufu.pipeline.config import CurateConfig, RewardModelConfig
from zhufu.pipeline.curation import candidates as C
from zhufu.pipeline.curation import shards
from zhufu.pipeline.curation.journal import Journal
from zhufu.pipeline.curation.pairs import PairStats, agreement, form_pairs
from zhufu.pipeline.curation.retrieval import build_retriever
from zhufu.pipeline.curation.runner import Candidate, Curator
from zhufu.pipeline.data import storage
from zhufu.pipeline.data.rows import PreferencePair
from zhufu.pipeline.errors import ConfigError, DataError
from zhufu.pipeline.llm import ChatBackend
from zhufu.pipeline.results import StageOutput, StageResult

log = logging.getLogger(__name__)
JOURNAL_UPLOAD_S = 60.0
OUTPUT_FILES = {"pairs": "pairs.json", "trace": "trace.jsonl", "report": "report.json"}


@dataclass(repr=False)
class CurationOutcome:
    traces: list[dict[str, Any]]
    pairs: list[PreferencePair]
    metrics: dict[str, float]
    outputs: dict[str, str]  # name → URI (local path or s3://)
    local_files: dict[str, Path] = field(default_factory=dict)

    def __repr__(self) -> str:
        # short on purpose: the runner's end (asyncio.Runner, Python 3.11) formats the repr of
        # the main task, result included, and a repr of every trace cost ~5 % of a run's CPU
        return (f"CurationOutcome({len(self.traces)} traces, {len(self.pairs)} pairs, "
                f"outputs={self.outputs!r})")


def llm_identity(cfg: CurateConfig, backend: ChatBackend) -> dict[str, Any]:
    """What identifies the answering model in journal keys (not URLs, keys or timeouts)."""
    return {"backend": backend.name, "model": cfg.llm.model,
            "temperature": cfg.llm.temperature, "max_tokens": cfg.llm.max_tokens,
            "json_mode": cfg.llm.json_mode}


def work_dirs(cfg: CurateConfig, shard: int | None = None) -> tuple[str, Path]:
    """(output URI, local folder holding the journal and the files before upload); with
    ``shard``, those of that shard's part (``<output>/shard-<i>``)."""
    from zhufu.pipeline.models.paths import data_dir, output_path

    out = output_path(cfg.output_dir)
    if shard is not None:
        out = shards.shard_dir(out, shard)
    if storage.is_s3(out):
        digest = hashlib.sha256(out.encode()).hexdigest()[:16]
        local = data_dir() / "curate" / digest
    else:
        local = Path(out)
    local.mkdir(parents=True, exist_ok=True)
    return out, local


def _uri(out: str, name: str) -> str:
    return f"{out.rstrip('/')}/{name}" if storage.is_s3(out) else str(Path(out) / name)


def summarize(traces: list[dict[str, Any]], stats: PairStats) -> dict[str, float]:
    """Counts from the traces alone, so a resumed run reports what an uninterrupted one does."""
    m: Counter[str] = Counter()
    for t in traces:
        m["candidates"] += 1
        m[f"candidates_{t['source']}"] += 1
        final = t.get("final")
        if t.get("failed"):
            m["candidates_failed"] += 1
            m[f"failed_{t['failed']['agent']}_{t['failed']['kind']}"] += 1
        elif final is None:
            m["candidates_unjudged"] += 1
        else:
            m["judged"] += 1
            m[f"verdict_{final['verdict']}"] += 1
            m["reflect_changed"] += int(final.get("by") == "reflect")
        for issue in t["issues"]:
            agent, _, kind = issue.partition(":")
            if kind in ("inconsistent", "change_without_reason"):
                m[f"reflect_ignored_{kind}"] += 1
            else:
                m["malformed_total"] += 1
                m[f"malformed_{agent}_{kind}"] += 1
    for key in ("candidates", "judged", "malformed_total", "candidates_failed"):
        m.setdefault(key, 0)  # an empty part (a shard without queries) reports zeros
    out = {k: float(v) for k, v in m.items()}
    out.update(queries=float(stats.queries), pairs=float(stats.pairs), ties=float(stats.ties),
               queries_too_few=float(stats.too_few))
    if stats.margins:
        out["pair_margin_mean"] = sum(stats.margins) / len(stats.margins)
    return out


async def _upload_journal_periodically(journal: Journal, uri: str) -> None:
    while True:
        await asyncio.sleep(JOURNAL_UPLOAD_S)
        try:
            data = journal.path.read_bytes()
            await asyncio.to_thread(storage.write_bytes, uri, data)
        except OSError as e:  # a failed checkpoint upload is retried next minute
            log.warning("journal upload to %s failed: %s", uri, e)


#: Metrics that add up over shards (the llm_* counters too).
ADDITIVE = ("calls", "calls_replayed", "tokens_prompt", "tokens_completion",
            "candidates_sampled", "sample_failures")


async def curate_async(cfg: CurateConfig, backend: ChatBackend | None = None, *,
                       policy_backend: ChatBackend | None = None,
                       progress: bool = True, shard: int | None = None,
                       reuse_parts: bool = True) -> CurationOutcome:
    """Run the stage's work (no MLflow); ``backend`` defaults to ``make_backend(cfg.llm)``.

    With ``shards`` > 1: ``shard`` = i curates shard i's queries into its part
    (``<output>/shard-<i>/``); no ``shard`` reads every finished part (curating, here, each
    part that is missing or stale, or every part when not ``reuse_parts``) and writes the
    whole result at ``<output>/``.
    """
    shard = shards.check_shard(shard, cfg.shards)
    if cfg.shards > 1 and shard is None:
        return await _curate_every_shard(cfg, backend, policy_backend, progress, reuse_parts)
    with gcscope.fewer_collections():
        return await _curate_part(cfg, backend, policy_backend, progress, shard)


async def _curate_part(cfg: CurateConfig, backend: ChatBackend | None,
                       policy_backend: ChatBackend | None, progress: bool,
                       shard: int | None) -> CurationOutcome:
    """The whole work of an unsharded run, or of shard ``shard``'s part."""
    from tqdm.auto import tqdm

    import zhufu.pipeline.curation.offline_tasks  # noqa: F401 - registers the offline kinds
    from zhufu.pipeline.llm import make_backend
    from zhufu.pipeline.models.paths import data_dir

    started = time.monotonic()
    out, local = work_dirs(cfg, shard)
    journal_uri = _uri(out, "journal.jsonl")
    journal_path = local / "journal.jsonl"
    if storage.is_s3(out) and not journal_path.exists() and storage.exists(journal_uri):
        journal_path.write_bytes(storage.read_bytes(journal_uri))
    journal = Journal(journal_path)

    given = C.given_candidates(cfg)
    queries = C.select_queries(cfg, given)
    if not queries:
        raise DataError(cfg.queries or "starter queries", None, None, "no queries to work on")
    if shard is not None:  # a shard may hold no query at all: its part is then empty
        queries = shards.queries_of(queries, shard, cfg.shards)
    sampled: list[Candidate] = []
    sample_failures = 0
    if cfg.policy and queries:
        sampled, sample_failures = await C.sample_candidates(cfg, queries, journal,
                                                             policy_backend)
    cands = C.merge_candidates(queries, given, sampled)
    if not cands and shard is None:
        raise ConfigError("curate: no candidates (set 'responses' to labelled JSONL and/or "
                          "'policy' to a model to sample from)")

    retriever = build_retriever(cfg.retrieval, C.load_exemplars(cfg.exemplars)
                                if cfg.retrieval.kind != "none" else [],
                                data_dir() / "retrieval")
    own_backend = backend is None
    backend = backend or make_backend(cfg.llm)
    stats_before = backend.stats.as_metrics("llm_")
    curator = Curator(cfg, backend, journal, retriever, llm_identity(cfg, backend))
    curator.retrieve([c.query for c in cands])
    bar = tqdm(total=len(cands), desc="curate" if shard is None else f"curate shard {shard}",
               unit="cand", disable=not progress, mininterval=0.5)

    every = max(1, len(cands) // 10)
    finished = [0]
    log.info("curate: %d candidates for %d queries", len(cands), len(queries))
    traces: list[dict[str, Any]] = [{} for _ in cands]
    todo = iter(enumerate(cands))

    async def worker() -> None:
        # a fixed set of workers takes the candidates in order: one task per worker, not
        # per candidate, and no semaphore for them to queue on
        for i, cand in todo:
            traces[i] = await curator.curate(cand)
            bar.update(1)
            finished[0] += 1
            if finished[0] % every == 0 or finished[0] == len(cands):  # `zhufu -v` shows these
                log.info("curate: %d/%d candidates judged", finished[0], len(cands))

    uploader = (asyncio.create_task(_upload_journal_periodically(journal, journal_uri))
                if storage.is_s3(out) else None)
    try:
        # twice the calls in flight: a candidate waiting on its judge leaves a slot free
        await asyncio.gather(*(worker() for _ in range(min(len(cands),
                                                           max(2, 2 * cfg.llm.concurrency)))))
    finally:
        bar.close()
        if uploader is not None:
            uploader.cancel()
        journal.close()
        if own_backend:
            await backend.aclose()

    counts = {"candidates_sampled": float(len(sampled)),
              "sample_failures": float(sample_failures), "calls": float(curator.calls),
              "calls_replayed": float(curator.replayed),
              "tokens_prompt": float(curator.prompt_tokens),
              "tokens_completion": float(curator.completion_tokens)}
    stats_after = backend.stats.as_metrics("llm_")
    counts.update({k: v - stats_before.get(k, 0.0) for k, v in stats_after.items()})
    part = {"shard": shard, "shards": cfg.shards,
            "identity": shards.curation_identity(cfg)} if shard is not None else {}
    outcome = _outcome(cfg, out, local, traces, counts, started, part)
    if storage.is_s3(out):
        storage.write_bytes(journal_uri, journal_path.read_bytes())
    outcome.outputs["journal"] = journal_uri
    return outcome


async def _curate_every_shard(cfg: CurateConfig, backend: ChatBackend | None,
                              policy_backend: ChatBackend | None, progress: bool,
                              reuse_parts: bool) -> CurationOutcome:
    """The whole result of a sharded curation from its parts: each finished part is read,
    each missing or stale one curated here first (its journal replays what it had)."""
    started = time.monotonic()
    out, local = work_dirs(cfg)
    traces: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    read = 0
    for i in range(cfg.shards):
        part = shards.read_part(cfg, out, i) if reuse_parts else None
        if part is None:
            done = await curate_async(cfg, backend, policy_backend=policy_backend,
                                      progress=progress, shard=i)
            part = shards.Part(i, done.traces, done.metrics)
        else:
            read += 1
        traces += part.traces
        for key, value in part.metrics.items():
            if key in ADDITIVE or key.startswith("llm_"):
                counts[key] += value
    log.info("curate: %d of %d shard parts read, %d curated here", read, cfg.shards,
             cfg.shards - read)
    return _outcome(cfg, out, local, traces,
                    {**counts, "shards": float(cfg.shards), "shards_read": float(read)},
                    started, {})


def _outcome(cfg: CurateConfig, out: str, local: Path, traces: list[dict[str, Any]],
             counts: Mapping[str, float], started: float, part: dict[str, Any]
             ) -> CurationOutcome:
    """Pairs and metrics from ``traces``; the files written under ``local`` and uploaded when
    ``out`` is an ``s3://`` prefix. ``part`` (shard, shards, identity) goes into the report."""
    pairs, stats = form_pairs(traces)
    metrics = summarize(traces, stats)
    metrics.update(counts)
    metrics["seconds"] = time.monotonic() - started
    if metrics["seconds"] > 0:
        metrics["pairs_per_minute"] = 60.0 * len(pairs) / metrics["seconds"]
    if cfg.dev_labels and part.get("shard") is None:
        from zhufu.pipeline.data.loaders import load_labelled

        metrics.update(agreement(traces, load_labelled(cfg.dev_labels), pairs))

    files = _write_outputs(local, traces, pairs, metrics, cfg, part)
    outputs = {name: _uri(out, path.name) for name, path in files.items()}
    if storage.is_s3(out):
        for path in files.values():
            storage.write_bytes(_uri(out, path.name), path.read_bytes())
    return CurationOutcome(traces, pairs, metrics, outputs, files)


def _write_outputs(local: Path, traces: list[dict[str, Any]], pairs: list[PreferencePair],
                   metrics: dict[str, float], cfg: CurateConfig, part: dict[str, Any]
                   ) -> dict[str, Path]:
    from zhufu.pipeline.data.writers import write_jsonl, write_pairs

    files = {name: local / fname for name, fname in OUTPUT_FILES.items()}
    write_pairs(pairs, files["pairs"])
    write_jsonl(traces, files["trace"])
    report = {"metrics": metrics, "config": cfg.model_dump(mode="json"), **part}
    files["report"].write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n",
                               encoding="utf-8")
    return files


def run_curation(cfg: CurateConfig, backend: ChatBackend | None = None, *,
                 progress: bool = True, shard: int | None = None,
                 reuse_parts: bool = True) -> CurationOutcome:
    """Synchronous entry for :func:`curate_async`."""
    return aio.run(curate_async(cfg, backend, progress=progress, shard=shard,
                                reuse_parts=reuse_parts))


#: Metrics of the result (the MLflow run has every counter).
SUMMARY = ("candidates", "judged", "pairs", "ties", "candidates_failed", "malformed_total",
           "verdict_accuracy", "verdict_kappa", "pair_accuracy", "seconds", "calls",
           "calls_replayed", "tokens_prompt", "tokens_completion")


def curate(cfg: CurateConfig, *, fresh: bool = False, progress: bool = True,
           shard: str | int | None = None) -> StageOutput:
    """The ``zhufu curate`` stage's work: :func:`run_curation`, its files logged to the
    stage's MLflow run. ``fresh`` first moves the journal of a previous run aside (with
    ``shards`` > 1, that of ``shard``, or of every shard, whose parts are then not reused);
    ``shard`` (``--shard I``) curates that shard's part only."""
    from zhufu.pipeline import tracking

    index = shards.check_shard(shard, cfg.shards)
    if fresh:
        which = ([None] if cfg.shards == 1 else [index] if index is not None
                 else list(range(cfg.shards)))
        for i in which:
            moved = set_aside_journal(cfg, i)
            if moved:
                log.warning("previous journal moved to %s", moved)
    outcome = run_curation(cfg, progress=progress, shard=index, reuse_parts=not fresh)
    for path in outcome.local_files.values():
        tracking.log_artifact(path, "curation")
    tracking.set_tags({"zhufu.pairs": outcome.outputs["pairs"],
                       "zhufu.trace": outcome.outputs["trace"]})
    return StageOutput(metrics=outcome.metrics, summary=SUMMARY, outputs=dict(outcome.outputs))


def train_on_curated_pairs(cfg: RewardModelConfig, done: Mapping[str, StageResult]
                           ) -> RewardModelConfig:
    """A CurationJob's second step: the reward model trains on the pairs just curated."""
    return cfg.model_copy(update={"data": done["curate"].outputs["pairs"]})


def set_aside_journal(cfg: CurateConfig, shard: int | None = None) -> Path | None:
    """Rename the local journal of ``cfg``'s output (of its part ``shard`` when given:
    ``--fresh``); returns the new name.

    For an ``s3://`` output the uploaded journal is deleted from the prefix as well, so the
    next run cannot fetch it back.
    """
    out, local = work_dirs(cfg, shard)
    path = local / "journal.jsonl"
    if storage.is_s3(out) and storage.exists(_uri(out, "journal.jsonl")):
        bucket, key = storage.split_s3(_uri(out, "journal.jsonl"))
        storage.s3_client().delete_object(Bucket=bucket, Key=key)
    if not path.exists():
        return None
    target = path.with_name(f"journal.{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
    path.rename(target)
    return target
