"""The offline backend: task registry, unknown kinds, failures counted, token estimates."""

from __future__ import annotations

import json

import pytest

from zhufu.pipeline.llm.base import ChatRequest, LLMError
from zhufu.pipeline.llm.offline import (
    OfflineBackend,
    approx_tokens,
    register_task,
    register_task_provider,
    task_kinds,
)


async def test_judge_kind_answers_the_output_contract() -> None:
    backend = OfflineBackend()
    req = ChatRequest(messages=[{"role": "user", "content": "请评价这条祝福语"}],
                      task={"kind": "judge", "query": "生日祝福语",
                            "response": "生日快乐！愿你的新一岁像晨光一样明亮。"})
    out = json.loads((await backend.chat(req)).text)
    assert set(out) >= {"scores", "overall", "verdict", "reason"}
    assert out["verdict"] in ("good", "bad") and 1 <= out["overall"] <= 5
    assert backend.stats.calls == 1 and backend.stats.prompt_tokens > 0


async def test_unknown_kind_and_missing_task_fail_with_a_named_error() -> None:
    backend = OfflineBackend()
    with pytest.raises(LLMError, match="no handler for task kind 'no-such-kind'"):
        await backend.chat(ChatRequest(messages=[], task={"kind": "no-such-kind"}))
    with pytest.raises(LLMError, match="no task"):
        await backend.chat(ChatRequest(messages=[{"role": "user", "content": "hi"}]))
    replies = await backend.chat_many([ChatRequest(messages=[], task={"kind": "judge"})])
    assert isinstance(replies[0], LLMError) and "query" in str(replies[0])
    assert backend.stats.failures == 3


async def test_registered_kinds_and_providers() -> None:
    @register_task("zhufu_test_echo")
    def echo(task: dict) -> dict:
        return {"echo": task["text"]}

    register_task_provider("zhufu_test_lazy", "zhufu.pipeline.llm.no_such_module_for_test")
    assert {"judge", "zhufu_test_echo", "zhufu_test_lazy"} <= set(task_kinds())
    backend = OfflineBackend()
    reply = await backend.chat(ChatRequest(messages=[], task={"kind": "zhufu_test_echo",
                                                              "text": "祝福"}))
    assert json.loads(reply.text) == {"echo": "祝福"} and reply.latency_s == 0.0
    with pytest.raises(ModuleNotFoundError):
        await backend.chat(ChatRequest(messages=[], task={"kind": "zhufu_test_lazy"}))


def test_token_estimate() -> None:
    assert approx_tokens("生日快乐生日快乐") == 5
    assert approx_tokens("hello world!") == 3
    assert approx_tokens("") == 1
