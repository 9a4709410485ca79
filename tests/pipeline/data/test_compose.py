"""The compositional greeting generator: deterministic, well-formed, fitting, original."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.conftest import paper_greetings, shared_runs
from zhufu.pipeline.analysis import parse_query
from zhufu.pipeline.data.compose import (
    SEEDS_FILE,
    STYLES,
    SeedsError,
    compose,
    compose_split,
    composed_sft,
    load_seeds,
    parse_seeds,
)
from zhufu.pipeline.evaluation.readable import readability

#: How many examples the originality test checks (covers every smaller n of seed 0).
CHECKED = 10_000


@pytest.fixture(scope="module")
def examples():  # noqa: ANN201 - list[Composed]
    return compose(4000, seed=0)


def test_deterministic_and_prefix_stable(examples) -> None:  # noqa: ANN001
    assert compose(4000, seed=0) == examples
    assert compose(500, seed=0) == examples[:500]  # a smaller n is a prefix
    assert compose(500, seed=1) != examples[:500]
    assert len({(e.query, e.greeting) for e in examples}) == len(examples)


def test_every_greeting_is_readable_and_sized(examples) -> None:  # noqa: ANN001
    bad = [(e.query, e.greeting, readability(e.greeting, e.query).failed) for e in examples
           if not readability(e.greeting, e.query).ok]
    assert not bad, bad[:3]
    lengths = [len(e.greeting) for e in examples]
    assert min(lengths) >= 10 and max(lengths) <= 120
    assert all("{" not in e.greeting and "}" not in e.greeting for e in examples)


def test_variety(examples) -> None:  # noqa: ANN001
    seeds = load_seeds()
    assert {e.occasion for e in examples} == set(seeds.occasions)
    assert {e.recipient for e in examples} == set(seeds.recipients)
    assert {e.style for e in examples} == set(STYLES)
    assert len({e.query for e in examples}) > 0.8 * len(examples)
    assert len({e.greeting for e in examples}) > 0.9 * len(examples)
    assert max(Counter(e.occasion for e in examples).values()) < 0.1 * len(examples)


def test_greetings_fit_the_query(examples) -> None:  # noqa: ANN001
    """The analyser reads the query's occasion and recipient; the greeting names the
    occasion (for non-四字 styles), and the register follows the recipient."""
    seeds = load_seeds()
    for e in examples:
        intent = parse_query(e.query)
        assert intent.occasions, e.query
        assert intent.recipients, e.query
        rel = seeds.relations[seeds.recipients[e.recipient].relation]
        if rel.you == "您":
            assert "你" not in e.greeting.replace("你们", ""), (e.query, e.greeting)
        if rel.you == "你" and e.style != "formal":
            assert "您" not in e.greeting, (e.query, e.greeting)


def test_styles_shape_the_greeting(examples) -> None:  # noqa: ANN001
    four = [e.greeting for e in examples if e.style == "four"]
    assert all(len(c) == 4 for g in four for c in g.rstrip("！").split("，")[1:])
    short = [len(e.greeting) for e in examples if e.style == "short"]
    warm = [len(e.greeting) for e in examples if e.style == "warm"]
    assert sum(short) / len(short) < 0.6 * sum(warm) / len(warm)
    style_words = {w: s for s, words in load_seeds().styles.items() for w in words if w}
    for e in examples:
        word = e.query.rsplit(" ", 1)[-1] if " " in e.query else ""
        assert style_words.get(word, "default") == e.style, e.query


def test_split_holds_queries_out(examples) -> None:  # noqa: ANN001
    train, held = compose_split(4000, held_out=48, seed=0)
    assert len(held) == len(set(held)) == 48
    assert not {e.query for e in train} & set(held)
    assert set(held) <= {e.query for e in examples}
    assert compose_split(4000, held_out=48, seed=0) == (train, held)
    rows = composed_sft(train)
    assert rows[0].instruction == train[0].query and rows[0].output == train[0].greeting
    with pytest.raises(ValueError, match="held-out queries asked"):
        compose_split(10, held_out=10)


def test_shares_no_text_with_the_paper_data(shared_data: Path) -> None:
    """No generated greeting shares a 16-character run with the paper's greetings."""
    paper = paper_greetings(shared_data)
    greetings = {e.greeting for e in compose(CHECKED, seed=0)}
    shared = shared_runs(greetings | set(load_seeds().texts()), paper)
    assert not shared, sorted(shared)[:5]
    assert not greetings & paper


def test_malformed_seeds_are_named() -> None:
    raw = yaml.safe_load(SEEDS_FILE.read_text(encoding="utf-8"))
    bad = copy.deepcopy(raw)
    bad["occasions"]["birthday"]["who"] = ["aliens"]
    with pytest.raises(SeedsError, match=r"occasions.birthday.who: unknown \['aliens'\]"):
        parse_seeds(bad)
    bad = copy.deepcopy(raw)
    bad["relations"]["parent"]["styles"] = ["rap"]
    with pytest.raises(SeedsError, match="relations.parent.styles: unknown style 'rap'"):
        parse_seeds(bad)
    bad = copy.deepcopy(raw)
    bad["recipients"]["mom"]["address"] = "妈妈"
    with pytest.raises(SeedsError, match="recipients.mom.address: expected a list"):
        parse_seeds(bad)
    bad = copy.deepcopy(raw)
    del bad["occasions"]["birthday"]["open"]
    with pytest.raises(SeedsError, match="occasions.birthday: needs 'open' and 'wish'"):
        parse_seeds(bad)
    with pytest.raises(ValueError, match="n must be >= 0"):
        compose(-1)
