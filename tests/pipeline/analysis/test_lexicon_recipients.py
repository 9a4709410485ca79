"""recipients.yaml's ``also``, ``opposites`` and ``generic_address``: loaded, and bad entries
rejected with an error naming the key (a copy of the lexicon folder, edited)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from zhufu.pipeline.analysis import lexicon


def test_shipped_lexicon_has_the_recipient_knowledge() -> None:
    lex = lexicon.load_lexicon()
    assert "parent" in lex.recipients["elder_relative"].also
    text_pairs = lex.opposites["text"]
    assert any("女儿" in a and "儿子" in b for a, b in text_pairs)
    assert lex.opposites["salutation"] and "亲爱的" in lex.generic_address


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["recipients"]["friend"].__setitem__("also", ["nobody"]), "friend.also"),
    (lambda d: d.__setitem__("opposites", {"anywhere": []}), "opposites.anywhere"),
    (lambda d: d["opposites"]["text"].append([["女儿"]]), "opposites.text[1]"),
])
def test_bad_recipient_entries_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         edit, message: str) -> None:
    folder = tmp_path / "lexicons"
    shutil.copytree(lexicon.LEXICON_DIR, folder)
    data = yaml.safe_load((folder / "recipients.yaml").read_text(encoding="utf-8"))
    edit(data)
    (folder / "recipients.yaml").write_text(yaml.safe_dump(data, allow_unicode=True),
                                            encoding="utf-8")
    monkeypatch.setattr(lexicon, "LEXICON_DIR", folder)
    lexicon.load_lexicon.cache_clear()
    try:
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            lexicon.load_lexicon()
    finally:
        monkeypatch.undo()
        lexicon.load_lexicon.cache_clear()
