"""MLflow traces of LLM work: one trace per curated candidate or judged greeting, sampled.

A backend carries a ``trace_rate`` (``llm.trace_rate`` in a stage config; 0 = off, the
default, and what the benchmarks use). :func:`sampled` picks a fixed share of items by a hash
of their key, so a resumed run traces the same items. Inside a sampled :func:`trace`, every
agent call opens a child :func:`span` with its inputs, output text, token usage (MLflow's
``mlflow.chat.tokenUsage``) and whether the answer was replayed from the journal; the span's
own start and end give the latency. The trace goes to the active MLflow run's experiment
and is linked to that run, so the debate of a candidate reads in the MLflow UI's Traces tab.

Outside a sampled trace nothing here imports MLflow or costs more than a context lookup.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

_ACTIVE: ContextVar[bool] = ContextVar("zhufu_trace_active", default=False)


def sampled(key: str, rate: float) -> bool:
    """Whether the item ``key`` is traced at ``rate`` (0–1): the same answer every time.

    >>> sampled("any", 0.0), sampled("any", 1.0)
    (False, True)
    """
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


_UNTRACED = nullcontext()  # what trace/span give outside a sampled trace: enters to None


def trace(name: str, traced: bool, inputs: Mapping[str, Any],
          attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
    """The root span of one item's trace when ``traced``, else nothing (enters to ``None``).

    The caller sets the outputs on the span it enters to (``span.set_outputs(...)``)."""
    return _trace(name, inputs, attributes) if traced else _UNTRACED


@contextmanager
def _trace(name: str, inputs: Mapping[str, Any],
           attributes: Mapping[str, Any] | None) -> Iterator[Any]:
    import mlflow

    token = _ACTIVE.set(True)
    try:
        with mlflow.start_span(name, span_type="CHAIN", attributes=dict(attributes or {})
                               ) as root:
            root.set_inputs(dict(inputs))
            yield root
    finally:
        _ACTIVE.reset(token)


def span(name: str, span_type: str, inputs: Any) -> AbstractContextManager[Any]:
    """A child span inside an active :func:`trace` (else nothing: enters to ``None``). A
    plain function, not a generator, so the untraced case (every call of a run at
    ``trace_rate`` 0) costs a context-variable read."""
    return _span(name, span_type, inputs) if _ACTIVE.get() else _UNTRACED


@contextmanager
def _span(name: str, span_type: str, inputs: Any) -> Iterator[Any]:
    import mlflow

    with mlflow.start_span(name, span_type=span_type) as child:
        child.set_inputs(inputs)
        yield child


def flush() -> None:
    """Wait until every finished trace is written (MLflow exports them in the background);
    a stage calls it before its MLflow run ends. Nothing to do when MLflow is not loaded."""
    import sys

    if "mlflow" in sys.modules:
        sys.modules["mlflow"].flush_trace_async_logging()


def record_call(child: Any, text: str, prompt_tokens: int, completion_tokens: int,
                replayed: bool = False) -> None:
    """Put one LLM answer on its span: the text, token usage, and whether it was replayed
    (a journal hit costs no call; its tokens are those of the original call)."""
    if child is None:
        return
    from mlflow.tracing.constant import SpanAttributeKey

    child.set_outputs(text)
    child.set_attributes({
        SpanAttributeKey.CHAT_USAGE: {"input_tokens": int(prompt_tokens),
                                      "output_tokens": int(completion_tokens),
                                      "total_tokens": int(prompt_tokens + completion_tokens)},
        "zhufu.replayed": bool(replayed)})


async def chat_many(backend: Any, requests: Sequence[Any], name: str,
                    inputs: Sequence[Mapping[str, str]]) -> list[Any]:
    """``backend.chat_many(requests)`` where each sampled item (``inputs[i]``, also its
    sampling key) is its own trace ``name`` with one LLM span. Untraced when the backend's
    ``trace_rate`` is 0."""
    rate = float(getattr(backend, "trace_rate", 0.0))
    if rate <= 0:
        return await backend.chat_many(requests)
    from zhufu.pipeline.llm.base import LLMError

    async def one(request: Any, item: Mapping[str, str]) -> Any:
        key = json.dumps(item, sort_keys=True, ensure_ascii=False)
        with trace(name, sampled(key, rate), item) as root, \
                span(f"{name}.call", "LLM", {"messages": request.messages}) as child:
            try:
                reply = await backend.chat(request)
            except LLMError as e:
                if root is not None:
                    root.set_outputs({"error": str(e)})
                return e
            record_call(child, reply.text, reply.prompt_tokens, reply.completion_tokens)
            if root is not None:
                root.set_outputs(reply.text)
            return reply

    return list(await asyncio.gather(*(one(r, i) for r, i in
                                       zip(requests, inputs, strict=True))))
