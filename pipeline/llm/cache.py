"""An on-disk response cache that wraps any backend, so a rerun costs no call.

The key is the SHA-256 of the canonical JSON of the backend's :meth:`identity` (backend,
model, default sampling parameters) and the request (messages, structured task, temperature,
max_tokens, json_output, seed). Each entry is one small JSON file,
``<dir>/<key[:2]>/<key>.json``, written to a temporary file and moved into place with
``os.replace``: readers in any process see a whole entry or none, and two processes writing
the same key both write the same answer. Only successful answers are stored.

Within one event loop, identical requests in flight at the same time share one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from zhufu.pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, LLMError

CACHE_VERSION = 1

log = logging.getLogger(__name__)


def cache_key(identity: dict[str, Any], request: ChatRequest) -> str:
    """The hex SHA-256 that names ``request``'s answer from a backend with ``identity``."""
    payload = {"v": CACHE_VERSION, "backend": identity, "request": asdict(request)}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """Key → stored :class:`ChatResponse` fields, one JSON file per key."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> ChatResponse | None:
        """The stored answer, or None when absent or unreadable (then it is simply redone)."""
        try:
            data = json.loads(self.path(key).read_bytes())
            return ChatResponse(text=str(data["text"]),
                                prompt_tokens=int(data.get("prompt_tokens", 0)),
                                completion_tokens=int(data.get("completion_tokens", 0)),
                                latency_s=0.0, cached=True)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, response: ChatResponse) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = json.dumps({"text": response.text, "prompt_tokens": response.prompt_tokens,
                           "completion_tokens": response.completion_tokens,
                           "latency_s": response.latency_s, "stored_at": time.time()},
                          ensure_ascii=False).encode("utf-8")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("??/*.json"))


class CachedBackend(ChatBackend):
    """``inner`` behind a :class:`ResponseCache`; shares ``inner.stats`` (hits counted there).

    A hit takes no slot of ``inner``'s concurrency and sends nothing. Misses go through
    ``inner.chat`` (its slots, retries and counters) and are stored when they succeed.
    """

    def __init__(self, inner: ChatBackend, directory: str | os.PathLike[str]) -> None:
        super().__init__(inner.concurrency)
        self.inner = inner
        self.name = f"cached-{inner.name}"
        self.stats = inner.stats
        self.cache = ResponseCache(directory)
        self._identity = inner.identity()
        self._inflight: dict[str, asyncio.Future[ChatResponse]] = {}
        self._inflight_loop: asyncio.AbstractEventLoop | None = None

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    async def _chat(self, request: ChatRequest) -> ChatResponse:  # pragma: no cover - unused
        return await self.chat(request)

    async def chat(self, request: ChatRequest, *, priority: int = 0) -> ChatResponse:
        start = time.perf_counter()
        key = cache_key(self._identity, request)
        hit = self.cache.get(key)
        if hit is not None:
            return self._hit(hit, start)
        loop = asyncio.get_running_loop()
        if self._inflight_loop is not loop:
            self._inflight, self._inflight_loop = {}, loop
        pending = self._inflight.get(key)
        if pending is not None:  # the same request is already on its way: wait for it
            try:
                shared = await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                # the leader was cancelled: go ourselves
                return await self.chat(request, priority=priority)
            except LLMError:
                # the leader's failure was counted once; this caller counts its own
                self.stats.record_failure("SharedFailure")
                raise
            return self._hit(shared, start)
        future: asyncio.Future[ChatResponse] = loop.create_future()
        self._inflight[key] = future
        try:
            response = await self.inner.chat(request, priority=priority)
        except BaseException as e:
            if isinstance(e, LLMError):
                future.set_exception(e)
                future.exception()  # retrieved: no "never retrieved" warning
            else:
                future.cancel()
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(response)
        try:
            self.cache.put(key, response)
        except OSError as e:  # a full disk costs the cache, not the answer
            log.warning("response cache %s: cannot store %s: %s", self.cache.directory, key, e)
        return response

    def _hit(self, response: ChatResponse, start: float) -> ChatResponse:
        hit = ChatResponse(response.text, response.prompt_tokens, response.completion_tokens,
                           time.perf_counter() - start, cached=True)
        self.stats.record(hit)
        return hit

    async def aclose(self) -> None:
        await self.inner.aclose()
