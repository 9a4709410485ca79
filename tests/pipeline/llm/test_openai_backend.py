"""The OpenAI-compatible backend against a real aiohttp server on 127.0.0.1 (see conftest).

Proves: answers and token counts are read; 429 (with and without Retry-After), 5xx, hangs,
dropped connections and unreadable bodies are retried up to the cap and then fail with a
counted error; other 4xx fail at once; nothing hangs; the key goes out as a Bearer token
from the env or a secret file; at most ``concurrency`` requests are in flight.
"""

from __future__ import annotations

import asyncio
import pickle
import time
from typing import Any

import pytest

from zhufu.pipeline.llm import ChatRequest, LLMError, parse_json_output
from zhufu.pipeline.llm.openai_compat import OpenAIBackend, resolve_api_key
from zhufu.pipeline.llm.retry import RetryPolicy

pytestmark = pytest.mark.timeout(20)


def req(text: str = "写一句生日祝福", **kw) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


def backend(server: Any, **kw) -> OpenAIBackend:
    retry = kw.pop("retry", None) or RetryPolicy(
        max_retries=kw.pop("max_retries", 3), base_s=0.01, max_backoff_s=0.05,
        retry_after_cap_s=kw.pop("retry_after_cap_s", 5.0))
    kw.setdefault("api_key_env", None)
    return OpenAIBackend("test-model", server.base_url, retry=retry, **kw)


async def test_answer_tokens_and_body(chat_server: Any) -> None:
    async with backend(chat_server, temperature=0.3, max_tokens=64) as llm:
        response = await llm.chat(req("你好"))
        override = await llm.chat(req("再来", temperature=0.0, max_tokens=8, seed=7))
    assert response.text == "echo: 你好"
    assert (response.prompt_tokens, response.completion_tokens) == (11, 7)
    assert response.latency_s > 0 and not response.cached
    first, second = chat_server.bodies
    assert first == {"model": "test-model", "messages": [{"role": "user", "content": "你好"}],
                     "temperature": 0.3, "max_tokens": 64}
    assert (second["temperature"], second["max_tokens"], second["seed"]) == (0.0, 8, 7)
    assert override.text == "echo: 再来"
    assert llm.stats.calls == 2 and llm.stats.failures == 0
    assert llm.stats.prompt_tokens == 22 and llm.stats.completion_tokens == 14
    assert chat_server.auth == [None, None]  # no key configured: no header


async def test_json_mode_is_opt_in(chat_server: Any) -> None:
    async with backend(chat_server) as plain, backend(chat_server, json_mode=True) as strict:
        await plain.chat(req(json_output=True))
        await strict.chat(req(json_output=True))
        await strict.chat(req(json_output=False))
    assert [("response_format" in b) for b in chat_server.bodies] == [False, True, False]
    assert chat_server.bodies[1]["response_format"] == {"type": "json_object"}


async def test_429_without_retry_after_is_retried(chat_server: Any) -> None:
    chat_server.plan = ["429", "429"]
    async with backend(chat_server) as llm:
        response = await llm.chat(req("x"))
    assert response.text == "echo: x"
    assert chat_server.hits == 3
    assert llm.stats.retries == 2 and llm.stats.failures == 0


async def test_retry_after_is_honoured(chat_server: Any) -> None:
    chat_server.plan = [("429", "0.4")]
    async with backend(chat_server) as llm:
        start = time.perf_counter()
        await llm.chat(req())
        waited = time.perf_counter() - start
    assert 0.4 <= waited < 3
    assert chat_server.hits == 2


async def test_retry_after_is_capped(chat_server: Any) -> None:
    chat_server.plan = [("429", "3600"), ("503", "3600")]
    async with backend(chat_server, retry_after_cap_s=0.05) as llm:
        start = time.perf_counter()
        await llm.chat(req())
        assert time.perf_counter() - start < 2
    assert chat_server.hits == 3


async def test_5xx_retries_are_capped(chat_server: Any) -> None:
    chat_server.plan = ["500"] * 10
    async with backend(chat_server, max_retries=2) as llm:
        with pytest.raises(LLMError, match="HTTP 500") as err:
            await llm.chat(req())
    assert err.value.kind == "HTTP500"
    assert pickle.loads(pickle.dumps(err.value)).kind == "HTTP500"
    assert chat_server.hits == 3
    assert llm.stats.retries == 2 and llm.stats.failures == 1
    assert llm.stats.errors == {"HTTP500": 1}
    assert llm.stats.as_metrics()["llm_error_HTTP500"] == 1.0


async def test_other_4xx_fails_at_once(chat_server: Any) -> None:
    chat_server.plan = ["400"]
    async with backend(chat_server) as llm:
        with pytest.raises(LLMError, match="HTTP 400"):
            await llm.chat(req())
    assert chat_server.hits == 1 and llm.stats.retries == 0
    assert llm.stats.errors == {"HTTP400": 1}


async def test_hang_times_out_and_gives_up(chat_server: Any) -> None:
    chat_server.plan = ["hang", "hang", "hang"]
    async with backend(chat_server, timeout_s=0.2, max_retries=1) as llm:
        start = time.perf_counter()
        with pytest.raises(LLMError, match="no answer within 0.2s"):
            await llm.chat(req())
        assert time.perf_counter() - start < 2
    assert chat_server.hits == 2
    assert llm.stats.errors == {"TimeoutError": 1}


