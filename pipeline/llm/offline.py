"""The offline backend: answers structured requests with the deterministic principle analyser.

An LLM reads a request's ``messages``; this backend reads its ``task`` (a dict with a
``"kind"``) and hands it to the handler registered for that kind, which returns the dict an
LLM would have returned as JSON. Stages add their own kinds from their own modules::

    @register_task("critic")
    def critic(task: dict) -> dict: ...

or, to have a module imported only when its kind is first asked for,
``register_task_provider("critic", "zhufu.pipeline.curation.offline")``.
Calls take no time; token counts are estimates (about 1.5 Chinese characters per token,
4 other characters per token), so throughput figures stay comparable to LLM runs.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from zhufu.pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, LLMError

TaskHandler = Callable[[dict[str, Any]], dict[str, Any]]

_HANDLERS: dict[str, TaskHandler] = {}
_PROVIDERS: dict[str, str] = {}
_HAN = re.compile(r"[\u4e00-\u9fff]")


def register_task(kind: str) -> Callable[[TaskHandler], TaskHandler]:
    """Decorator: make ``handler(task) -> dict`` answer offline requests of ``kind``."""

    def decorate(handler: TaskHandler) -> TaskHandler:
        _HANDLERS[kind] = handler
        return handler

    return decorate


def register_task_provider(kind: str, module: str) -> None:
    """Import ``module`` (which registers ``kind``) the first time ``kind`` is requested."""
    _PROVIDERS[kind] = module


def task_kinds() -> list[str]:
    """Every kind this process can answer offline (registered or importable)."""
    return sorted(set(_HANDLERS) | set(_PROVIDERS))


def handler_for(kind: str) -> TaskHandler:
    """The handler for ``kind``; raises :class:`LLMError` naming an unknown kind."""
    if kind not in _HANDLERS and kind in _PROVIDERS:
        importlib.import_module(_PROVIDERS[kind])
    try:
        return _HANDLERS[kind]
    except KeyError:
        raise LLMError(f"offline backend: no handler for task kind {kind!r} "
                       f"(known: {', '.join(task_kinds()) or 'none'})") from None


def approx_tokens(text: str) -> int:
    """Rough token count: Chinese characters / 1.5 + other characters / 4 (at least 1)."""
    han = len(_HAN.findall(text))
    return max(1, round(han / 1.5 + (len(text) - han) / 4))


class OfflineBackend(ChatBackend):
    """A :class:`ChatBackend` that answers ``request.task`` locally, with zero latency."""

    name = "offline"

    async def _chat(self, request: ChatRequest) -> ChatResponse:
        task = request.task
        if not isinstance(task, dict) or not isinstance(task.get("kind"), str):
            raise LLMError("offline backend: the request carries no task with a 'kind'; "
                           "offline answers need ChatRequest(task={'kind': ...})")
        handler = handler_for(task["kind"])
        try:
            answer = handler(task)
        except LLMError:
            raise
        except Exception as e:  # a handler bug or bad task: a counted failure, not a crash
            raise LLMError(f"offline task {task['kind']!r} failed: {e}") from e
        text = json.dumps(answer, ensure_ascii=False)
        prompt = "".join(m.get("content", "") for m in request.messages)
        return ChatResponse(text=text, prompt_tokens=approx_tokens(prompt) if prompt else 0,
                            completion_tokens=approx_tokens(text), latency_s=0.0)


# --- the judge's kind ----------------------------------------------------------------------


@lru_cache(maxsize=32)
def _weights_from_json(text: str) -> Any:
    from zhufu.pipeline.analysis import JudgeWeights

    return JudgeWeights.from_dict(json.loads(text))


@register_task("judge")
def judge_task(task: dict[str, Any]) -> dict[str, Any]:
    """``{"kind": "judge", "query", "response", "weights"?}`` → the judge output contract.

    ``weights`` (optional) is a :class:`~zhufu.pipeline.analysis.JudgeWeights` or its dict.
    """
    from zhufu.pipeline.analysis import JudgeWeights, analyse

    query, response = task.get("query"), task.get("response")
    if not isinstance(query, str) or not isinstance(response, str):
        raise LLMError("offline judge task needs string fields 'query' and 'response'")
    weights = task.get("weights")
    if isinstance(weights, dict):
        weights = _weights_from_json(json.dumps(weights, sort_keys=True, ensure_ascii=False))
    elif weights is not None and not isinstance(weights, JudgeWeights):
        raise LLMError("offline judge task: 'weights' must be a JudgeWeights or its dict")
    return analyse(query, response, weights).to_output()
