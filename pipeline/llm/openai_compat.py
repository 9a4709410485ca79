"""OpenAI-compatible chat completions (vLLM, SGLang, hosted APIs) over one lean aiohttp session.

The hot path is kept short on purpose (the judge sends 100+ calls at once on 2 cores): one
reused ``ClientSession`` with ``TCPConnector(limit=concurrency)`` and the headers set on it,
the URL parsed once, the body encoded once (:mod:`zhufu.pipeline.fastjson`, orjson), the
answer read as bytes and decoded the same way, and only the few fields we need picked out of
it. Measured against a bare aiohttp loop in ``bench/llm_client.py``.

Failures: 429, 408, 5xx, timeouts, dropped connections and unreadable bodies are retried up
to ``max_retries`` times with exponential backoff and full jitter (``Retry-After`` honoured,
capped); any other 4xx or a reply of the wrong shape fails at once. Either way the caller gets
an :class:`LLMError` whose ``kind`` is counted in :attr:`ChatBackend.stats`. A call waiting to
retry keeps its concurrency slot, so a burst of 429s slows the whole client down, as it should.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from zhufu.pipeline import fastjson
from zhufu.pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, LLMError
from zhufu.pipeline.llm.retry import RetryPolicy, parse_retry_after

_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class _Retryable(Exception):
    """One attempt failed in a way a later attempt may not."""

    def __init__(self, kind: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.retry_after = retry_after


def resolve_api_key(env_var: str | None = "OPENAI_API_KEY",
                    key_file: str | os.PathLike[str] | None = None) -> str | None:
    """The API key from a mounted secret file (preferred when given) or an env var.

    A named file that cannot be read is an error naming the file; an unset or empty env var
    means "no key" (local vLLM/SGLang servers need none). The key itself is never logged.
    """
    if key_file is not None:
        path = Path(key_file)
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise LLMError(f"cannot read API key file {path}: {e.strerror}", "KeyFile") from None
        if not key:
            raise LLMError(f"API key file {path} is empty", "KeyFile")
        return key
    if env_var:
        key = os.environ.get(env_var, "").strip()
        return key or None
    return None


def chat_url(base_url: str) -> str:
    """``http://host:8000/v1`` → ``http://host:8000/v1/chat/completions`` (kept if given whole).

    >>> chat_url("http://vllm:8000/v1/")
    'http://vllm:8000/v1/chat/completions'
    >>> chat_url("http://x/v1/chat/completions")
    'http://x/v1/chat/completions'
    """
    base = base_url.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


class OpenAIBackend(ChatBackend):
    """Chat completions from any OpenAI-compatible server.

    ``json_mode=True`` adds ``response_format={"type": "json_object"}`` to requests that ask
    for JSON output; it is off by default because many servers reject the field.
    ``extra_body`` is merged into every request body (e.g. ``{"top_p": 0.9}``).
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        api_key_file: str | os.PathLike[str] | None = None,
        concurrency: int = 16,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        temperature: float = 0.7,
        max_tokens: int = 512,
        json_mode: bool = False,
        retry: RetryPolicy | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(concurrency)
        if not model:
            raise ValueError("OpenAIBackend needs a model name")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.model = model
        self.base_url = base_url
        self.url = chat_url(base_url)
        self.timeout_s = timeout_s
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.json_mode = json_mode
        self.extra_body = dict(extra_body or {})
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        key = api_key if api_key is not None else resolve_api_key(api_key_env, api_key_file)
        self._headers = {"Content-Type": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._session: aiohttp.ClientSession | None = None
        self._session_closer: AsyncGenerator[None, None] | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:  # never shows the key
        return (f"OpenAIBackend(model={self.model!r}, url={self.url!r}, "
                f"concurrency={self.concurrency})")

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "url": self.url,
                "temperature": self.temperature, "max_tokens": self.max_tokens,
                "json_mode": self.json_mode, "extra_body": self.extra_body}

    # -- session -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The chat completions endpoint."""
        return self._url_text

    @url.setter
    def url(self, value: str) -> None:
        # parsed once here, not by aiohttp on every request
        self._url_text, self._url = value, URL(value)

    def _on_new_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        # the session belongs to the previous loop (closed by its shutdown): open a new one
        self._session = None

    async def _new_session(self) -> aiohttp.ClientSession:
        """A session for the running loop, closed by that loop's shutdown at the latest.

        ``asyncio.run`` finalises the async generators still alive when it ends; the
        ``_closer`` generator parked here closes the session then, so a stage that calls
        ``asyncio.run`` once per batch leaks no connections and needs no ``aclose``.
        """
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0,
                                         ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector, raise_for_status=False,
                                        headers=self._headers,
                                        timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        closer = _closer(session)
        await closer.__anext__()  # runs to the yield without suspending: no other call races us
        self._session, self._session_closer = session, closer
        self._session_loop = asyncio.get_running_loop()
        return session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        closer, self._session_closer = self._session_closer, None
        if closer is not None and self._session_loop is asyncio.get_running_loop():
            await closer.aclose()
        elif session is not None and not session.closed:
            await session.close()

    # -- one call ------------------------------------------------------------------------
    def encode(self, request: ChatRequest) -> bytes:
        """The request body as UTF-8 JSON bytes."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "temperature": self.temperature if request.temperature is None else request.temperature,
            "max_tokens": self.max_tokens if request.max_tokens is None else request.max_tokens,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.json_output and self.json_mode:
            body["response_format"] = {"type": "json_object"}
        if self.extra_body:
            body.update(self.extra_body)
        return fastjson.dumps(body)

    async def _chat(self, request: ChatRequest) -> ChatResponse:
        body = self.encode(request)
        start = time.perf_counter()
        attempt = 0
        while True:
            try:
                data = await self._post(body)
                break
            except _Retryable as e:
                if attempt >= self.retry.max_retries:
                    raise LLMError(
                        f"{self.url}: {e} (gave up after {attempt + 1} attempts)", e.kind
                    ) from None
                delay = self.retry.delay(attempt, e.retry_after)
                attempt += 1
                self.stats.retries += 1
                await asyncio.sleep(delay)
        text, prompt_tokens, completion_tokens = self._read_completion(data)
        return ChatResponse(text, prompt_tokens, completion_tokens,
                            time.perf_counter() - start)

    async def _post(self, body: bytes) -> Any:
        session = self._session
        if session is None or session.closed:  # a new loop drops it: see _on_new_loop
            session = await self._new_session()
        try:
            async with session.post(self._url, data=body) as resp:
                status = resp.status
                raw = await resp.read()
                if status >= 300:
                    detail = f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}"
                    if status in _RETRY_STATUS:
                        retry_after = None
                        if status in (429, 503):
                            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                        raise _Retryable(f"HTTP{status}", detail, retry_after)
                    raise LLMError(f"{self.url}: {detail}", f"HTTP{status}")
        except TimeoutError:
            raise _Retryable("TimeoutError", f"no answer within {self.timeout_s:g}s") from None
        except aiohttp.ClientError as e:
            raise _Retryable(type(e).__name__, f"{type(e).__name__}: {e}") from None
        try:
            return fastjson.loads(raw)
        except ValueError:
            snippet = raw[:120].decode("utf-8", "replace")
            raise _Retryable("InvalidJSON", f"body is not JSON: {snippet!r}") from None

    def _read_completion(self, data: Any) -> tuple[str, int, int]:
        try:
            message = data["choices"][0]["message"]
            content = message.get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise LLMError(f"{self.url}: reply has no choices[0].message: "
                           f"{str(data)[:200]}", "BadResponse") from None
        if content is None:
            text = ""
        elif isinstance(content, str):
            text = content
        elif isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
            text = "".join(p.get("text", "") for p in content if isinstance(p, dict)
                           and isinstance(p.get("text", ""), str))
        else:
            raise LLMError(f"{self.url}: message content is a {type(content).__name__}, "
                           "not text", "BadResponse")
        usage = data.get("usage") if isinstance(data, dict) else None
        prompt_tokens = completion_tokens = 0
        if isinstance(usage, dict):
            prompt_tokens = _as_int(usage.get("prompt_tokens"))
            completion_tokens = _as_int(usage.get("completion_tokens"))
        return text, prompt_tokens, completion_tokens


async def _closer(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await session.close()


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
