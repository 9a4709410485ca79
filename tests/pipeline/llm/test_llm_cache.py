"""The on-disk response cache: a rerun sends nothing, keys separate what must differ,
failures are not stored, identical in-flight calls share one request, entries are atomic.

Network tests use the real aiohttp server of conftest; the key/offline-style tests use a tiny
counting backend defined here (a test double, not a flag in the code).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from zhufu.pipeline.llm import ChatBackend, ChatRequest, ChatResponse, LLMError
from zhufu.pipeline.llm.cache import CachedBackend, ResponseCache, cache_key
from zhufu.pipeline.llm.openai_compat import OpenAIBackend
from zhufu.pipeline.llm.retry import RetryPolicy

pytestmark = pytest.mark.timeout(20)


def req(text: str = "写一句中秋祝福", **kw: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


def http_backend(server: Any, model: str = "m", **kw: Any) -> OpenAIBackend:
    return OpenAIBackend(model, server.base_url, api_key_env=None,
                         retry=RetryPolicy(max_retries=0), **kw)


class CountingBackend(ChatBackend):
    """Answers from ``task`` (like the offline analyser) and counts its calls."""

    name = "counting"

    def __init__(self) -> None:
        super().__init__(concurrency=8)
        self.seen = 0

    async def _chat(self, request: ChatRequest) -> ChatResponse:
        self.seen += 1
        await asyncio.sleep(0.02)
        return ChatResponse(f"task={request.task}", prompt_tokens=3, completion_tokens=2)


async def test_rerun_costs_no_http_call(chat_server: Any, tmp_path: Path) -> None:
    async with CachedBackend(http_backend(chat_server), tmp_path) as llm:
        first = await llm.chat(req("你好"))
        again = await llm.chat(req("你好"))
    assert chat_server.hits == 1
    assert not first.cached and again.cached and again.text == first.text == "echo: 你好"
    assert (again.prompt_tokens, again.completion_tokens) == (11, 7)
    assert llm.stats.calls == 2 and llm.stats.cache_hits == 1
    assert llm.stats.prompt_tokens == 11  # the hit spent nothing
    # a new process would build a new backend over the same folder
    async with CachedBackend(http_backend(chat_server), tmp_path) as rerun:
        results = await rerun.chat_many([req("你好")] * 3)
    assert chat_server.hits == 1
    assert all(r.cached for r in results) and rerun.stats.cache_hits == 3


async def test_key_separates_model_params_and_seed(chat_server: Any, tmp_path: Path) -> None:
    async with CachedBackend(http_backend(chat_server), tmp_path) as llm, \
            CachedBackend(http_backend(chat_server, model="other"), tmp_path) as other, \
            CachedBackend(http_backend(chat_server, temperature=0.1), tmp_path) as cold:
        await llm.chat(req())
        await llm.chat(req(temperature=0.0))
        await llm.chat(req(max_tokens=5))
        await llm.chat(req(seed=1))
        await llm.chat(req(seed=2))
        await llm.chat(req(json_output=True))
        await other.chat(req())
        await cold.chat(req())
        assert chat_server.hits == 8
        await llm.chat(req(seed=2))
        await other.chat(req())
        assert chat_server.hits == 8
    assert len(ResponseCache(tmp_path)) == 8


async def test_task_is_part_of_the_key(tmp_path: Path) -> None:
    inner = CountingBackend()
    llm = CachedBackend(inner, tmp_path)
    a = await llm.chat(ChatRequest(messages=[], task={"query": "生日", "n": 1}))
    b = await llm.chat(ChatRequest(messages=[], task={"n": 1, "query": "生日"}))
    c = await llm.chat(ChatRequest(messages=[], task={"query": "春节", "n": 1}))
    assert inner.seen == 2 and b.cached and not c.cached
    assert a.text == b.text != c.text


async def test_failures_are_not_cached(chat_server: Any, tmp_path: Path) -> None:
    chat_server.plan = ["400"]
    async with CachedBackend(http_backend(chat_server), tmp_path) as llm:
        with pytest.raises(LLMError):
            await llm.chat(req())
        response = await llm.chat(req())
    assert not response.cached and chat_server.hits == 2
    assert llm.stats.failures == 1 and llm.stats.cache_hits == 0


async def test_identical_calls_in_flight_share_one_request(chat_server: Any,
                                                           tmp_path: Path) -> None:
    chat_server.plan = ["slow"]
    async with CachedBackend(http_backend(chat_server), tmp_path) as llm:
        results = await llm.chat_many([req("同")] * 10 + [req("异")])
    assert chat_server.hits == 2
    assert [r.text for r in results] == ["echo: 同"] * 10 + ["echo: 异"]
    assert sum(r.cached for r in results) == 9 and llm.stats.cache_hits == 9


async def test_shared_failure_reaches_every_waiter(chat_server: Any, tmp_path: Path) -> None:
    chat_server.plan = ["hang"]
    async with CachedBackend(OpenAIBackend("m", chat_server.base_url, api_key_env=None,
                                           timeout_s=0.2, retry=RetryPolicy(max_retries=0)),
                             tmp_path) as llm:
        results = await llm.chat_many([req()] * 3)
    assert all(isinstance(r, LLMError) for r in results)
    assert chat_server.hits == 1 and llm.stats.failures == 3


async def test_unreadable_entry_is_redone(tmp_path: Path) -> None:
    inner = CountingBackend()
    llm = CachedBackend(inner, tmp_path)
    request = ChatRequest(messages=[], task={"q": 1})
    await llm.chat(request)
    key = cache_key(inner.identity(), request)
    llm.cache.path(key).write_text('{"text": ')  # torn by something other than us
    redone = await llm.chat(request)
    assert not redone.cached and inner.seen == 2
    assert (await llm.chat(request)).cached


def _writer(directory: str, key: str, marker: str, n: int) -> None:
    cache = ResponseCache(directory)
    for _ in range(n):
        cache.put(key, ChatResponse(marker * 5000))


def test_writes_are_atomic_across_processes(tmp_path: Path) -> None:
    """Two processes rewrite one key while we read it: every read is a whole entry."""
    key = "ab" + "0" * 62
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), key, m, 300)) for m in "xy"]
    for p in procs:
        p.start()
    cache = ResponseCache(tmp_path)
    seen = set()
    while any(p.is_alive() for p in procs):
        hit = cache.get(key)
        if hit is not None:
            assert hit.text in ("x" * 5000, "y" * 5000)
            seen.add(hit.text[0])
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    assert seen and not list((tmp_path / "ab").glob(".tmp-*"))
