"""What curation works on: the queries, the candidates per query and the exemplar greetings.

Candidates come from given responses (labelled JSONL; labels are ignored here), from a
policy sampled ``samples_per_query`` times per query, or both (with neither configured, the
starter set's labelled examples are the given responses); within a query a response
that repeats an earlier one is dropped. Policy samples are drawn through the in-process
transformers backend of the LLM layer, one journaled call per sample (the sample index is
the request ``seed``), so a restarted run reuses every sample it had drawn.
"""

from __future__ import annotations

import asyncio
from typing import Any

from zhufu.pipeline.config import CurateConfig
from zhufu.pipeline.curation.journal import Journal
from zhufu.pipeline.curation.retrieval import Exemplar
from zhufu.pipeline.curation.runner import Candidate, request_key
from zhufu.pipeline.data import formats as F
from zhufu.pipeline.data.errors import DataError
from zhufu.pipeline.data.loaders import load_labelled, load_pairs, load_queries, load_sft
from zhufu.pipeline.data.rows import Prompt
from zhufu.pipeline.llm import ChatBackend, ChatRequest, LLMError


def given_candidates(cfg: CurateConfig) -> list[Candidate]:
    """Candidates from ``cfg.responses`` (labelled JSONL rows, file order); with neither
    ``responses`` nor ``policy`` set, the starter set's labelled examples; else []."""
    if cfg.responses is None and cfg.policy is not None:
        return []
    return [Candidate(ex.query, ex.response, "given") for ex in load_labelled(cfg.responses)]


def select_queries(cfg: CurateConfig, given: list[Candidate]) -> list[str]:
    """The queries to curate: ``cfg.queries``, else those of the given responses, else the
    starter queries; unique, file order, at most ``max_queries``."""
    if cfg.queries is not None:
        queries = load_queries(cfg.queries, unique=True)
    elif given:
        queries = list(dict.fromkeys(c.query for c in given))
    else:
        queries = load_queries(None, unique=True)
    return queries[: cfg.max_queries] if cfg.max_queries else queries


def _as_exemplar(obj: Any) -> Exemplar:
    if isinstance(obj, Exemplar):
        return obj
    if isinstance(obj, str):
        return Exemplar("", obj)
    query = getattr(obj, "query", None) or getattr(obj, "instruction", "") or ""
    text = (getattr(obj, "chosen", None) or getattr(obj, "output", None)
            or getattr(obj, "response", None) or getattr(obj, "text", None))
    if not isinstance(text, str):
        raise TypeError(f"cannot read an exemplar greeting from {type(obj).__name__}")
    return Exemplar(str(query), text)


def load_exemplars(uri: str | None) -> list[Exemplar]:
    """Known-good greetings: labelled JSONL (label 1 rows), ShareGPT pairs (``chosen``),
    Alpaca SFT (``output`` for ``instruction``) or a text file of one greeting a line;
    None = the starter set's good greetings."""
    if uri is None:
        from zhufu.pipeline.data.starter import starter_greetings

        items = [_as_exemplar(g) for g in starter_greetings()]
    else:
        fmt = F.detect_format(uri)
        if fmt == F.LABELLED_JSONL:
            items = [Exemplar(e.query, e.response) for e in load_labelled(uri) if e.label == 1]
        elif fmt == F.SHAREGPT_PAIRS:
            items = [Exemplar(p.query, p.chosen) for p in load_pairs(uri)]
        elif fmt == F.ALPACA:
            items = [Exemplar(e.instruction, e.output) for e in load_sft(uri)]
        elif fmt == F.QUERIES_TXT:
            items = [Exemplar("", line) for line in load_queries(uri)]
        else:
            raise DataError(str(uri), None, None,
                            f"exemplars: expected labelled JSONL, ShareGPT pairs, Alpaca JSON "
                            f"or a text file of greetings, found {fmt}")
    items = list(dict.fromkeys(items))
    if not items:
        raise DataError(str(uri or "starter"), None, None, "exemplars: no good greetings")
    return items


def policy_identity(cfg: CurateConfig) -> dict[str, Any]:
    return {"policy": cfg.policy, "temperature": cfg.sample_temperature,
            "max_tokens": cfg.sample_max_tokens}


def sample_request(cfg: CurateConfig, query: str, index: int) -> ChatRequest:
    """The chat request for sample ``index`` of ``query`` (the verl prompt format)."""
    return ChatRequest(messages=Prompt.from_query(query).messages,
                       temperature=cfg.sample_temperature, max_tokens=cfg.sample_max_tokens,
                       seed=cfg.seed * 1000 + index)


def open_policy(cfg: CurateConfig) -> ChatBackend:
    """The policy as an in-process backend (``tiny``, a local folder or a ``models:/`` URI)."""
    from zhufu.pipeline.llm.hf_backend import TransformersBackend
    from zhufu.pipeline.models.resolve import resolve_model

    assert cfg.policy is not None
    return TransformersBackend(resolve_model(cfg.policy), batch_size=cfg.llm.batch_size,
                               temperature=cfg.sample_temperature,
                               max_tokens=cfg.sample_max_tokens)


async def sample_candidates(cfg: CurateConfig, queries: list[str], journal: Journal,
                            backend: ChatBackend | None = None) -> tuple[list[Candidate], int]:
    """``samples_per_query`` policy samples per query, journaled; (candidates, failed calls).

    The policy is loaded only when some sample is not in the journal yet.
    """
    identity = policy_identity(cfg)
    wanted = [(q, i, sample_request(cfg, q, i)) for q in queries
              for i in range(cfg.samples_per_query)]
    keys = [request_key(identity, req) for _, _, req in wanted]
    missing = [(w, k) for w, k in zip(wanted, keys, strict=True) if journal.get(k) is None]
    failed = 0
    if missing:
        import random

        random.seed(cfg.seed)
        try:
            import torch

            torch.manual_seed(cfg.seed)
        except ImportError:  # pragma: no cover - the transformers backend needs torch anyway
            pass
        own = backend is None
        backend = backend or open_policy(cfg)

        async def one(req: ChatRequest, key: str) -> None:
            nonlocal failed
            try:
                response = await backend.chat(req)
            except LLMError:
                failed += 1
                return
            await journal.append(key, "sample", text=response.text,
                                 completion_tokens=response.completion_tokens)

        try:
            await asyncio.gather(*(one(req, key) for (_, _, req), key in missing))
        finally:
            if own:
                await backend.aclose()
    out: list[Candidate] = []
    for (query, _, _), key in zip(wanted, keys, strict=True):
        record = journal.get(key)
        text = (record or {}).get("text", "").strip()
        if text:
            out.append(Candidate(query, text, "policy"))
    return out, failed


def merge_candidates(queries: list[str], *groups: list[Candidate]) -> list[Candidate]:
    """Candidates of the selected queries, grouped by query in query order; a response
    repeated within a query is kept once (the first source wins)."""
    wanted = set(queries)
    by_query: dict[str, dict[str, Candidate]] = {q: {} for q in queries}
    for group in groups:
        for cand in group:
            if cand.query in wanted:
                by_query[cand.query].setdefault(cand.response, cand)
    return [c for q in queries for c in by_query[q].values()]
