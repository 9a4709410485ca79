"""The Curator's debate turn: both agents' calls run at once without ``gather``'s extra task,
with ``gather``'s behaviour on failure and cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from zhufu.pipeline.curation.runner import Curator, RequestKeys, request_key
from zhufu.pipeline.llm import ChatRequest


async def _answer(log: list[str], name: str, delay: float, fail: bool = False) -> str:
    log.append(f"{name} sent")
    await asyncio.sleep(delay)
    if fail:
        log.append(f"{name} failed")
        raise RuntimeError(name)
    log.append(f"{name} answered")
    return name


def _run(coro: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Run ``coro`` and return its result and what the loop's exception handler saw."""
    seen: list[dict[str, Any]] = []

    async def main() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: seen.append(ctx))
        try:
            return await coro
        finally:
            await asyncio.sleep(0.05)  # let a call that runs on end

    return asyncio.run(main()), seen


def test_both_answers_in_order_first_sent_first() -> None:
    log: list[str] = []
    result, seen = _run(Curator._both(_answer(log, "advocate", 0.02), _answer(log, "critic", 0.0)))
    assert result == ("advocate", "critic") and not seen
    assert log[:2] == ["advocate sent", "critic sent"]  # concurrent: both out before any answer


@pytest.mark.parametrize("failing", ["advocate", "critic"])
def test_a_failure_is_raised_and_the_other_call_runs_on(failing: str) -> None:
    log: list[str] = []

    async def turn() -> Any:
        try:
            return await Curator._both(_answer(log, "advocate", 0.01, failing == "advocate"),
                                       _answer(log, "critic", 0.02, failing == "critic"))
        except RuntimeError as e:
            return f"raised {e}"

    result, seen = _run(turn())
    assert result == f"raised {failing}"
    other = "critic" if failing == "advocate" else "advocate"
    assert f"{other} answered" in log and not seen  # answered (journaled), nothing unretrieved


def test_both_failing_leaves_no_unretrieved_exception() -> None:
    log: list[str] = []

    async def turn() -> Any:
        with pytest.raises(RuntimeError, match="advocate"):
            await Curator._both(_answer(log, "advocate", 0.0, True),
                                _answer(log, "critic", 0.01, True))

    _, seen = _run(turn())
    assert "critic failed" in log and not seen


def test_cancelling_the_turn_cancels_both_calls() -> None:
    log: list[str] = []

    async def main() -> None:
        turn = asyncio.ensure_future(Curator._both(_answer(log, "advocate", 1.0),
                                                   _answer(log, "critic", 1.0)))
        await asyncio.sleep(0.01)
        turn.cancel()
        with pytest.raises(asyncio.CancelledError):
            await turn
        await asyncio.sleep(0.01)
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    _run(main())
    assert log == ["advocate sent", "critic sent"]


def test_request_keys_for_one_identity_are_request_key() -> None:
    identity = {"backend": "openai", "model": "m", "temperature": 0.7, "max_tokens": 512,
                "json_mode": False}
    keys = RequestKeys(identity)
    for req in (ChatRequest([{"role": "user", "content": "生日快乐"}]),
                ChatRequest([{"role": "user", "content": "x"}], task={"kind": "judge", "n": 1e-5},
                            temperature=0.0, json_output=True, seed=3)):
        assert keys(req) == request_key(identity, req)
    # the value journals written before were keyed with (they must still replay)
    import hashlib
    import json

    req = ChatRequest([{"role": "user", "content": "生日快乐"}], temperature=0.0)
    fields = {"messages": req.messages, "task": None, "temperature": 0.0, "max_tokens": None,
              "json_output": False, "seed": None}
    blob = json.dumps({"backend": identity, "request": fields}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"), default=str)
    assert keys(req) == hashlib.sha256(blob.encode()).hexdigest()
