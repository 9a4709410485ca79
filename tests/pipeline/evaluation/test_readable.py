"""The shared readability check: each rule fires on its own failure and not on good text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhufu.pipeline.data import starter_greetings
from zhufu.pipeline.evaluation.readable import RULES, readability, readable, readable_share

GOOD = [
    "妈妈，生日快乐！愿您身体健康，天天开心。",
    "爸，生日快乐！今年换我给您做一桌菜。",
    "恭喜你们喜结良缘！愿往后的日子有说不完的话，也有吃不腻的饭。",
    "新年快乐！愿你2026年所求皆如愿，所行皆坦途！🎉",
    "祝老师教师节快乐……您当年那句“别急，慢慢来”，我到现在还记得。",
    "百年好合，永结同心",
    "“平安喜乐”四个字送给你，也送给往后的每一天。",
]


@pytest.mark.parametrize("text", GOOD)
def test_good_greetings_pass_every_rule(text: str) -> None:
    assert readability(text, "给朋友的祝福语").failed == ()


@pytest.mark.parametrize(("rule", "bad", "fixed"), [
    ("chinese", "Happy birthday to you, my friend!", "祝你生日快乐，my friend!"),
    ("chinese", "<div>生日快乐</div><script>alert(1)</script>!", "生日快乐，天天开心！"),
    ("chinese", "1234567890。", "二〇二六年，万事顺意！"),
    ("chinese", "🎂🎉🎁🎈。", "生日快乐🎂🎉！"),
    ("punctuation_soup", "来寿快乐，，。祝，！", "来年寿比南山，福如东海！"),
    ("punctuation_soup", "祝，福，你，快，乐。", "祝福你，快乐每一天。"),
    ("punctuation_soup", "，祝你新年快乐！", "祝你新年快乐！"),
    ("punctuation_soup", "快乐！！“”（）《》【】…", "新年快乐！"),
    ("doubled_punctuation", "生日快乐，，天天开心。", "生日快乐，天天开心。"),
    ("doubled_punctuation", "新年快乐。。万事如意。", "新年快乐。万事如意。"),
    ("doubled_punctuation", "恭喜发财！！", "恭喜发财！"),
    ("doubled_punctuation", "祝你平安，。一切顺利。", "祝你平安，一切顺利。"),
    ("repeated_char", "哈哈哈哈，生日快乐！", "哈哈哈，生日快乐！"),
    ("repeated_char", "福福福福福，新年好！", "福气满满，新年好！"),
    ("unfinished", "外公外婆重阳节快乐，祝你们身体", "外公外婆重阳节快乐，祝你们身体硬朗！"),
    ("unfinished", "愿你前程似锦，", "愿你前程似锦。"),
    ("unfinished", "尊敬的王总：值此生日之际，谨代表公司向您", "尊敬的王总：生日快乐！"),
])
def test_each_rule_fires_on_its_failure_only(rule: str, bad: str, fixed: str) -> None:
    assert rule in readability(bad).failed
    assert rule not in readability(fixed).failed
    assert not readable(bad)


@pytest.mark.parametrize(("query", "text"), [
    ("闺蜜生日祝福语 幽默一点", "闺蜜生日祝福语"),
    ("闺蜜生日祝福语 幽默一点", "闺蜜生日祝福语，幽默一点！"),
    ("给妈妈的母亲节祝福", "给妈妈的母亲节祝福。给妈妈的母亲节祝福。"),
    ("送给同学的毕业祝福语 简短", "送给同学的毕业祝福语：同学快乐！"),
])
def test_query_echo(query: str, text: str) -> None:
    assert "query_echo" in readability(text, query).failed
    assert "query_echo" not in readability(text).failed  # the rule needs the query


def test_reusing_query_words_is_not_an_echo() -> None:
    """A greeting naming the occasion the query asks for is the point, not an echo."""
    assert readable("祝你生日快乐，新的一岁天天开心！", "生日快乐")
    assert readable("这一生最美的祝福，是愿你始终被温柔以待，回首皆无悔。", "这一生最美的祝福")


def test_empty_and_whitespace_fail_and_bad_types_are_named() -> None:
    assert readability("").failed[:2] == ("chinese", "punctuation_soup")
    assert not readable("   \n ")
    with pytest.raises(TypeError, match="text must be a str"):
        readability(None)  # type: ignore[arg-type]


def test_reported_in_rule_order() -> None:
    failed = readability("，，，，").failed
    assert list(failed) == [r for r in RULES if r in failed]
    assert set(failed) == {"chinese", "punctuation_soup", "doubled_punctuation",
                           "repeated_char", "unfinished"}


def test_readable_share_and_its_errors() -> None:
    texts = ["新年快乐，万事如意！", "，，，，", "生日快乐祝福语。"]
    assert readable_share(texts) == pytest.approx(2 / 3)
    assert readable_share(texts, ["", "", "生日快乐祝福语"]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="3 texts but 1 queries"):
        readable_share(texts, ["q"])
    with pytest.raises(ValueError, match="no texts"):
        readable_share([])


def test_starter_greetings_are_all_readable() -> None:
    rows = starter_greetings()
    assert readable_share([g.response for g in rows], [g.query for g in rows]) == 1.0


def test_paper_good_greetings_are_nearly_all_readable(shared_data: Path) -> None:
    """The rules match what people wrote: ≥ 99 % of the paper's chosen greetings pass."""
    rows = json.loads((shared_data / "reward_data_train.json").read_text(encoding="utf-8"))
    share = readable_share([r["chosen"]["value"] for r in rows],
                           [r["conversations"][0]["value"] for r in rows])
    assert share >= 0.99, share


def test_doctests() -> None:
    import doctest

    from zhufu.pipeline.evaluation import readable as module

    result = doctest.testmod(module)
    assert result.attempted >= 4 and result.failed == 0
