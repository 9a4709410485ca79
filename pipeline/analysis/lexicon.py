"""The analyser's lexicons (occasions, recipients, phrase lists) loaded from YAML data files.

The files under ``lexicons/`` are plain, commented data written for Zhufu; this module only
reads and checks them. :func:`load_lexicon` caches the result per process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

LEXICON_DIR = Path(__file__).with_name("lexicons")
REGISTERS = ("high", "warm", "familiar", "plural", "self")


@dataclass(frozen=True)
class Occasion:
    key: str
    name: str
    query: tuple[str, ...]
    names: tuple[str, ...]
    greeting: tuple[str, ...]
    taboo: tuple[str, ...]
    compatible: tuple[str, ...]


@dataclass(frozen=True)
class Recipient:
    key: str
    query: tuple[str, ...]
    address: tuple[str, ...]
    register: str
    mismatch: tuple[str, ...]
    also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lexicon:
    occasions: dict[str, Occasion]
    recipients: dict[str, Recipient]
    universal_taboo: tuple[str, ...]
    lists: dict[str, tuple[str, ...]]
    patterns: dict[str, tuple[re.Pattern[str], ...]]
    wish_facets: dict[str, tuple[str, ...]]
    length_requests: dict[str, tuple[str, ...]]
    tone_requests: dict[str, tuple[str, ...]]
    extra: dict[str, Any] = field(default_factory=dict)
    #: recipients.yaml ``opposites``: per scope (``text``, ``salutation``), pairs of word
    #: groups a query tells apart (a daughter or a son).
    opposites: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = field(
        default_factory=dict)
    #: recipients.yaml ``generic_address``: address words that name no one recipient.
    generic_address: tuple[str, ...] = ()


def _read(name: str) -> dict[str, Any]:
    path = LEXICON_DIR / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at top level")
    return data


def _words(path: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise ValueError(f"lexicon {path}: expected a list of words, got {value!r}")
    return tuple(str(v) for v in value)


@lru_cache(maxsize=1)
def load_lexicon() -> Lexicon:
    """Read and validate the three YAML files; errors name the file and key."""
    occ_data = _read("occasions.yaml")
    occasions = {}
    for key, spec in occ_data["occasions"].items():
        occasions[key] = Occasion(
            key=key,
            name=str(spec.get("name", key)),
            query=_words(f"occasions.{key}.query", spec.get("query")),
            names=_words(f"occasions.{key}.names", spec.get("names", spec.get("query"))),
            greeting=_words(f"occasions.{key}.greeting", spec.get("greeting")),
            taboo=_words(f"occasions.{key}.taboo", spec.get("taboo")),
            compatible=_words(f"occasions.{key}.compatible", spec.get("compatible")),
        )
    for occ in occasions.values():
        for other in occ.compatible:
            if other not in occasions:
                raise ValueError(f"occasions.yaml: {occ.key}.compatible names unknown {other!r}")
    rec_data = _read("recipients.yaml")
    recipients = {}
    for key, spec in rec_data["recipients"].items():
        register = spec.get("register")
        if register not in REGISTERS:
            raise ValueError(f"recipients.yaml: {key}.register must be one of {REGISTERS}")
        recipients[key] = Recipient(
            key=key,
            query=_words(f"recipients.{key}.query", spec.get("query")),
            address=_words(f"recipients.{key}.address", spec.get("address")),
            register=register,
            mismatch=_words(f"recipients.{key}.mismatch", spec.get("mismatch")),
            also=_words(f"recipients.{key}.also", spec.get("also")),
        )
    for key, rec in recipients.items():
        for other in rec.also:
            if other not in recipients:
                raise ValueError(f"recipients.yaml: {key}.also names unknown {other!r}")
    opposites = {}
    for scope, pairs in (rec_data.get("opposites") or {}).items():
        if scope not in ("text", "salutation"):
            raise ValueError(f"recipients.yaml: opposites.{scope}: expected text or salutation")
        found = []
        for i, pair in enumerate(pairs or []):
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError(f"recipients.yaml: opposites.{scope}[{i}] must be two lists of "
                                 f"words, got {pair!r}")
            found.append((_words(f"recipients.opposites.{scope}[{i}][0]", pair[0]),
                          _words(f"recipients.opposites.{scope}[{i}][1]", pair[1])))
        opposites[scope] = tuple(found)
    ph = _read("phrases.yaml")
    list_keys = ("cliches", "template_frames", "imagery", "emotion", "address_openers",
                 "meta_phrases", "alternative_markers", "promo", "negations", "negativity",
                 "formal_frames", "casual_words", "abstract_words", "letter_frames",
                 "childish_words", "filler_words", "imagery_chars", "everyday")
    pattern_keys = ("simile_patterns", "preamble_patterns", "promo_patterns",
                    "injection_patterns", "negativity_patterns")
    lists = {k: _words(f"phrases.{k}", ph.get(k)) for k in list_keys}
    patterns = {}
    for k in pattern_keys:
        compiled = []
        for p in _words(f"phrases.{k}", ph.get(k)):
            try:
                compiled.append(re.compile(p, re.IGNORECASE))
            except re.error as e:
                raise ValueError(f"phrases.yaml: {k}: bad regex {p!r}: {e}") from e
        patterns[k] = tuple(compiled)
    return Lexicon(
        occasions=occasions,
        recipients=recipients,
        universal_taboo=_words("occasions.universal_taboo", occ_data.get("universal_taboo")),
        lists=lists,
        patterns=patterns,
        wish_facets={k: _words(f"wish_facets.{k}", v) for k, v in ph["wish_facets"].items()},
        length_requests={k: _words(f"length_requests.{k}", v)
                         for k, v in ph["length_requests"].items()},
        tone_requests={k: _words(f"tone_requests.{k}", v) for k, v in ph["tone_requests"].items()},
        opposites=opposites,
        generic_address=_words("recipients.generic_address", rec_data.get("generic_address")),
    )
