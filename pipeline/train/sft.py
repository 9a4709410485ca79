"""Supervised fine-tuning of the policy on Alpaca-style greetings with TRL's SFTTrainer.

Each example becomes a two-turn chat: the user turn is the instruction (plus the input, if
any, on a new line), the assistant turn is the greeting. The loss is on the assistant turn
only (the usual instruction-tuning choice; TRL's "completion only" loss, computed here when
tokenizing). Training can go through LoRA adapters (merged into the saved model). Under
``torchrun`` every rank trains (DDP); the stage wrapper saves the model, logs the run and
registers it as ``cfg.register_as`` with alias ``cfg.alias`` (default
``models:/zhufu-policy@sft``) on rank 0.
"""

from __future__ import annotations

import tempfile
from typing import Any

from zhufu.pipeline.config import SFTConfig
from zhufu.pipeline.errors import DataError
from zhufu.pipeline.results import Registration, StageOutput
from zhufu.pipeline.train.callbacks import fit, mlflow_metrics_callback
from zhufu.pipeline.train.plain_head import add_plain_lm_head

STARTER_URI = "zhufu://starter/sft"


def to_messages(instruction: str, input_text: str, output: str) -> list[dict[str, str]]:
    """Alpaca fields → chat messages (instruction and input form the user turn).

    >>> to_messages("写一句生日祝福", "给妈妈", "妈妈生日快乐！")[0]["content"]
    '写一句生日祝福\\n给妈妈'
    """
    user = instruction.strip()
    if input_text and input_text.strip():
        user = f"{user}\n{input_text.strip()}"
    return [{"role": "user", "content": user}, {"role": "assistant", "content": output}]


def build_dataset(data: str | None, tokenizer: Any, max_length: int) -> Any:
    """Tokenized ``datasets.Dataset`` (``input_ids``, ``labels``) from ``load_sft(data)``.

    Each example is rendered with the tokenizer's chat template; the prompt part (everything
    up to and including the assistant header) gets label -100, so the loss is on the
    greeting and its end-of-turn token only. Sequences are cut to ``max_length``; examples
    whose greeting would be cut away entirely are an error naming them, not a silent skip.
    Tokenizing here rather than in TRL keeps ``datasets`` from pickling the 151k-token
    tokenizer to fingerprint its map calls (~10 s).
    """
    from datasets import Dataset

    from zhufu.pipeline.data import load_sft

    examples = load_sft(data)
    if not examples:
        raise DataError(data or STARTER_URI, None, None, "no SFT examples")
    texts = []
    for ex in examples:
        messages = to_messages(ex.instruction, ex.input, ex.output)
        texts += [tokenizer.apply_chat_template(messages[:1], tokenize=False,
                                                add_generation_prompt=True),
                  tokenizer.apply_chat_template(messages, tokenize=False)]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]  # one batch call
    rows = []
    for i, (prompt_ids, ids) in enumerate(zip(encoded[::2], encoded[1::2], strict=True), 1):
        start = _common_prefix(prompt_ids, ids)
        if start >= max_length:
            raise DataError(data or STARTER_URI, i, None, f"the prompt alone is {start} tokens, "
                            f"max_length is {max_length}")
        labels = [-100] * start + ids[start:]
        rows.append({"input_ids": ids[:max_length], "labels": labels[:max_length]})
    return Dataset.from_list(rows)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def sft(cfg: SFTConfig) -> StageOutput:
    """Train the SFT policy on every rank; the wrapper saves, logs and registers it."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    from zhufu.pipeline import tracking
    from zhufu.pipeline.models import load_tokenizer, resolve_model

    base = resolve_model(cfg.base_model)
    tokenizer = load_tokenizer(str(base), padding_side="right")
    dataset = build_dataset(cfg.data, tokenizer, cfg.max_length)
    on_gpu = torch.cuda.is_available()
    tracking.log_dataset(cfg.data or STARTER_URI, "sft", "training")
    tracking.log_metrics({"data/examples": len(dataset)})
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    with tempfile.TemporaryDirectory(prefix="zhufu-sft-ckpt-") as ckpt:
        args = TRLSFTConfig(
            output_dir=ckpt, max_steps=cfg.max_steps, num_train_epochs=cfg.num_epochs,
            learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.scheduler,
            warmup_steps=cfg.warmup_ratio, per_device_train_batch_size=cfg.batch_size,
            # build_dataset already cut every example to max_length
            padding_free=cfg.padding_free, max_length=None if cfg.padding_free
            else cfg.max_length, seed=cfg.seed, bf16=on_gpu and
            torch.cuda.is_bf16_supported(), use_cpu=not on_gpu, save_strategy="no",
            report_to="none", logging_steps=1, logging_first_step=True,
            dataloader_num_workers=0, disable_tqdm=False,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset,
                             processing_class=tokenizer,
                             peft_config=cfg.lora.to_peft("CAUSAL_LM") if cfg.lora else None,
                             callbacks=[mlflow_metrics_callback()])
        if not on_gpu:  # TRL's tiled LM head costs more than the model on CPU (plain_head.py)
            add_plain_lm_head(trainer.model)
        steps, loss, seconds = fit(trainer, "sft")
    tokenizer.padding_side = "left"  # saved with the model, for generation
    return StageOutput(
        metrics={"train_loss": loss, "steps": float(steps),
                 "steps_per_s": steps / seconds if seconds > 0 else 0.0},
        trainer=trainer, register=Registration(cfg.register_as, alias=cfg.alias))
