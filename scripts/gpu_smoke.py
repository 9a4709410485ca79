"""GRPO for 20 steps in bf16 on a random ~0.5B Qwen2 with the real tokenizer (see gpu-smoke.sh)."""

from __future__ import annotations

import argparse
import time

#: Qwen2.5-0.5B's shape (random weights: nothing is downloaded).
QWEN2_05B = {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
             "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151_665,
             "tie_word_embeddings": True, "max_position_embeddings": 4096}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=128)
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from zhufu.pipeline.data import load_prompts
    from zhufu.pipeline.models import qwen_tokenizer_path
    from zhufu.pipeline.rewards.rules import format_reward, length_reward

    assert torch.cuda.is_available(), "no CUDA device"
    tokenizer = AutoTokenizer.from_pretrained(qwen_tokenizer_path(), padding_side="left")
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**QWEN2_05B, pad_token_id=tokenizer.pad_token_id,
                                         eos_token_id=tokenizer.eos_token_id))
    model = model.to(torch.bfloat16)
    print(f"params {sum(p.numel() for p in model.parameters()) / 1e9:.3f} B on "
          f"{torch.cuda.get_device_name()}", flush=True)
    data = Dataset.from_list([{"prompt": p.messages, "query": p.query} for p in load_prompts()])
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):  # noqa: ANN002, ANN003, ANN202
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):  # noqa: ANN002, ANN003, ANN202
            torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)
            print(f"step {len(times)}: {times[-1]:.2f} s", flush=True)

    cfg = GRPOConfig(output_dir="/tmp/zhufu-gpu-smoke-out", max_steps=args.steps,
                     per_device_train_batch_size=args.batch, num_generations=4,
                     max_completion_length=args.new_tokens, learning_rate=3e-7, beta=0.001,
                     bf16=True, logging_steps=5, report_to="none", save_strategy="no")
    trainer = GRPOTrainer(model=model, reward_funcs=[format_reward, length_reward], args=cfg,
                          train_dataset=data, processing_class=tokenizer,
                          callbacks=[StepTimer()])
    trainer.train()
    steady = times[2:] or times
    tokens = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h]
    per_step = tokens[-1] / len(times) if tokens else float("nan")
    mean = sum(steady) / len(steady)
    print(f"\nsteps {len(times)}  mean step {mean:.2f} s (after 2 warm-up)  "
          f"tokens/step {per_step:.0f}  tokens/s {per_step / mean:.0f}  "
          f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