async def test_hang_then_answer(chat_server: Any) -> None:
    chat_server.plan = ["hang"]
    async with backend(chat_server, timeout_s=0.2) as llm:
        response = await llm.chat(req("后来"))
    assert response.text == "echo: 后来" and llm.stats.retries == 1


async def test_invalid_json_body_retried_then_counted(chat_server: Any) -> None:
    chat_server.plan = ["badjson", "badjson", "badjson"]
    async with backend(chat_server, max_retries=1) as llm:
        with pytest.raises(LLMError, match="not JSON"):
            await llm.chat(req())
        response = await llm.chat(req("ok"))  # one more bad body, then fine
        assert response.text == "echo: ok"
    assert llm.stats.errors == {"InvalidJSON": 1} and llm.stats.retries == 2
    assert chat_server.hits == 4


async def test_garbage_replies(chat_server: Any) -> None:
    chat_server.plan = ["nochoices", "intcontent", "nullcontent", "garbage"]
    async with backend(chat_server) as llm:
        with pytest.raises(LLMError, match="no choices"):
            await llm.chat(req())
        with pytest.raises(LLMError, match="content is a int"):
            await llm.chat(req())
        empty = await llm.chat(req())
        prose = await llm.chat(req(json_output=True))
    assert empty.text == ""
    assert parse_json_output(empty.text) is None
    assert "greeting" in prose.text and parse_json_output(prose.text) is None
    assert chat_server.hits == 4  # a reply of the wrong shape is not retried
    assert llm.stats.errors == {"BadResponse": 2}


async def test_connection_refused_is_retried_then_fails(chat_server_kit: Any) -> None:
    server, runner = await chat_server_kit.start()
    await chat_server_kit.stop(server, runner)  # nothing listens there any more
    async with backend(server, max_retries=2) as llm:
        with pytest.raises(LLMError, match="gave up after 3 attempts"):
            await llm.chat(req())
    assert llm.stats.retries == 2 and llm.stats.failures == 1


async def test_chat_many_mixed_failures_all_finish(chat_server: Any) -> None:
    chat_server.plan = ["500", "400", "hang", "badjson", "nochoices", "429"] + ["slow"] * 4
    async with backend(chat_server, max_retries=0, timeout_s=0.3, concurrency=8) as llm:
        results = await llm.chat_many([req(f"q{i}") for i in range(30)])
    failures = [r for r in results if isinstance(r, LLMError)]
    assert len(results) == 30 and len(failures) == 6
    for i, result in enumerate(results):  # answers come back in request order
        assert isinstance(result, LLMError) or result.text == f"echo: q{i}"
    assert llm.stats.calls == 30 and llm.stats.failures == 6
    assert sorted(llm.stats.errors) == ["BadResponse", "HTTP400", "HTTP429", "HTTP500",
                                        "InvalidJSON", "TimeoutError"]


async def test_concurrency_bound(chat_server: Any) -> None:
    chat_server.plan = ["slow"] * 24
    async with backend(chat_server, concurrency=4) as llm:
        results = await llm.chat_many([req(str(i)) for i in range(24)])
    assert all(not isinstance(r, LLMError) for r in results)
    assert chat_server.max_in_flight == 4


async def test_key_from_env_sent_as_bearer(chat_server: Any, monkeypatch) -> None:
    monkeypatch.setenv("ZHUFU_TEST_KEY", "sk-from-env")
    async with backend(chat_server, api_key_env="ZHUFU_TEST_KEY") as llm:
        await llm.chat(req())
        assert "sk-from-env" not in repr(llm)
    assert chat_server.auth == ["Bearer sk-from-env"]


async def test_key_from_file_preferred(chat_server: Any, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ZHUFU_TEST_KEY", "sk-from-env")
    secret = tmp_path / "api-key"
    secret.write_text("sk-from-file\n")
    async with backend(chat_server, api_key_env="ZHUFU_TEST_KEY",
                       api_key_file=str(secret)) as llm:
        await llm.chat(req())
    assert chat_server.auth == ["Bearer sk-from-file"]


def test_key_file_errors_name_the_file(tmp_path, monkeypatch) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(LLMError, match=str(missing)):
        resolve_api_key("X", missing)
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(LLMError, match="empty"):
        resolve_api_key("X", tmp_path / "empty")
    monkeypatch.delenv("ZHUFU_UNSET_KEY", raising=False)
    assert resolve_api_key("ZHUFU_UNSET_KEY") is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="http"):
        OpenAIBackend("m", "vllm:8000/v1")
    with pytest.raises(ValueError, match="concurrency"):
        OpenAIBackend("m", "http://x/v1", concurrency=0)


def test_survives_a_new_event_loop_per_batch(chat_server_kit: Any) -> None:
    """Stages may call asyncio.run once per batch: session and call slots follow the loop."""
    llm = OpenAIBackend("m", "http://127.0.0.1:9/v1", api_key_env=None, concurrency=2)

    async def one_batch() -> list[str]:
        server, runner = await chat_server_kit.start()
        llm.url = f"{server.base_url}/chat/completions"
        try:
            results = await llm.chat_many([req("a"), req("b"), req("c")])
        finally:
            await chat_server_kit.stop(server, runner)
        return [r.text for r in results if not isinstance(r, LLMError)]

    assert asyncio.run(one_batch()) == ["echo: a", "echo: b", "echo: c"]
    first_session = llm._session
    assert first_session is not None and first_session.closed  # closed when its loop ended
    assert asyncio.run(one_batch()) == ["echo: a", "echo: b", "echo: c"]
    assert llm._session is not first_session and llm._session.closed
