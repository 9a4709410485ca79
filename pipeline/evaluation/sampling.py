"""Sample greetings from a policy: the one sampler ``zhufu generate`` and the comparison use.

A policy spec is anything :func:`zhufu.pipeline.models.resolve_model` takes (``tiny``, a
local folder, ``models:/NAME@ALIAS``, ``runs:/…``). Generation goes through the batched
in-process backend (:class:`zhufu.pipeline.llm.hf_backend.TransformersBackend`); queries are
sent as the GRPO prompts are (:class:`zhufu.pipeline.data.Prompt`), so a user sees what the
policy was trained to answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from zhufu.pipeline import aio

#: Sampling defaults shared by the comparison and ``zhufu generate``.
TEMPERATURE = 0.7
MAX_TOKENS = 64


async def sample_messages(spec: str, messages: Sequence[list[dict[str, str]]],
                          max_tokens: int = MAX_TOKENS, seed: int = 0,
                          temperature: float = TEMPERATURE, batch_size: int = 16) -> list[str]:
    """One sampled answer per chat in ``messages`` ("" where generation failed)."""
    import torch

    from zhufu.pipeline.llm.base import ChatRequest, LLMError
    from zhufu.pipeline.llm.hf_backend import TransformersBackend
    from zhufu.pipeline.models import resolve_model

    torch.manual_seed(seed)
    backend = TransformersBackend(resolve_model(spec), batch_size=batch_size,
                                  temperature=temperature, max_tokens=max_tokens)
    try:
        replies = await backend.chat_many([ChatRequest(messages=list(m)) for m in messages])
    finally:
        await backend.aclose()
    return ["" if isinstance(r, LLMError) else r.text.strip() for r in replies]


def sample_greetings(spec: str, queries: Sequence[str], n: int = 1,
                     max_tokens: int = MAX_TOKENS, seed: int = 0,
                     temperature: float = TEMPERATURE) -> list[list[str]]:
    """``n`` sampled greetings for each query (a list per query, in query order)."""
    from zhufu.pipeline.data import Prompt
    from zhufu.pipeline.errors import ConfigError

    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    if not queries or any(not q.strip() for q in queries):
        raise ConfigError("queries must be non-empty strings")
    messages = [Prompt.from_query(q.strip()).messages for q in queries for _ in range(n)]
    texts = aio.run(sample_messages(spec, messages, max_tokens, seed, temperature))
    return [texts[i * n:(i + 1) * n] for i in range(len(queries))]
