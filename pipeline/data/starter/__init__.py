"""The starter set shipped with Zhufu (written for the project, not taken from the paper).

The data files sit in this package's folder (so the package-data globs ship them in a wheel),
in the same formats the loaders read:

- ``queries.txt``: 75 search-style queries (occasion × recipient × style).
- ``greetings.jsonl``: 155 good greetings, each for one of those queries (label 1).
- ``labelled.jsonl``: 112 examples with a good (1) or bad (0) label. The bad ones break one
  principle each: wrong occasion, taboo words, clichés, repetition, truncation, adverts,
  emoji spam, a list instead of one greeting, an assistant preamble, wrong honorific or
  register. Length alone does not separate the labels.

:func:`starter_split` splits the queries deterministically into train and held-out sets so
that ``zhufu run`` trains on some queries and evaluates on the others.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from zhufu.pipeline.data.loaders import parse_labelled, parse_queries_txt
from zhufu.pipeline.data.rows import LabelledExample, PreferencePair, SFTExample

STARTER_DIR = Path(__file__).resolve().parent
QUERIES_FILE = STARTER_DIR / "queries.txt"
GREETINGS_FILE = STARTER_DIR / "greetings.jsonl"
LABELLED_FILE = STARTER_DIR / "labelled.jsonl"


@cache
def _queries() -> tuple[str, ...]:
    return tuple(parse_queries_txt(QUERIES_FILE.read_bytes(), str(QUERIES_FILE)))


@cache
def _greetings() -> tuple[LabelledExample, ...]:
    return tuple(parse_labelled(GREETINGS_FILE.read_bytes(), str(GREETINGS_FILE)))


@cache
def _labelled() -> tuple[LabelledExample, ...]:
    return tuple(parse_labelled(LABELLED_FILE.read_bytes(), str(LABELLED_FILE)))


def starter_queries() -> list[str]:
    """The starter queries, in file order (no duplicates)."""
    return list(_queries())


def starter_greetings() -> list[LabelledExample]:
    """The good greetings, each with its query and label 1."""
    return list(_greetings())


def starter_labelled() -> list[LabelledExample]:
    """The labelled good (1) and bad (0) examples."""
    return list(_labelled())


def starter_sft(queries: Iterable[str] | None = None) -> list[SFTExample]:
    """Alpaca rows (instruction = query, input = "", output = greeting) from the good greetings.

    With ``queries``, only greetings for those queries (e.g. the train side of
    :func:`starter_split`).
    """
    keep = None if queries is None else set(queries)
    return [SFTExample(instruction=g.query, input="", output=g.response)
            for g in _greetings() if keep is None or g.query in keep]


def starter_pairs() -> list[PreferencePair]:
    """Preference pairs: for each query, every good greeting (starter greetings and labelled
    good examples) against every labelled bad one, in a fixed order."""
    good: dict[str, list[str]] = {}
    for ex in (*_greetings(), *_labelled()):
        if ex.label == 1:
            good.setdefault(ex.query, []).append(ex.response)
    pairs = []
    for ex in _labelled():
        if ex.label == 0:
            pairs.extend(PreferencePair(ex.query, chosen, ex.response)
                         for chosen in good.get(ex.query, []))
    return pairs


def starter_split(held_out_fraction: float = 0.2, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train, held_out) starter queries: a seeded shuffle picks the held-out ones.

    Both lists keep file order; the same arguments always give the same split. At least one
    query lands on each side.
    """
    if not 0.0 < held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction}")
    queries = list(_queries())
    order = list(range(len(queries)))
    random.Random(seed).shuffle(order)
    n_held = min(len(queries) - 1, max(1, round(len(queries) * held_out_fraction)))
    held = set(order[:n_held])
    train = [q for i, q in enumerate(queries) if i not in held]
    held_out = [q for i, q in enumerate(queries) if i in held]
    return train, held_out
