"""In-process transformers generation, batched, with a tiny random Qwen2 built here.

The tokenizer is a byte-level BPE trained on a few strings in the test (no hub, no files
from elsewhere), with ChatML special tokens and a chat template. Proves: concurrent calls are
generated together in batches; left padding is right (a request answered in a padded batch
gets the same greedy text as alone); limits and counters hold; the factory builds it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from zhufu.pipeline.llm import ChatRequest, LLMError, make_backend, parse_llm_spec
from zhufu.pipeline.llm.hf_backend import CHATML_TEMPLATE, TransformersBackend

pytestmark = pytest.mark.timeout(120)

CORPUS = ["祝你生日快乐，万事如意！", "新年快乐，身体健康", "Happy birthday to my dear friend",
          "中秋节快乐，阖家团圆", "user assistant system", "给妈妈写一句母亲节祝福"] * 20
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    path = tmp_path_factory.mktemp("tiny-qwen2")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>")
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=256, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    Qwen2ForCausalLM(config).save_pretrained(path)
    return path


def req(text: str, **kw) -> ChatRequest:
    return ChatRequest(messages=[{"role": "system", "content": "你是助手"},
                                 {"role": "user", "content": text}], **kw)


PROMPTS = ["生日", "给妈妈写一句母亲节祝福，要温暖", "新年", "Happy birthday to my friend",
           "中秋节快乐阖家团圆的祝福语写一句", "hi"]


async def test_batched_generation_matches_single(tiny_model: Path) -> None:
    batched = TransformersBackend(tiny_model, device="cpu", batch_size=4, batch_wait_s=0.05,
                                  temperature=0.0, max_tokens=12)
    results = await batched.chat_many([req(p) for p in PROMPTS])
    await batched.aclose()
    assert not any(isinstance(r, LLMError) for r in results)
    assert sum(batched.batch_sizes) == len(PROMPTS) and max(batched.batch_sizes) == 4
    assert all(1 <= r.completion_tokens <= 12 and r.prompt_tokens > 5 for r in results)
    assert any(r.completion_tokens > 3 and r.text for r in results)
    # prompts differ in length, so the batch was padded: left padding must not change answers
    single = TransformersBackend(tiny_model, device="cpu", batch_size=1, temperature=0.0,
                                 max_tokens=12)
    alone = [await single.chat(req(p)) for p in PROMPTS]
    await single.aclose()
    assert single.batch_sizes == [1] * len(PROMPTS)
    assert [r.text for r in results] == [r.text for r in alone]
    assert [r.prompt_tokens for r in results] == [r.prompt_tokens for r in alone]
    assert batched.stats.calls == len(PROMPTS) and batched.stats.completion_tokens > 0


async def test_sampling_params_split_batches(tiny_model: Path) -> None:
    llm = TransformersBackend(tiny_model, device="cpu", batch_size=8, batch_wait_s=0.05,
                              temperature=0.0, max_tokens=6)
    results = await llm.chat_many([req("a"), req("b", max_tokens=2), req("c"),
                                   req("d", temperature=0.9, max_tokens=2)])
    await llm.aclose()
    assert sorted(llm.batch_sizes) == [1, 1, 2]
    assert results[1].completion_tokens <= 2 and results[3].completion_tokens <= 2


async def test_event_loop_keeps_running_while_generating(tiny_model: Path) -> None:
    llm = TransformersBackend(tiny_model, device="cpu", batch_size=2, temperature=0.0,
                              max_tokens=16)
    llm.load()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await llm.chat_many([req("生日"), req("新年")] * 2)
    task.cancel()
    await llm.aclose()
    assert llm.batch_sizes == [2, 2]
    assert ticks >= 10  # a blocked loop would tick only between the two batches


async def test_factory_and_errors(tiny_model: Path, tmp_path: Path) -> None:
    cfg = parse_llm_spec(f"hf:{tiny_model}", batch_size=2, max_tokens=4, temperature=0.0,
                         cache_dir=str(tmp_path / "cache"))
    llm = make_backend(cfg)
    first = await llm.chat(req("生日"))
    again = await llm.chat(req("生日"))
    await llm.aclose()
    assert again.cached and again.text == first.text and llm.stats.cache_hits == 1
    with pytest.raises(LLMError, match="not found"):
        TransformersBackend(tmp_path / "missing")
    broken = TransformersBackend(tmp_path)  # a folder without a model
    with pytest.raises(LLMError) as err:
        await broken.chat(req("x"))
    await broken.aclose()
    assert broken.stats.failures == 1 and str(tmp_path) in str(err.value)
