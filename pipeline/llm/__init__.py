"""LLM backends behind one async chat interface (see :mod:`zhufu.pipeline.llm.base`).

- ``offline``: the deterministic principle analyser (the embedded default, no model needed);
- ``openai``: any OpenAI-compatible chat-completions server (vLLM, SGLang, hosted APIs);
- ``transformers``: in-process, batched generation from a local model folder.

:func:`make_backend` builds one from an :class:`~zhufu.pipeline.config.LLMConfig` (behind the
on-disk response cache when ``cache_dir`` is set); :func:`parse_llm_spec` reads the short
specs the CLI takes. Importing this package imports neither aiohttp nor torch.
"""

from __future__ import annotations

from typing import Any

from zhufu.pipeline.config import LLMConfig
from zhufu.pipeline.errors import ConfigError
from zhufu.pipeline.llm.base import (
    CallStats,
    ChatBackend,
    ChatRequest,
    ChatResponse,
    LLMError,
    Message,
)
from zhufu.pipeline.llm.parsing import parse_json_output

__all__ = [
    "CallStats",
    "ChatBackend",
    "ChatRequest",
    "ChatResponse",
    "LLMError",
    "Message",
    "make_backend",
    "parse_json_output",
    "parse_llm_spec",
]

SPEC_FORMS = "offline | openai:MODEL@http://HOST:PORT/v1 | hf:/local/model/path"


def parse_llm_spec(spec: str, **overrides: Any) -> LLMConfig:
    """An :class:`LLMConfig` from a CLI spec; ``overrides`` set further fields.

    >>> parse_llm_spec("offline").backend
    'offline'
    >>> c = parse_llm_spec("openai:Qwen/Qwen2.5-7B-Instruct@http://vllm:8000/v1")
    >>> (c.backend, c.model, c.base_url)
    ('openai', 'Qwen/Qwen2.5-7B-Instruct', 'http://vllm:8000/v1')
    >>> c = parse_llm_spec("hf:/models/judge", batch_size=4)
    >>> (c.backend, c.model, c.batch_size)
    ('transformers', '/models/judge', 4)
    """
    text = spec.strip()
    kind, _, rest = text.partition(":")
    kind = kind.lower()
    fields: dict[str, Any]
    if text.lower() == "offline":
        fields = {"backend": "offline"}
    elif kind == "openai":
        cut = max(rest.find("@http://"), rest.find("@https://"))
        if cut <= 0:
            raise ConfigError(f"LLM spec {spec!r}: expected openai:MODEL@http://HOST:PORT/v1")
        fields = {"backend": "openai", "model": rest[:cut], "base_url": rest[cut + 1:]}
    elif kind in ("hf", "transformers"):
        if not rest:
            raise ConfigError(f"LLM spec {spec!r}: expected hf:/local/model/path")
        fields = {"backend": "transformers", "model": rest}
    else:
        raise ConfigError(f"LLM spec {spec!r} not understood; use one of: {SPEC_FORMS}")
    fields.update(overrides)
    return LLMConfig(**fields)


def make_backend(cfg: LLMConfig | str) -> ChatBackend:
    """The backend ``cfg`` describes (a spec string is read with :func:`parse_llm_spec`)."""
    if isinstance(cfg, str):
        cfg = parse_llm_spec(cfg)
    backend: ChatBackend
    if cfg.backend == "offline":
        from zhufu.pipeline.llm.offline import OfflineBackend

        backend = OfflineBackend()
    elif cfg.backend == "openai":
        from zhufu.pipeline.llm.openai_compat import OpenAIBackend

        assert cfg.base_url is not None  # LLMConfig checks it
        backend = OpenAIBackend(
            cfg.model, cfg.base_url, api_key_env=cfg.api_key_env, api_key_file=cfg.api_key_file,
            concurrency=cfg.concurrency, timeout_s=cfg.timeout_s, max_retries=cfg.max_retries,
            temperature=cfg.temperature, max_tokens=cfg.max_tokens, json_mode=cfg.json_mode,
        )
    elif cfg.backend == "transformers":
        from zhufu.pipeline.llm.hf_backend import TransformersBackend

        backend = TransformersBackend(
            cfg.model, batch_size=cfg.batch_size, concurrency=max(cfg.concurrency, cfg.batch_size),
            temperature=cfg.temperature, max_tokens=cfg.max_tokens,
        )
    else:  # pragma: no cover - LLMConfig's Literal forbids it
        raise ValueError(f"unknown LLM backend {cfg.backend!r}")
    if cfg.cache_dir:
        from zhufu.pipeline.llm.cache import CachedBackend

        backend = CachedBackend(backend, cfg.cache_dir)
    backend.trace_rate = cfg.trace_rate
    return backend
