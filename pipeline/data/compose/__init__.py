"""A compositional generator of original greetings: hand-written seeds, combined by a grammar.

The seeds (``seeds.yaml`` next to this file) were written for Zhufu: per occasion, the ways
to open a greeting and the wishes, jokes, images, formal phrases and four-character phrases
that fit it; per relation (parent, friend, leader…), the register and lines about the
relationship; per recipient, the words a query names them with and the ways a greeting
addresses them. Nothing is taken from the paper's data.

The grammar, for one example:

1. pick an occasion *o* (uniformly), a recipient *r* among those *o* is written for
   (``who``), and a style *s* among those *r*'s relation allows;
2. the **query**: a template (``queries``) filled with one of *o*'s query words and one of
   *r*'s, followed by one of *s*'s style words (none for the default style), e.g.
   ``给奶奶的中秋祝福语 文艺一点``;
3. the **greeting**: sentences chosen per style, with ``{a}`` (an address of *r*, the
   query's own word when it is one) and ``{y}`` (the relation's 你 / 您, or 你们 / 您二位
   when the occasion concerns a couple or a family) filled in:

   ============ ==============================================================
   style        sentences
   ============ ==============================================================
   ``default``  open · [thanks] · occasion wish · [relation wish]
   ``warm``     open · thanks · occasion wish · relation wish
   ``short``    open · one wish (occasion or relation)
   ``humor``    open · one joke (occasion or relation) · one wish
   ``poetic``   open · one image of the occasion · [relation wish]
   ``formal``   formal opening of the occasion · formal wish of the relation
   ``four``     ``{a}，`` + three or four four-character phrases + ``！``
   ============ ==============================================================

   (``[x]`` is included half the time.) A style a recipient or occasion has no lines for
   is not drawn.

Everything is drawn from one ``random.Random(seed)``: the same seed gives the same examples,
byte for byte. The same (query, greeting) pair is never emitted twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from zhufu.pipeline.data.rows import SFTExample

SEEDS_FILE = Path(__file__).resolve().with_name("seeds.yaml")
STYLES = ("default", "warm", "short", "humor", "poetic", "formal", "four")
HIGH_REGISTER = ("您", "您二老")


@dataclass(frozen=True)
class Composed:
    """One generated example: the query, its greeting and what they were composed from."""

    query: str
    greeting: str
    occasion: str
    recipient: str
    style: str


@dataclass(frozen=True)
class Relation:
    you: str
    styles: tuple[str, ...]
    lines: dict[str, tuple[str, ...]] = field(hash=False)


@dataclass(frozen=True)
class Recipient:
    key: str
    relation: str
    query: tuple[str, ...]
    address: tuple[str, ...]
    you: str | None = None


@dataclass(frozen=True)
class Occasion:
    key: str
    query: tuple[str, ...]
    who: tuple[str, ...]
    lines: dict[str, tuple[str, ...]] = field(hash=False)
    plural: dict[str, str] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class Seeds:
    """The parsed seeds file."""

    styles: dict[str, tuple[str, ...]]
    queries: tuple[str, ...]
    relations: dict[str, Relation]
    recipients: dict[str, Recipient]
    occasions: dict[str, Occasion]

    def recipients_for(self, occasion: Occasion) -> list[Recipient]:
        """The recipients an occasion is written for (its ``who``: relations or keys)."""
        return [r for r in self.recipients.values()
                if r.relation in occasion.who or r.key in occasion.who]

    def texts(self) -> list[str]:
        """Every line, phrase, address and query word in the seeds (for vocabularies)."""
        out: list[str] = [*self.queries]
        out += [w for words in self.styles.values() for w in words]
        for rel in self.relations.values():
            out += [rel.you, *(x for lines in rel.lines.values() for x in lines)]
        for rec in self.recipients.values():
            out += [*rec.query, *rec.address, *([rec.you] if rec.you else [])]
        for occ in self.occasions.values():
            out += [*occ.query, *(x for lines in occ.lines.values() for x in lines)]
            out += list((occ.plural or {}).values())
        return out


class SeedsError(ValueError):
    """The seeds file is malformed; the message names the entry and what is wrong."""


def _strs(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SeedsError(f"{where}: expected a list of non-empty strings, got {value!r}")
    return tuple(value)


def parse_seeds(data: dict[str, Any], source: str = "seeds") -> Seeds:
    """Validate and convert a loaded seeds mapping (see ``seeds.yaml`` for the layout)."""
    try:
        styles = {k: tuple(v) for k, v in data["styles"].items()}
        queries = _strs(data["queries"], f"{source}: queries")
        relations = {k: Relation(you=v["you"], styles=_strs(v["styles"], f"{source}: "
                                                             f"relations.{k}.styles"),
                                 lines={n: _strs(x, f"{source}: relations.{k}.{n}")
                                        for n, x in v.items() if n not in ("you", "styles")})
                     for k, v in data["relations"].items()}
        recipients = {k: Recipient(key=k, relation=v["relation"],
                                   query=_strs(v["query"], f"{source}: recipients.{k}.query"),
                                   address=_strs(v["address"],
                                                 f"{source}: recipients.{k}.address"),
                                   you=v.get("you"))
                      for k, v in data["recipients"].items()}
        occasions = {k: Occasion(key=k, query=_strs(v["query"], f"{source}: occasions.{k}.query"),
                                 who=_strs(v["who"], f"{source}: occasions.{k}.who"),
                                 lines={n: _strs(x, f"{source}: occasions.{k}.{n}")
                                        for n, x in v.items()
                                        if n not in ("query", "who", "plural")},
                                 plural=v.get("plural"))
                     for k, v in data["occasions"].items()}
    except (KeyError, TypeError, AttributeError) as e:
        raise SeedsError(f"{source}: missing or malformed entry: {e!r}") from e
    for k, style in ((k, s) for k, rel in relations.items() for s in rel.styles):
        if style not in STYLES:
            raise SeedsError(f"{source}: relations.{k}.styles: unknown style {style!r}")
    for k, rec in recipients.items():
        if rec.relation not in relations:
            raise SeedsError(f"{source}: recipients.{k}.relation: unknown {rec.relation!r}")
    for k, occ in occasions.items():
        unknown = [w for w in occ.who if w not in relations and w not in recipients]
        if unknown:
            raise SeedsError(f"{source}: occasions.{k}.who: unknown {unknown}")
        if not occ.lines.get("open") or not occ.lines.get("wish"):
            raise SeedsError(f"{source}: occasions.{k}: needs 'open' and 'wish' lines")
    seeds = Seeds(styles=styles, queries=queries, relations=relations, recipients=recipients,
                  occasions=occasions)
    for occ in occasions.values():
        if not seeds.recipients_for(occ):
            raise SeedsError(f"{source}: occasions.{occ.key}: no recipient matches 'who'")
    return seeds


@cache
def load_seeds(path: Path = SEEDS_FILE) -> Seeds:
    """The seeds file parsed once per process."""
    return parse_seeds(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


def _lines(occ: Occasion, rel: Relation, kind: str) -> tuple[str, ...]:
    return occ.lines.get(kind, ()) + rel.lines.get(kind, ())


def _styles(occ: Occasion, rel: Relation) -> list[str]:
    """The styles this pair has lines for."""
    need = {"humor": bool(_lines(occ, rel, "humor")), "poetic": bool(occ.lines.get("poetic")),
            "formal": bool(rel.lines.get("formal")),
            "warm": bool(rel.lines.get("thanks")) and bool(rel.lines.get("wish")),
            "four": len(set(_lines(occ, rel, "four"))) >= 3}
    return [s for s in rel.styles if need.get(s, True)]


def _sentences(rng: random.Random, occ: Occasion, rel: Relation, style: str
               ) -> list[tuple[str, bool]]:
    """The style's sentences as (line, from the occasion?) in order."""
    o, r = occ.lines, rel.lines

    def either(kind: str) -> tuple[str, bool]:
        lines = [(x, True) for x in o.get(kind, ())] + [(x, False) for x in r.get(kind, ())]
        return rng.choice(lines)

    if style == "four":
        phrases: list[str] = []
        for phrase in rng.sample(list(dict.fromkeys(_lines(occ, rel, "four"))), k=len(
                set(_lines(occ, rel, "four")))):
            if len(phrases) < 4 and not any(p[:2] == phrase[:2] for p in phrases):
                phrases.append(phrase)
        del phrases[rng.choice((3, 4)):]
        return [("{a}，" + "，".join(phrases) + "！", True)]
    if style == "formal":
        return [(rng.choice(o.get("formal") or o["open"]), True), (rng.choice(r["formal"]), False)]
    out = [(rng.choice(o["open"]), True)]
    if style == "short":
        return out + [either("wish")]
    if style == "humor":
        return out + [either("humor"), either("wish")]
    if style == "poetic":
        out.append((rng.choice(o["poetic"]), True))
        if r.get("wish") and rng.random() < 0.5:
            out.append((rng.choice(r["wish"]), False))
        return out
    warm = style == "warm"
    if r.get("thanks") and (warm or rng.random() < 0.5):
        out.append((rng.choice(r["thanks"]), False))
    out.append((rng.choice(o["wish"]), True))
    if r.get("wish") and (warm or rng.random() < 0.5):
        out.append((rng.choice(r["wish"]), False))
    return out


