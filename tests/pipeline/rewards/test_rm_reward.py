"""Reward-model scoring: input formats, the TRL reward function's shape, order preservation.

Uses a real (untrained, seeded) character-level BERT reward model saved to a tmp dir: the
scores are arbitrary but deterministic, which is all these checks need.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from zhufu.pipeline.config import CharEncoderConfig
from zhufu.pipeline.rewards import rm

QUERIES = ["生日祝福语", "新年祝福语", "送给老师的祝福"]
RESPONSES = ["祝你生日快乐，天天开心！", "新年快乐，万事如意。", "老师辛苦了，祝您桃李满天下！"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from zhufu.pipeline.train.char_encoder import build_char_encoder

    torch.manual_seed(0)
    model, tok = build_char_encoder(QUERIES + RESPONSES,
                                    CharEncoderConfig(hidden_size=32, num_layers=1, num_heads=2),
                                    max_length=64)
    out = tmp_path_factory.mktemp("rm")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_doctests_of_format_helpers() -> None:
    failures, tried = doctest.testmod(rm, verbose=False)
    assert tried >= 5 and failures == 0


def test_score_texts_is_ordered_and_batch_independent(model_dir: Path) -> None:
    scores = rm.score_texts(str(model_dir), QUERIES, RESPONSES, batch_size=2)
    assert len(scores) == 3 and all(isinstance(s, float) for s in scores)
    assert len(set(scores)) == 3  # distinct inputs, distinct scores
    reversed_scores = rm.score_texts(str(model_dir), QUERIES[::-1], RESPONSES[::-1],
                                     batch_size=3)
    assert reversed_scores == pytest.approx(scores[::-1], abs=1e-5)
    singles = [rm.score_texts(str(model_dir), [q], [r])[0]
               for q, r in zip(QUERIES, RESPONSES, strict=True)]
    assert singles == pytest.approx(scores, abs=1e-5)  # padding does not change a score


def test_rm_reward_accepts_plain_and_chat_formats(model_dir: Path) -> None:
    reward = rm.rm_reward(str(model_dir))
    plain = reward(prompts=QUERIES, completions=RESPONSES)
    chat = reward(
        prompts=[[{"role": "system", "content": "只写祝福语"}, {"role": "user", "content": q}]
                 for q in QUERIES],
        completions=[[{"role": "assistant", "content": r}] for r in RESPONSES],
        completion_ids=None, trainer_state=None,
    )
    assert isinstance(plain, list) and len(plain) == 3
    assert chat == pytest.approx(plain, abs=1e-6)
    assert reward.__name__ == "rm"


def test_encode_formats(model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = rm.encode(tok, ["生日"], ["喵乐"], max_length=16)["input_ids"][0]
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "生", "日", "[SEP]", "[UNK]", "乐", "[SEP]"]
    long = rm.encode(tok, ["生日"], ["快乐" * 50], max_length=10)["input_ids"][0]
    assert len(long) == 10 and tok.convert_ids_to_tokens(long)[:3] == ["[CLS]", "生", "日"]
    with pytest.raises(ValueError, match="1 queries vs 2 responses"):
        rm.encode(tok, ["a"], ["b", "c"], max_length=8)


def test_message_text_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="expected a string"):
        rm.message_text(3)
