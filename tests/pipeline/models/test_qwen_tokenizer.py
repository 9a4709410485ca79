"""The offline Qwen2.5 tokenizer: built from qwen.tiktoken, checked against known encodings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhufu.pipeline.models import TokenizerSourceError, load_tokenizer, qwen_tokenizer_path
from zhufu.pipeline.models import tokenizer as qt


@pytest.fixture(scope="module")
def tok_dir(zhufu_home_dir: Path) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZHUFU_HOME", str(zhufu_home_dir))
        return qwen_tokenizer_path()


@pytest.fixture(scope="module")
def tok(tok_dir: Path):  # noqa: ANN201 - transformers tokenizer
    return load_tokenizer(str(tok_dir))


@pytest.mark.parametrize(("text", "ids"), [
    ("<|im_start|>hello<|im_end|>", [151644, 14990, 151645]),
    ("杭州是个好地方", [104130, 104104, 52801, 100371]),
    ("Hello, world!", [9707, 11, 1879, 0]),
])
def test_known_qwen25_encodings(tok, text: str, ids: list[int]) -> None:
    assert tok.encode(text, add_special_tokens=False) == ids
    assert tok.encode(text) == ids  # no BOS/EOS added by default
    assert tok.decode(ids) == text


def test_vocabulary_and_special_tokens(tok, tok_dir: Path) -> None:
    assert len(tok) == 151_665
    added = {t: 151_643 + i for i, (t, _) in enumerate(qt.ADDED_TOKENS)}
    assert len(added) == 22
    for text, expected in added.items():
        assert tok.convert_tokens_to_ids(text) == expected, text
    assert (tok.eos_token, tok.eos_token_id) == ("<|im_end|>", 151645)
    assert (tok.pad_token, tok.pad_token_id) == ("<|endoftext|>", 151643)
    assert tok.bos_token is None
    data = json.loads((tok_dir / "tokenizer.json").read_text(encoding="utf-8"))
    assert len(data["model"]["merges"]) == 151_387
    assert data["model"]["merges"][0] in (["Ġ", "Ġ"], "Ġ Ġ")


def test_skip_special_tokens_keeps_non_special_added(tok) -> None:
    ids = tok.encode("<|im_start|>祝福<tool_call><|im_end|>")
    assert tok.decode(ids, skip_special_tokens=True) == "祝福<tool_call>"


def test_chat_template_renders_chatml(tok) -> None:
    messages = [{"role": "system", "content": "你是写祝福语的助手"},
                {"role": "user", "content": "给奶奶写一句中秋祝福"},
                {"role": "assistant", "content": "奶奶中秋快乐！"}]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text == ("<|im_start|>system\n你是写祝福语的助手<|im_end|>\n"
                    "<|im_start|>user\n给奶奶写一句中秋祝福<|im_end|>\n"
                    "<|im_start|>assistant\n奶奶中秋快乐！<|im_end|>\n")
    prompt = tok.apply_chat_template(messages[1:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    ids = tok.apply_chat_template(messages[1:2], add_generation_prompt=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    assert ids[0] == 151644 and ids.count(151645) == 1


@pytest.mark.parametrize("text", ["新年快乐🧧，万事如意！！", "  多行\n\n文本\t和 spaces  ",
                                  "Ｆｕｌｌ-width ＡＢＣ １２３", "e\u0301 composed"])
def test_round_trip(tok, text: str) -> None:
    import unicodedata

    assert tok.decode(tok.encode(text)) == unicodedata.normalize("NFC", text)


@pytest.mark.slow
def test_rebuild_is_identical_and_cache_is_reused(tok_dir: Path, tmp_path: Path) -> None:
    """Building again from the same ranks gives the same tokenizer.json byte for byte."""
    again = qt.build_tokenizer(tmp_path / "again")
    assert (again / "tokenizer.json").read_bytes() == (tok_dir / "tokenizer.json").read_bytes()
    before = (tok_dir / "tokenizer.json").stat().st_mtime_ns
    assert qt.install_dir(lambda d: pytest.fail("rebuilt a cached dir"), tok_dir) == tok_dir
    assert (tok_dir / "tokenizer.json").stat().st_mtime_ns == before


def test_missing_source_names_both_wheels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qt, "SOURCES", [("zhufu-no-such-dist-a", "x/qwen.tiktoken"),
                                        ("zhufu-no-such-dist-b", "y/qwen.tiktoken")])
    with pytest.raises(TokenizerSourceError) as err:
        qt.find_tiktoken_file()
    msg = str(err.value)
    assert "zhufu-no-such-dist-a: not installed" in msg and "qwen-agent" in msg


def test_malformed_ranks_name_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tiktoken"
    bad.write_bytes(b"IQ== 0\nnot-base64!! 1\n")
    with pytest.raises(TokenizerSourceError, match=r"bad.tiktoken: line 2"):
        qt.read_ranks(bad)
    gap = tmp_path / "gap.tiktoken"
    gap.write_bytes(b"IQ== 0\nIg== 2\n")
    with pytest.raises(TokenizerSourceError, match="without gaps"):
        qt.read_ranks(gap)
    with pytest.raises(TokenizerSourceError, match="expected 151643"):
        qt.build_tokenizer(tmp_path / "out", tiktoken_file=_two_ranks(tmp_path))


def _two_ranks(tmp_path: Path) -> Path:
    path = tmp_path / "two.tiktoken"
    path.write_bytes(b"IQ== 0\nIg== 1\n")
    return path


def test_merge_recovery_on_a_toy_vocabulary() -> None:
    """Ranks a=0 b=1 c=2 ab=3 abc=4: 'abc' must split as ('ab', 'c')."""
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"ab": 3, b"abc": 4}
    vocab, merges = qt.vocab_and_merges(ranks)
    assert merges == [("a", "b"), ("ab", "c")]
    assert vocab["abc"] == 4
    with pytest.raises(TokenizerSourceError, match="not the merge"):
        qt.vocab_and_merges({b"a": 0, b"b": 1, b"c": 2, b"abc": 3})