def compose_one(rng: random.Random, seeds: Seeds | None = None) -> Composed:
    """One example drawn with ``rng`` (see the module docstring for the grammar)."""
    seeds = seeds or load_seeds()
    occ = rng.choice(list(seeds.occasions.values()))
    rec = rng.choice(seeds.recipients_for(occ))
    rel = seeds.relations[rec.relation]
    style = rng.choice(_styles(occ, rel))
    r_word = rng.choice(rec.query)
    query = rng.choice(seeds.queries).format(r=r_word, q=rng.choice(occ.query))
    style_word = rng.choice(seeds.styles.get(style, ("",)))
    if style_word:
        query = f"{query} {style_word}"
    address = rng.choice([a for a in rec.address if r_word in a]
                         or [a for a in rec.address if a not in rec.query] or rec.address)
    you = rec.you or rel.you
    occ_you = occ.plural["high" if you in HIGH_REGISTER else "familiar"] if occ.plural else you
    greeting = "".join(line.format(a=address, y=occ_you if of_occasion else you)
                       for line, of_occasion in _sentences(rng, occ, rel, style))
    return Composed(query=query, greeting=greeting, occasion=occ.key, recipient=rec.key,
                    style=style)


def compose(n: int, seed: int = 0, seeds: Seeds | None = None) -> list[Composed]:
    """``n`` distinct examples, deterministic for a given ``seed``.

    >>> [c.query for c in compose(2, seed=0)] == [c.query for c in compose(2, seed=0)]
    True
    """
    if n < 0:
        raise ValueError(f"compose: n must be >= 0, got {n}")
    rng = random.Random(seed)
    seen: set[tuple[str, str]] = set()
    out: list[Composed] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 20 * n + 1000:
            raise ValueError(f"compose: only {len(out)} distinct examples after {attempts} "
                             f"draws; the seeds cannot give {n}")
        ex = compose_one(rng, seeds)
        if (ex.query, ex.greeting) not in seen:
            seen.add((ex.query, ex.greeting))
            out.append(ex)
    return out


def compose_split(n: int, held_out: int, seed: int = 0
                  ) -> tuple[list[Composed], list[str]]:
    """(training examples, held-out queries): ``held_out`` distinct queries drawn with
    ``seed`` are set aside and every example asking one of them leaves the training side."""
    examples = compose(n, seed)
    queries = list(dict.fromkeys(ex.query for ex in examples))
    if held_out >= len(queries):
        raise ValueError(f"compose_split: {held_out} held-out queries asked, only "
                         f"{len(queries)} distinct queries in {n} examples")
    held = random.Random(seed + 1).sample(queries, held_out)
    keep = set(held)
    return [ex for ex in examples if ex.query not in keep], held


def composed_sft(examples: list[Composed]) -> list[SFTExample]:
    """Alpaca rows (instruction = query, output = greeting)."""
    return [SFTExample(instruction=ex.query, input="", output=ex.greeting) for ex in examples]
