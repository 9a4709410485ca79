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

from zhufu.pipeline.config import CurateConfig, RewardModelConfig
from zhufu.pipeline.curation import candidates as C
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


@dataclass
class CurationOutcome:
    traces: list[dict[str, Any]]
    pairs: list[PreferencePair]
    metrics: dict[str, float]
    outputs: dict[str, str]  # name → URI (local path or s3://)
    local_files: dict[str, Path] = field(default_factory=dict)


def llm_identity(cfg: CurateConfig, backend: ChatBackend) -> dict[str, Any]:
    """What identifies the answering model in journal keys (not URLs, keys or timeouts)."""
    return {"backend": backend.name, "model": cfg.llm.model,
            "temperature": cfg.llm.temperature, "max_tokens": cfg.llm.max_tokens,
            "json_mode": cfg.llm.json_mode}


def work_dirs(cfg: CurateConfig) -> tuple[str, Path]:
    """(output URI, local folder holding the journal and the files before upload)."""
    from zhufu.pipeline.models.paths import data_dir, output_path

    out = output_path(cfg.output_dir)
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
    m.setdefault("malformed_total", 0)
    m.setdefault("candidates_failed", 0)
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


async def curate_async(cfg: CurateConfig, backend: ChatBackend | None = None, *,
                       policy_backend: ChatBackend | None = None,
                       progress: bool = True) -> CurationOutcome:
    """Run the stage's work (no MLflow); ``backend`` defaults to ``make_backend(cfg.llm)``."""
    from tqdm.auto import tqdm

    import zhufu.pipeline.curation.offline_tasks  # noqa: F401 - registers the offline kinds
    from zhufu.pipeline.llm import make_backend
    from zhufu.pipeline.models.paths import data_dir

    started = time.monotonic()
    out, local = work_dirs(cfg)
    journal_uri = _uri(out, "journal.jsonl")
    journal_path = local / "journal.jsonl"
    if storage.is_s3(out) and not journal_path.exists() and storage.exists(journal_uri):
        journal_path.write_bytes(storage.read_bytes(journal_uri))
    journal = Journal(journal_path)

    given = C.given_candidates(cfg)
    queries = C.select_queries(cfg, given)
    if not queries:
        raise DataError(cfg.queries or "starter queries", None, None, "no queries to work on")
    sampled: list[Candidate] = []
    sample_failures = 0
    if cfg.policy:
        sampled, sample_failures = await C.sample_candidates(cfg, queries, journal,
                                                             policy_backend)
    cands = C.merge_candidates(queries, given, sampled)
    if not cands:
        raise ConfigError("curate: no candidates (set 'responses' to labelled JSONL and/or "
                          "'policy' to a model to sample from)")

    retriever = build_retriever(cfg.retrieval, C.load_exemplars(cfg.exemplars)
                                if cfg.retrieval.kind != "none" else [],
                                data_dir() / "retrieval")
    own_backend = backend is None
    backend = backend or make_backend(cfg.llm)
    curator = Curator(cfg, backend, journal, retriever, llm_identity(cfg, backend))
    limit = asyncio.Semaphore(max(2, 2 * cfg.llm.concurrency))
    bar = tqdm(total=len(cands), desc="curate", unit="cand", disable=not progress,
               mininterval=0.5)

    every = max(1, len(cands) // 10)
    finished = [0]
    log.info("curate: %d candidates for %d queries", len(cands), len(queries))

    async def one(cand: Candidate) -> dict[str, Any]:
        async with limit:
            trace = await curator.curate(cand)
        bar.update(1)
        finished[0] += 1
        if finished[0] % every == 0 or finished[0] == len(cands):  # `zhufu -v` shows these
            log.info("curate: %d/%d candidates judged", finished[0], len(cands))
        return trace

    uploader = (asyncio.create_task(_upload_journal_periodically(journal, journal_uri))
                if storage.is_s3(out) else None)
    try:
        traces = list(await asyncio.gather(*(one(c) for c in cands)))
    finally:
        bar.close()
        if uploader is not None:
            uploader.cancel()
        journal.close()
        if own_backend:
            await backend.aclose()

    pairs, stats = form_pairs(traces)
    metrics = summarize(traces, stats)
    metrics.update(
        candidates_sampled=float(len(sampled)), sample_failures=float(sample_failures),
        calls=float(curator.calls), calls_replayed=float(curator.replayed),
        tokens_prompt=float(curator.prompt_tokens),
        tokens_completion=float(curator.completion_tokens),
        seconds=time.monotonic() - started)
    metrics.update(backend.stats.as_metrics("llm_"))
    if metrics["seconds"] > 0:
        metrics["pairs_per_minute"] = 60.0 * len(pairs) / metrics["seconds"]
    if cfg.dev_labels:
        from zhufu.pipeline.data.loaders import load_labelled

        metrics.update(agreement(traces, load_labelled(cfg.dev_labels), pairs))

    files = _write_outputs(local, traces, pairs, metrics, cfg)
    outputs = {name: _uri(out, path.name) for name, path in files.items()}
    if storage.is_s3(out):
        for path in (*files.values(), journal_path):
            storage.write_bytes(_uri(out, path.name), path.read_bytes())
    outputs["journal"] = journal_uri
    return CurationOutcome(traces, pairs, metrics, outputs, files)


def _write_outputs(local: Path, traces: list[dict[str, Any]], pairs: list[PreferencePair],
                   metrics: dict[str, float], cfg: CurateConfig) -> dict[str, Path]:
    from zhufu.pipeline.data.writers import write_jsonl, write_pairs

    files = {name: local / fname for name, fname in OUTPUT_FILES.items()}
    write_pairs(pairs, files["pairs"])
    write_jsonl(traces, files["trace"])
    report = {"metrics": metrics, "config": cfg.model_dump(mode="json")}
    files["report"].write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n",
                               encoding="utf-8")
    return files


