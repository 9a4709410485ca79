"""The readability gate: degenerate text scores 1 on every dimension and is labelled bad,
good greetings pass untouched; a principle veto also caps the dimension it breaks."""

from __future__ import annotations

from pathlib import Path

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


#: The GRPO sample of `make run` that the judge gave 3.22 (the query it answered).
SOUP_QUERY, SOUP = "孩子考上大学的祝福语", "粽叶飘香化作满堂堂再展宏图再展宏图再展，客远大展身手。"


@pytest.mark.parametrize("text", [
    SOUP, "新年好新年好新年好，恭喜发财恭喜发财，新年好呀新年好。",  # a starter row labelled 0
    "恭喜高升！愿你前程似锦前程似锦前程，步步登高。",
    "毕业快乐，愿你一路顺风一路顺风一路，扬帆远航。",  # 一… passes only when written twice
    "七夕快乐，爱你一万年爱你一万年，我们永远在一起。",
    # a clause written twice in a row past the opening (a GRPO sample of `zhufu run`)
    "外婆，元旦快乐！愿您身体健康，笑口常开。愿您在心里。愿您在心里。",
    "老师，教师节快乐！身体健康，身体健康，桃李满天下。",
    # two or three clauses written again right after themselves past the opening (the first
    # is shaped like a GRPO sample of `zhufu run` the judge gave 3.49)
    "岳父，父亲节快乐！愿您身体硬朗，天天开心。愿您身体硬朗，天天开心。",
    "同学们，毕业快乐！愿你们乘风破浪，不负韶华。愿你们乘风破浪，不负韶华。前程似锦！",
    "亲爱的，生日快乐！星光为你点灯，晚风为你唱歌，花开为你作证。星光为你点灯，晚风为你唱歌，"
    "花开为你作证。",
    "王总，开业大吉！财源，广进，财源，广进，生意兴隆。",
    # a one-character clause echoing the end of the clause before (GRPO samples of `zhufu run`
    # the judge labelled good, 3.48 and 3.78)
    "亲爱的爸妈，诸事顺心，笑口常开，开，幸福安康！",
    "外公，欣逢您生日，特致以衷心的祝贺。恭祝您福寿绵长，长。"])
def test_a_phrase_stuttered_inside_a_clause_is_degenerate(text: str) -> None:
    sig = signals(SOUP_QUERY, text)
    assert sig["stutter"] == 1.0, sig
    assert readability(SOUP_QUERY, text).readability < READABLE_AT


@pytest.mark.parametrize("text", [
    "毕业快乐！以后我们一个城市一个城市地去见面，约好的旅行一个都不能少。",
    "闺女，高考顺利！考完这一场，想睡多久睡多久。愿你的努力都有回报。",
    "放假了想吃什么吃什么，想去哪儿去哪儿，生日快乐！",
    "恭喜恭喜恭喜你！新年快乐，高高兴兴，开开心心。",
    "新年快乐，新年快乐，愿你一年更比一年好。", "一步一步地往前走，一年又一年，平安喜乐。",
    # a doubled opening of two clauses is a chant; a clause pair repeated with a clause
    # between, or with one clause changed, is a refrain; a doubled clause pair of under
    # four characters in all is an interjection
    "新年好，过年好，新年好，过年好，祝您阖家欢乐！",
    "妈妈，生日快乐！愿您平安，愿您喜乐。谢谢您一路陪伴。愿您平安，愿您喜乐。",
    "哥们，元旦快乐！愿你升职，愿你加薪。愿你升职，愿你脱单。",
    "奶奶，寿比南山！好，好，好，好，您说什么都好。"])
def test_reduplication_and_repeats_across_clauses_are_no_stutter(text: str) -> None:
    assert signals(SOUP_QUERY, text)["stutter"] == 0.0


def test_the_stuttered_sample_scores_below_good_greetings() -> None:
    weights = JudgeState.load(DEFAULT_JUDGE_FILE).weights
    soup = analyse(SOUP_QUERY, SOUP, weights)
    good = analyse(SOUP_QUERY, "恭喜你考上理想的大学！十二年寒窗终于开花结果，愿你在新的校园里"
                   "遇见良师益友，把日子过得热气腾腾。", weights)
    assert soup.verdict == "bad" and "degenerate" in soup.vetoes and soup.overall == 1.0
    assert good.verdict == "good" and good.overall > 3.5, good.reason


def test_no_chosen_greeting_of_the_paper_stutters(shared_data: Path) -> None:
    """Across the paper's chosen greetings (6,310 of them) the signal never fires: it finds
    a sampler's loop, not a style."""
    from zhufu.pipeline.data import load_pairs

    chosen = [p.chosen for p in load_pairs(str(shared_data / "reward_data_train.json"))]
    assert len(chosen) > 6000
    assert [t for t in chosen if signals("", t)["stutter"]] == []
