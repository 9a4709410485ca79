"""The cut Qwen2.5 tokenizer of the embedded models: small, exact on the project's data,
byte fallback everywhere else, same special tokens and chat template."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from zhufu.pipeline.models import load_tokenizer, qwen_tokenizer_path
from zhufu.pipeline.models import tokenizer as qt
from zhufu.pipeline.models.vocab import (
    common_characters,
    cut_tokenizer_path,
    cut_vocabulary,
    frequent_characters,
    project_texts,
)


@pytest.fixture(scope="module")
def tokenizers(zhufu_home_dir: Path):  # noqa: ANN201 - (full, cut) transformers tokenizers
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZHUFU_HOME", str(zhufu_home_dir))
        return (load_tokenizer(str(qwen_tokenizer_path())),
                load_tokenizer(str(cut_tokenizer_path())))


def test_small_and_loads_as_a_fast_qwen_tokenizer(tokenizers) -> None:  # noqa: ANN001
    full, cut = tokenizers
    assert cut.is_fast and type(cut).__name__ == type(full).__name__
    assert 3_000 < len(cut) < 5_000 < len(full) == 151_665
    n = len(cut) - len(qt.ADDED_TOKENS)
    for i, (text, _) in enumerate(qt.ADDED_TOKENS):
        assert cut.convert_tokens_to_ids(text) == n + i, text
    assert (cut.eos_token, cut.pad_token, cut.bos_token) == ("<|im_end|>", "<|endoftext|>", None)
    assert cut.eos_token_id == n + 2 and cut.pad_token_id == n


def test_same_split_as_the_full_tokenizer_on_project_data(tokenizers) -> None:  # noqa: ANN001
    """Every project text is cut into exactly the same tokens (only the ids differ)."""
    full, cut = tokenizers
    texts = project_texts()
    sample = random.Random(0).sample(texts, 3000) + texts[:200]
    for text in sample:
        assert (cut.convert_ids_to_tokens(cut.encode(text))
                == full.convert_ids_to_tokens(full.encode(text))), text


def test_chat_prompts_split_as_the_full_tokenizer(tokenizers) -> None:  # noqa: ANN001
    """The chat template's role lines and the GRPO prompt cost no more tokens when cut."""
    from zhufu.pipeline.data import Prompt

    full, cut = tokenizers
    for query in ("给退休的老同事的祝福语 温暖一点", "春节给客户的祝福 正式"):
        for messages in ([{"role": "user", "content": query}], Prompt.from_query(query).messages,
                         [{"role": "system", "content": "你好"},
                          {"role": "user", "content": query},
                          {"role": "assistant", "content": "新年快乐！"}]):
            text = full.apply_chat_template(messages, tokenize=False,
                                            add_generation_prompt=True)
            assert text == cut.apply_chat_template(messages, tokenize=False,
                                                   add_generation_prompt=True)
            assert (cut.convert_ids_to_tokens(cut.encode(text))
                    == full.convert_ids_to_tokens(full.encode(text))), text


@pytest.mark.parametrize("text", ["杭州是个好地方", "送给同学的生日祝福语 简短独特",
                                  "龘靐齉 emoji🎂🧧 Hello, world! ｆｕｌｌ１２３",
                                  "<|im_start|>user\n新年快乐<|im_end|>", "  多行\n\n文本\t"])
def test_any_text_round_trips(tokenizers, text: str) -> None:  # noqa: ANN001
    _, cut = tokenizers
    assert cut.decode(cut.encode(text)) == text
    assert cut.unk_token is None


def test_common_characters_are_known(tokenizers) -> None:  # noqa: ANN001
    """A common character costs no more tokens in the cut tokenizer than in the full one."""
    full, cut = tokenizers
    chars = common_characters()
    assert len(frequent_characters()) == 1_500 and set(frequent_characters()) <= set(chars)
    assert {"的", "好", "福", "您", "，", "。", "！", "a", "1"} <= set(chars)
    longer = [c for c in chars if len(cut.encode(c)) > len(full.encode(c))]
    assert not longer, longer[:10]


def test_chat_template_and_generation_prompt_unchanged(tokenizers) -> None:  # noqa: ANN001
    full, cut = tokenizers
    messages = [{"role": "user", "content": "请只生成一条祝福语：给奶奶的中秋祝福"}]
    for tok in (full, cut):
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert text == ("<|im_start|>user\n请只生成一条祝福语：给奶奶的中秋祝福<|im_end|>\n"
                        "<|im_start|>assistant\n")
    ids = cut.apply_chat_template(messages, add_generation_prompt=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    assert ids[0] == cut.convert_tokens_to_ids("<|im_start|>")


def test_cut_of_a_toy_vocabulary_keeps_merge_closure(zhufu_home_dir: Path) -> None:
    """Keeping 'abc' keeps the merges that build it (a+b, ab+c) and the 256 bytes."""
    cut = cut_vocabulary(zhufu_home_dir / "models" / qt.TOKENIZER_DIRNAME / "tokenizer.json",
                         ["祝福"])
    vocab = cut["model"]["vocab"]
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert set(qt.bytes_to_unicode().values()) <= set(vocab)
    merged = {"".join(m.split(" ", 1) if isinstance(m, str) else m)
              for m in cut["model"]["merges"]}
    assert merged == set(vocab) - set(qt.bytes_to_unicode().values())
    assert [a["id"] for a in cut["added_tokens"]] == list(range(len(vocab),
                                                                len(vocab) + 22))