def run_curation(cfg: CurateConfig, backend: ChatBackend | None = None, *,
                 progress: bool = True) -> CurationOutcome:
    """Synchronous entry for :func:`curate_async`."""
    return asyncio.run(curate_async(cfg, backend, progress=progress))


#: Metrics of the result (the MLflow run has every counter).
SUMMARY = ("candidates", "judged", "pairs", "ties", "candidates_failed", "malformed_total",
           "verdict_accuracy", "verdict_kappa", "pair_accuracy", "seconds", "calls",
           "calls_replayed", "tokens_prompt", "tokens_completion")


def curate(cfg: CurateConfig, *, fresh: bool = False, progress: bool = True) -> StageOutput:
    """The ``zhufu curate`` stage's work: :func:`run_curation`, its files logged to the
    stage's MLflow run. ``fresh`` first moves the journal of a previous run aside."""
    from zhufu.pipeline import tracking

    if fresh:
        moved = set_aside_journal(cfg)
        if moved:
            log.warning("previous journal moved to %s", moved)
    outcome = run_curation(cfg, progress=progress)
    for path in outcome.local_files.values():
        tracking.log_artifact(path, "curation")
    tracking.set_tags({"zhufu.pairs": outcome.outputs["pairs"],
                       "zhufu.trace": outcome.outputs["trace"]})
    return StageOutput(metrics=outcome.metrics, summary=SUMMARY, outputs=dict(outcome.outputs))


def train_on_curated_pairs(cfg: RewardModelConfig, done: Mapping[str, StageResult]
                           ) -> RewardModelConfig:
    """A CurationJob's second step: the reward model trains on the pairs just curated."""
    return cfg.model_copy(update={"data": done["curate"].outputs["pairs"]})


def set_aside_journal(cfg: CurateConfig) -> Path | None:
    """Rename the local journal of ``cfg``'s output (``--fresh``); returns the new name.

    For an ``s3://`` output the uploaded journal is deleted from the prefix as well, so the
    next run cannot fetch it back.
    """
    out, local = work_dirs(cfg)
    path = local / "journal.jsonl"
    if storage.is_s3(out) and storage.exists(_uri(out, "journal.jsonl")):
        bucket, key = storage.split_s3(_uri(out, "journal.jsonl"))
        storage.s3_client().delete_object(Bucket=bucket, Key=key)
    if not path.exists():
        return None
    target = path.with_name(f"journal.{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
    path.rename(target)
    return target
