"""``zhufu curate``: multi-agent curation of preference pairs (the work a CurationJob runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from zhufu.pipeline.cli.common import (
    ConfigOption,
    OverridesOption,
    fail,
    load_stage_config,
    run_stage,
)


def curate(
    config: ConfigOption = None,
    overrides: OverridesOption = None,
    fresh: Annotated[bool, typer.Option(
        help="Start over: move the journal of a previous run aside instead of resuming.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Retrieval → debate → judge → reflect per candidate; best/worst per query become pairs.

    Resumes by default: answers already in the output's journal are not asked again.
    """
    from zhufu.pipeline.config import CurateConfig
    from zhufu.pipeline.curation.stage import curate as run_curate
    from zhufu.pipeline.curation.stage import set_aside_journal

    cfg = load_stage_config(CurateConfig, config, overrides)
    if fresh:
        moved = set_aside_journal(cfg)
        if moved:
            typer.echo(f"previous journal moved to {moved}", err=True)
    run_stage(lambda c: _clean(run_curate, c, progress), cfg)


def _clean(run: Callable[..., Any], cfg: Any, progress: bool) -> Any:
    """Journal and retrieval set-up errors are bad input: exit 2 with the message."""
    from zhufu.pipeline.curation.journal import JournalError
    from zhufu.pipeline.curation.retrieval import RetrievalUnavailable

    try:
        return run(cfg, progress=progress)
    except (JournalError, RetrievalUnavailable) as e:
        raise fail(str(e)) from e
