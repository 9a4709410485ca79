"""``zhufu models build``: the offline default models (tokenizer, tiny policy, tiny RM)."""

from __future__ import annotations

import time

import typer

app = typer.Typer(help="Build and inspect the offline default models.", no_args_is_help=True)


@app.command("build")
def build() -> None:
    """Build the Qwen2.5 tokenizer, its cut version and the tiny policy / reward model
    (offline, once).

    They go to the data dir ($ZHUFU_HOME or ./.zhufu); prints where each one is.
    """
    from zhufu.pipeline.models import qwen_tokenizer_path, tiny_policy_path, tiny_reward_model_path
    from zhufu.pipeline.models.vocab import cut_tokenizer_path

    for label, make in (("tokenizer", qwen_tokenizer_path), ("vocab-cut", cut_tokenizer_path),
                        ("tiny", tiny_policy_path), ("tiny-rm", tiny_reward_model_path)):
        started = time.perf_counter()
        path = make()
        typer.echo(f"{label:<10} {path}  ({time.perf_counter() - started:.1f}s)")
