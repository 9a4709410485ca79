"""Rule rewards and the judge reward on greetings with known faults."""

from __future__ import annotations

import asyncio
import doctest

import zhufu.pipeline.rewards.rules as rules
from zhufu.pipeline.judge import Judge
from zhufu.pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, LLMError
from zhufu.pipeline.llm.offline import OfflineBackend
from zhufu.pipeline.rewards.judge_reward import JudgeReward

GOOD = "生日快乐！今天的蛋糕我包了，愿你往后每一年都像今天这样，笑得比烛光还亮。"
LISTED = "好的，以下是几条祝福语：\n1. 生日快乐！\n2. 天天开心！\n3. 万事如意！"
REPEATED = "生日快乐生日快乐生日快乐生日快乐生日快乐生日快乐！"


def test_doctests() -> None:
    import zhufu.pipeline.rewards as rewards

    assert doctest.testmod(rules).failed == 0
    result = doctest.testmod(rewards)
    assert result.attempted >= 2 and result.failed == 0


def test_a_failed_reward_moves_no_advantage_whatever_its_scale() -> None:
    """One rule for every reward: a failure gets the mean of its prompt's other completions,
    so it is neutral inside GRPO's group normalisation on a [0, 1] rule as on an RM logit."""
    import asyncio

    from zhufu.pipeline.train.grpo_setup import guarded

    def rm_like(prompts, completions, **kw):  # noqa: ANN001, ANN202
        return [None if c == "?" else {"a": -7.5, "b": 12.5}[c] for c in completions]

    failures: dict[str, int] = {}
    out = asyncio.run(guarded(rm_like, "rm", failures)(["p", "p", "p", "q", "q"],
                                                       ["a", "?", "b", "?", "?"]))
    assert out == [-7.5, 2.5, 12.5, 2.5, 2.5] and failures == {"rm": 3}


def test_format_reward_ranks_one_clean_greeting_first() -> None:
    got = rules.format_reward(["p"] * 2, [GOOD, LISTED], query=["生日祝福语"] * 2)
    assert got[0] == 1.0 and got[1] < 0.5


def test_repetition_and_length_rewards() -> None:
    rep = rules.repetition_reward(["p"] * 2, [GOOD, REPEATED], query=["生日祝福语"] * 2)
    assert rep[0] > rep[1]
    short = rules.length_reward(["p"] * 2, ["生日快乐", GOOD], query=["生日祝福语 简短"] * 2)
    assert short[1] == 1.0 and short[0] < 1.0


def test_chat_format_completions_are_read() -> None:
    chat = [[{"role": "assistant", "content": GOOD}]]
    assert rules.format_reward([[{"role": "user", "content": "生日祝福语"}]], chat) == [1.0]


class FlakyBackend(ChatBackend):
    """Test double: fails on greetings containing 'boom', otherwise asks the offline judge."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = OfflineBackend()
        self.seen = 0

    async def _chat(self, request: ChatRequest) -> ChatResponse:
        self.seen += 1
        if "boom" in request.task["response"]:
            raise LLMError("server said 500")
        return await self.inner._chat(request)


def test_judge_reward_neutral_on_failure_and_cached() -> None:
    backend = FlakyBackend()
    reward = JudgeReward(Judge(backend))
    queries = ["生日祝福语"] * 3
    out = asyncio.run(reward(["p"] * 3, [GOOD, "boom", LISTED], query=queries))
    assert out[1] is None and reward.failures == 1  # the guard gives it the neutral value
    assert out[0] > out[2]
    assert 0.0 <= min(out[0], out[2]) and max(out[0], out[2]) <= 1.0
    calls = backend.seen
    again = asyncio.run(reward(["p"] * 3, [GOOD, "boom", LISTED], query=queries))
    assert again == out and backend.seen == calls  # answered from the cache


def test_binary_judge_reward_is_the_verdict() -> None:
    reward = JudgeReward(Judge(OfflineBackend()), binary=True)
    out = asyncio.run(reward(["p"] * 2, [GOOD, LISTED], query=["生日祝福语"] * 2))
    assert out == [1.0, 0.0]
