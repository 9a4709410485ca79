"""The wrong-occasion rule of the run report: the query's occasion against the text's."""

from __future__ import annotations

import pytest

from zhufu.pipeline.evaluation.occasion import wrong_occasion, wrong_occasion_share


@pytest.mark.parametrize(("query", "text", "wrong"), [
    ("闺蜜生日祝福语 幽默一点", "闺蜜，元旦快乐！你放心大胆往前冲。", True),
    ("同事新婚祝福语 简短大方", "亲爱的同事，中秋快乐！愿你在新的一年所行皆坦途。", True),
    ("同事新婚祝福语 简短大方", "亲爱的同事，新婚快乐，百年好合！", False),
    # compatible occasions: a longevity celebration is a birthday, Qixi suits a wedding
    ("奶奶八十大寿祝福语", "奶奶，生日快乐！福如东海，寿比南山。", False),
    ("结婚祝福语", "七夕遇良人，新婚快乐！", False),
    # naming no occasion is not wrong; a query without an occasion has no wrong one
    ("闺蜜生日祝福语", "愿你眼里有光，心里有爱。", False),
    ("给妈妈的祝福语", "妈，中秋快乐！", False),
    # GRPO samples of a `zhufu run` (main 769ecd3) that named an occasion the lexicon lacked:
    # a housewarming and a recovery for a wedding, a promotion for a university admission,
    # a recovery and an exam for a birthday
    ("同事新婚祝福语 简短大方", "亲爱的同事，新家快乐！愿你很快就能恢复元气。", True),
    ("孩子考上大学的祝福语", "闺女，恭喜高升！", True),
    ("闺蜜生日祝福语", "我的好闺蜜，祝你早日康复！沉着应考，一切顺利。", True),
    ("朋友生病住院的祝福", "愿你早日痊愈，恢复元气！", False),
    ("朋友乔迁新居祝福语", "新家快乐！愿你安居乐业。", False),
    ("同事升职祝福语", "恭喜高升！前程似锦。", False),
    # the same words inside other occasions' own phrases are not those occasions
    ("同事新婚祝福语", "祝你们新婚快乐，共同经营美满的新家庭。", False),
    ("春节给领导的祝福", "新年快乐，祝您步步高升！", False),
])
def test_wrong_occasion(query: str, text: str, wrong: bool) -> None:
    assert wrong_occasion(query, text) is wrong


def test_share_counts_only_queries_with_an_occasion() -> None:
    queries = ["闺蜜生日祝福语", "闺蜜生日祝福语", "给妈妈的祝福语", "退休祝福语"]
    texts = ["闺蜜，元旦快乐！", "闺蜜，生日快乐！", "妈，中秋快乐！", "恭喜光荣退休！"]
    assert wrong_occasion_share(queries, texts) == (pytest.approx(1 / 3), 3)
    assert wrong_occasion_share(["给妈妈的祝福语"], ["妈，中秋快乐！"]) == (0.0, 0)
    with pytest.raises(ValueError):
        wrong_occasion_share(["闺蜜生日祝福语"], [])


def test_share_matches_the_rule_per_greeting() -> None:
    queries = ["同事新婚祝福语", "孩子考上大学的祝福语", "同事升职祝福语", "给妈妈的祝福语"]
    texts = ["新家快乐！", "恭喜高升！", "恭喜高升！", "新家快乐！"]
    flags = [wrong_occasion(q, t) for q, t in zip(queries, texts, strict=True)]
    assert flags == [True, True, False, False]
    assert wrong_occasion_share(queries, texts) == (pytest.approx(2 / 3), 3)
