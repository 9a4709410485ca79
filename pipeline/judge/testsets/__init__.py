"""The judge's own test sets, written for Zhufu (no text from the paper's data).

- ``degenerate.jsonl`` — answers that are not greetings (punctuation, punctuation soup,
  repeated characters or phrases, the query echoed, English/code/HTML/numbers/emoji, a
  greeting cut off or written twice, shuffled characters, refusals, assistant meta-text).
  Every one must be labelled bad and score below good greetings.
- ``principle_pairs.jsonl`` — same-query pairs where the bad greeting is as long and as
  fluent as the good one but breaks one principle (:data:`PAIR_KINDS`).

Each row has ``source`` (``hand``: written by hand; ``generated`` / ``template``: made by
``scripts/build_judge_testsets.py``) and ``split``: ``tune`` (what judge changes may be
checked against), ``held_out`` (a third, reported, never tuned on) and ``final`` (the part
made a different way — hand-written degenerate rows, template-made pairs — the last check).
Both sets were written and committed before the judge was tuned against them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TESTSET_DIR = Path(__file__).resolve().parent
DEGENERATE_FILE = TESTSET_DIR / "degenerate.jsonl"
PAIRS_FILE = TESTSET_DIR / "principle_pairs.jsonl"
SPLITS = ("tune", "held_out", "final")
PAIR_KINDS = ("taboo", "wrong_occasion", "register", "negative", "advertising", "format",
              "repetition", "generic")


@dataclass(frozen=True)
class DegenerateItem:
    id: str
    query: str
    response: str
    kind: str
    source: str
    split: str


@dataclass(frozen=True)
class PrinciplePair:
    id: str
    query: str
    good: str
    bad: str
    kind: str
    source: str
    split: str


def _rows(path: Path, fields: tuple[str, ...]) -> list[dict[str, str]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = [f for f in fields if not isinstance(row.get(f), str)]
        if missing:
            raise ValueError(f"{path.name} line {n}: missing or non-string field(s) {missing}")
        if row["split"] not in SPLITS:
            raise ValueError(f"{path.name} line {n}: split must be one of {SPLITS}")
        rows.append({f: row[f] for f in fields})
    return rows


@cache
def _degenerate() -> tuple[DegenerateItem, ...]:
    fields = ("id", "query", "response", "kind", "source", "split")
    return tuple(DegenerateItem(**r) for r in _rows(DEGENERATE_FILE, fields))


@cache
def _pairs() -> tuple[PrinciplePair, ...]:
    fields = ("id", "query", "good", "bad", "kind", "source", "split")
    pairs = tuple(PrinciplePair(**r) for r in _rows(PAIRS_FILE, fields))
    unknown = {p.kind for p in pairs} - set(PAIR_KINDS)
    if unknown:
        raise ValueError(f"{PAIRS_FILE.name}: unknown kind(s) {sorted(unknown)}")
    return pairs


def degenerate_items(splits: tuple[str, ...] = SPLITS) -> list[DegenerateItem]:
    """The degenerate test items of the given splits, in file order."""
    return [d for d in _degenerate() if d.split in splits]


def principle_pairs(splits: tuple[str, ...] = SPLITS) -> list[PrinciplePair]:
    """The principle pairs of the given splits, in file order."""
    return [p for p in _pairs() if p.split in splits]


__all__ = ["DEGENERATE_FILE", "PAIRS_FILE", "PAIR_KINDS", "SPLITS", "DegenerateItem",
           "PrinciplePair", "degenerate_items", "principle_pairs"]
