"""The GRPO reward-hacking monitor: readable share of the scored completions, warnings."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from zhufu.pipeline.train.readable_monitor import ReadableMonitor, monitored

GOOD = "妈妈，生日快乐！愿您身体健康，天天开心。"
SOUP = "来寿快乐，，。祝，！"


def test_monitor_warns_each_time_the_share_falls_a_further_step(
        caplog: pytest.LogCaptureFixture) -> None:
    monitor = ReadableMonitor(drop=0.1)
    with caplog.at_level(logging.WARNING):
        assert monitor.record(0.9, step=0) is None  # the baseline
        assert monitor.record(0.85, step=1) is None  # within 0.1
        first = monitor.record(0.75, step=2)
        assert first is not None and "0.75" in first and "0.90" in first and "step 2" in first
        assert monitor.record(0.72, step=3) is None  # not a further 0.1 down
        assert monitor.record(0.60, step=4) is not None
        assert monitor.record(0.40, step=5, warn=False) is None  # another rank: record only
    assert len(monitor.warnings) == 2 and sum("readable share" in r.message
                                              for r in caplog.records) == 2
    assert monitor.metrics() == {"readable_share/first": 0.9, "readable_share/last": 0.4,
                                 "readable_share/min": 0.4, "readable_share/warnings": 2.0}
    assert ReadableMonitor().metrics() == {}
    with pytest.raises(ValueError, match="drop"):
        ReadableMonitor(drop=0)


def test_monitored_reward_passes_values_through_and_logs_the_share() -> None:
    """The wrapped reward's values are unchanged; the share of the same completions goes to
    TRL's log_metric (conversational completions and the query column, as TRL passes them)."""
    seen: list[tuple[str, float]] = []

    def reward(prompts, completions, **kw):  # noqa: ANN001, ANN202 - a TRL reward function
        assert "log_metric" in kw  # TRL's own kwargs still reach the reward
        return [float(len(c[0]["content"])) for c in completions]

    monitor = ReadableMonitor()
    wrapped = monitored(reward, monitor)
    completions = [[{"role": "assistant", "content": t}] for t in (GOOD, SOUP, GOOD, "")]
    prompts = [[{"role": "user", "content": "给妈妈的生日祝福"}]] * 4
    state = SimpleNamespace(global_step=7, is_world_process_zero=True)
    values = asyncio.run(wrapped(prompts, completions, query=["给妈妈的生日祝福"] * 4,
                                 trainer_state=state,
                                 log_metric=lambda k, v: seen.append((k, v))))
    assert values == [float(len(GOOD)), float(len(SOUP)), float(len(GOOD)), 0.0]
    assert seen == [("readable_share", 0.5), ("wrong_occasion_share", 0.0)]
    assert monitor.shares == [0.5] and monitor.wrong_occasion == [0.0]


def test_monitored_reward_logs_the_wrong_occasion_share() -> None:
    """Among completions whose query names an occasion, the share naming another one; a
    batch whose queries name none logs no wrong-occasion share."""
    seen: list[tuple[str, float]] = []
    monitor = ReadableMonitor()
    wrapped = monitored(lambda prompts, completions, **kw: [0.0] * len(completions), monitor)
    texts = ["闺蜜，元旦快乐！愿你天天开心。", "闺蜜，生日快乐！愿你天天开心。", GOOD, GOOD]
    asyncio.run(wrapped(["q"] * 4, texts, query=["闺蜜生日祝福语"] * 3 + ["给妈妈的祝福语"],
                        log_metric=lambda k, v: seen.append((k, v))))
    assert ("wrong_occasion_share", pytest.approx(1 / 3)) in seen
    asyncio.run(wrapped(["q"], [GOOD], query=["给妈妈的祝福语"],
                        log_metric=lambda k, v: seen.append((k, v))))
    assert [k for k, _ in seen].count("wrong_occasion_share") == 1
    for share in (0.5, 0.5, 0.25, 0.0):
        monitor.record(1.0)
        monitor.record_wrong_occasion(share)
    metrics = monitor.metrics()
    assert metrics["wrong_occasion_share/first"] == pytest.approx(1 / 3)  # the first batch
    assert metrics["wrong_occasion_share/last"] == 0.0


def test_monitored_async_reward_and_an_echoed_query() -> None:
    async def reward(prompts, completions, **kw):  # noqa: ANN001, ANN202
        return [1.0] * len(completions)

    monitor = ReadableMonitor()
    out = asyncio.run(monitored(reward, monitor)(["闺蜜生日祝福语 幽默一点"] * 2,
                                                 ["闺蜜生日祝福语", GOOD],
                                                 query=["闺蜜生日祝福语 幽默一点"] * 2))
    assert out == [1.0, 1.0] and monitor.shares == [0.5]  # the echo is not readable
