"""The readability gate: degenerate text scores 1 on every dimension and is labelled bad,
good greetings pass untouched; a principle veto also caps the dimension it breaks."""

from __future__ import annotations

import pytest

from zhufu.pipeline.analysis import analyse, default_weights, extract_features
from zhufu.pipeline.analysis.degeneracy import READABLE_AT, readability, signals
from zhufu.pipeline.analysis.scoring import gated
from zhufu.pipeline.judge import JudgeState
from zhufu.pipeline.judge.judge import DEFAULT_JUDGE_FILE

Q = "闺蜜生日祝福语 幽默一点"
GOOD = ("恭喜你在地球上成功续费一年！新的一岁，钱包鼓鼓，烦恼清零，体重随缘，"
        "我永远是你的头号粉丝。")

DEGENERATE = [
    ("", "no_chinese"), ("。", "no_chinese"), ("，，，，", "no_chinese"),
    ("Happy birthday!", "no_chinese"), ("🎂🎉🎁", "no_chinese"),
    ("来寿快乐，，。祝，！\n\n\n！。。您愿，，，，…", "punct_soup"),
    ("快快快快快快快快", "char_run"), ("生日快乐生日快乐生日快乐生日快乐", "self_repeat"),
    (GOOD + GOOD, "self_repeat"), (Q, "query_echo"), ("请只生成一条祝福语：" + Q, "query_echo"),
    ("钱包你鼓新岁鼓清一的零烦恼随体缘重", "scrambled"),
    ("抱歉，我无法完成这个请求。", "refusal"), ("好的，以下是一条生日祝福语：", "refusal"),
    ("恭喜你在地球上成功续费一年！新的一岁，钱包鼓鼓，烦恼", "cut_off"),
    ("恭喜升职，实至名归！新岗位上，", "dangling"),
]


@pytest.mark.parametrize(("text", "signal"), DEGENERATE)
def test_degenerate_text_is_caught_by_its_signal(text: str, signal: str) -> None:
    sig = signals(Q, text)
    assert sig[signal] > 0, sig
    assert readability(Q, text).readability < READABLE_AT


@pytest.mark.parametrize("text", [
    GOOD, "心之所向，皆如所愿", "哈哈哈，生日快乐！又长一岁，还是那么可爱。",
    "爸，生日快乐……今天的酒我陪您喝！", "生日快乐！愿你天天开心！🎂",
    "岁月如诗，爱你如歌。", "愿时光清浅，所遇皆甜。"])
def test_good_greetings_keep_full_readability(text: str) -> None:
    assert readability(Q, text).readability == 1.0, signals(Q, text)


def test_the_gate_agrees_with_the_shared_readable_check() -> None:
    """Whatever readable() rejects, the judge's gate rejects (the monitor and the reward agree)."""
    from zhufu.pipeline.evaluation.readable import readable

    for text, _ in DEGENERATE:
        if not readable(text, Q):
            assert readability(Q, text).readability < READABLE_AT, text
    assert not readable("生日快乐！！愿你天天开心", Q)
    assert signals(Q, "生日快乐！！愿你天天开心")["doubled_punct"] == 1.0


def test_gate_gives_one_on_every_dimension_and_a_bad_verdict() -> None:
    weights = JudgeState.load(DEFAULT_JUDGE_FILE).weights
    for text in ("。", "，，，，", "快快快快快快快快", "Happy birthday!"):
        a = analyse(Q, text, weights)
        assert a.verdict == "bad" and "degenerate" in a.vetoes
        assert all(s.score == 1.0 for s in a.dimensions.values()), a.to_output()
        assert "不是一条祝福" in a.reason
    good = analyse(Q, GOOD, weights)
    assert good.verdict == "good" and good.overall > 3.5, good.reason
    assert gated(4.0, 1.0) == 4.0 and gated(4.0, 0.0) == 1.0


def test_a_principle_veto_caps_its_dimension() -> None:
    weights = default_weights()
    q = "好朋友结婚的祝福语"
    clean = "恭喜你们喜结良缘！愿你们的日子甜在心里，暖在手心，携手把平凡的清晨过成诗。"
    taboo = "恭喜你们喜结良缘！愿你们的日子甜在心里，就算哪天离婚了，也记得今天的清晨。"
    a, b = analyse(q, clean, weights), analyse(q, taboo, weights)
    assert b.verdict == "bad" and "taboo" in b.vetoes
    assert b.dimensions["cultural_appropriateness"].score <= 1.5
    assert a.dimensions["cultural_appropriateness"].score > 3
    assert b.overall < a.overall
    f = extract_features(q, taboo)
    assert weights.cap_of(f.values, "cultural_appropriateness") == 1.5
    assert weights.cap_of(f.values, "creativity") == 5.0


def test_a_principle_veto_caps_the_overall_score() -> None:
    """A well-written greeting for the wrong occasion is not a good answer: the overall
    (what a GRPO reward optimises) drops to the overall cap, not just one dimension."""
    weights = default_weights()
    q = "同事新婚祝福语 简短大方"
    right = "亲爱的同事，新婚快乐！愿你们的日子甜在心里，暖在手心，携手走过每一个清晨。"
    wrong = "亲爱的同事，中秋快乐！愿你们的日子甜在心里，暖在手心，携手走过每一个清晨。"
    a, b = analyse(q, right, weights), analyse(q, wrong, weights)
    assert "wrong_occasion" in b.vetoes and b.verdict == "bad"
    assert b.overall <= weights.overall_caps["wrong_occasion"] < 3.0 < a.overall
    assert weights.overall_cap(extract_features(q, right).values) == 5.0
    # the cap is the judge's (saved, loaded), and a judge without one is not capped
    loaded = type(weights).from_dict(weights.to_dict())
    assert loaded.overall_caps == weights.overall_caps
    weights.overall_caps = {}
    assert analyse(q, wrong, weights).overall > 3.0
