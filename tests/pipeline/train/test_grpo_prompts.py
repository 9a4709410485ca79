"""GRPOConfig.max_prompt_length takes effect: TRL 1.16 has no such field, so the prompts are
cut when the dataset is built (the paper's preset says 256 tokens)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhufu.pipeline.errors import ConfigError


def test_prompts_are_cut_to_max_prompt_length(zhufu_home: Path) -> None:
    from zhufu.pipeline.data import load_prompts
    from zhufu.pipeline.models import load_tokenizer
    from zhufu.pipeline.train.grpo import build_prompt_dataset, prompt_tokens

    tok = load_tokenizer("tiny", padding_side="left")
    prompts = load_prompts(None)
    lengths = [len(prompt_tokens(p.messages, tok)) for p in prompts]
    limit = sorted(lengths)[len(lengths) // 2]  # the median: some prompts are longer
    dataset, cut = build_prompt_dataset(None, tok, limit)
    assert cut == sum(n > limit for n in lengths) > 0
    assert max(len(prompt_tokens(m, tok)) for m in dataset["prompt"]) <= limit
    assert dataset["query"] == [p.query for p in prompts]  # rewards see the whole request
    for p, messages, n in zip(prompts, dataset["prompt"], lengths, strict=True):
        if n <= limit:
            assert messages == p.messages
        else:
            content = messages[-1]["content"]
            assert content and p.messages[-1]["content"].startswith(content)
            assert len(content) < len(p.messages[-1]["content"])
    assert build_prompt_dataset(None, tok, max(lengths))[1] == 0
    with pytest.raises(ConfigError, match="chat template alone"):
        build_prompt_dataset(None, tok, 8)
