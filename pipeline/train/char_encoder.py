"""A small BERT-style reward-model encoder over a character vocabulary.

Chinese greetings are short and their characters are a natural unit: the ~3k distinct
characters of the paper's training pairs make a vocabulary 50x smaller than Qwen's 151k BPE,
so a from-scratch encoder spends its parameters on layers instead of embeddings.

The tokenizer is a standard ``BertTokenizerFast`` (WordPiece) whose vocabulary is every
non-space character of the training texts; BERT's pre-tokenizer already splits each CJK
character (and punctuation) into its own token, and non-CJK characters also get a ``##``
continuation entry so Latin words and digits split into characters instead of ``[UNK]``.
The model is ``BertForSequenceClassification`` with one output. Both save and load with the
usual ``from_pretrained`` (``AutoTokenizer`` / ``AutoModelForSequenceClassification``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from zhufu.pipeline.config import CharEncoderConfig

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
#: Characters at or above this code point are CJK (and beyond): whole tokens, no ``##`` form.
_CJK_START = 0x2E80


def char_vocab(texts: Iterable[str]) -> list[str]:
    """Special tokens, then every distinct non-space character (sorted), then ``##c`` forms
    for non-CJK characters.

    >>> char_vocab(["生日快乐 ab", "快乐"])[5:]
    ['a', 'b', '乐', '快', '日', '生', '##a', '##b']
    """
    chars = sorted({c for text in texts for c in text if not c.isspace()})
    return [*SPECIAL_TOKENS, *chars, *(f"##{c}" for c in chars if ord(c) < _CJK_START)]


def char_tokenizer(texts: Iterable[str], max_length: int) -> Any:
    """A ``BertTokenizerFast`` whose vocabulary is :func:`char_vocab` of ``texts``."""
    from transformers import BertTokenizerFast

    vocab = {token: i for i, token in enumerate(char_vocab(texts))}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=False, tokenize_chinese_chars=True,
                                  strip_accents=False)
    tokenizer.model_max_length = max_length
    tokenizer.padding_side = "right"
    return tokenizer


def build_char_encoder(texts: Iterable[str], shape: CharEncoderConfig,
                       max_length: int) -> tuple[Any, Any]:
    """(fresh ``BertForSequenceClassification`` with one output, its char tokenizer)."""
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = char_tokenizer(texts, max_length)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=shape.hidden_size,
        num_hidden_layers=shape.num_layers, num_attention_heads=shape.num_heads,
        intermediate_size=4 * shape.hidden_size, hidden_dropout_prob=shape.dropout,
        attention_probs_dropout_prob=shape.dropout, max_position_embeddings=max(64, max_length),
        num_labels=1, pad_token_id=tokenizer.pad_token_id,
    )
    return BertForSequenceClassification(config), tokenizer
