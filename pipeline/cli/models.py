"""``zhufu sft`` (fine-tune the policy), ``zhufu models build`` (the offline defaults) and
``zhufu ui`` (the MLflow UI on whichever store is in use).

Light at import: torch, TRL and MLflow are imported inside the commands.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from zhufu.pipeline.cli.common import (
    ConfigOption,
    OverridesOption,
    fail,
    load_stage_config,
    run_stage,
)

app = typer.Typer(help="Build and inspect the offline default models.", no_args_is_help=True)


def sft(config: ConfigOption = None, overrides: OverridesOption = None) -> None:
    """Fine-tune the policy on Alpaca greetings (TRL SFTTrainer); register zhufu-policy@sft.

    Data defaults to the starter set; one MLflow run holds the config, metrics and model.
    """
    from zhufu.pipeline.config import SFTConfig

    cfg = load_stage_config(SFTConfig, config, overrides)
    from zhufu.pipeline.train.sft import run_sft

    run_stage(run_sft, cfg)


@app.command("build")
def build() -> None:
    """Build the Qwen2.5 tokenizer and the tiny policy / reward model (offline, once).

    They go to the data dir ($ZHUFU_HOME or ./.zhufu); prints where each one is.
    """
    from zhufu.pipeline.models import (
        TokenizerSourceError,
        qwen_tokenizer_path,
        tiny_policy_path,
        tiny_reward_model_path,
    )

    for label, make in (("tokenizer", qwen_tokenizer_path), ("tiny", tiny_policy_path),
                        ("tiny-rm", tiny_reward_model_path)):
        started = time.perf_counter()
        try:
            path = make()
        except TokenizerSourceError as e:
            raise fail(str(e)) from e
        typer.echo(f"{label:<10} {path}  ({time.perf_counter() - started:.1f}s)")


def ui(
    port: Annotated[int, typer.Option(help="Port to serve the UI on.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind (127.0.0.1 = this machine).")
                    ] = "127.0.0.1",
) -> None:
    """Open the MLflow UI on the store in use (local store, or the MLFLOW_TRACKING_URI server).

    Without MLFLOW_TRACKING_URI it serves the sqlite store under the data dir; with it,
    it prints that server's URL.
    """
    from zhufu.pipeline import tracking

    raise typer.Exit(tracking.ui(port, host))
