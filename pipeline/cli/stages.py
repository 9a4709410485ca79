"""Stage commands, generated from :data:`zhufu.pipeline.stages.STAGES`.

Each reads one config (``--config FILE`` plus ``--set KEY=VALUE`` overrides, and the stage's
own :class:`~zhufu.pipeline.stages.Option` flags), runs the stage through the stage wrapper
and prints its StageResult JSON on stdout (global rank 0 only): the only thing on stdout,
whatever the libraries print while the stage runs (that goes to stderr). Top-level stages (``zhufu
sft``, ``curate``, ``train-rm``, ``grpo``) are in :data:`app`; a group adds its own with
:func:`add_stage_commands` (``zhufu judge train``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from zhufu.pipeline.cli.common import ConfigOption, OverridesOption, result_stdout
from zhufu.pipeline.stages import STAGES, Option, Stage


def stage_command(stage: Stage) -> Callable[..., None]:
    """The typer command of ``stage``: ``--config``, ``--set`` and its options."""

    def command(config: Path | None = None, overrides: list[str] | None = None,
                **options: Any) -> None:
        from zhufu.pipeline import distributed
        from zhufu.pipeline.config import load_config
        from zhufu.pipeline.stage_runner import run

        overrides = list(overrides or [])
        run_options = {}
        for option in stage.options:
            value = options[option.name]
            if option.field is None:
                run_options[option.name] = value
            elif value is not None:  # a shortcut for --set FIELD=VALUE
                overrides.append(f"{option.field}={value}")
        with result_stdout() as stdout:
            result = run(stage.name, load_config(stage.config, config, overrides),
                         **run_options)
        if distributed.is_main_process():
            typer.echo(result.to_json(), file=stdout)

    params = [inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None,
                                annotation=ConfigOption),
              inspect.Parameter("overrides", inspect.Parameter.KEYWORD_ONLY, default=None,
                                annotation=OverridesOption)]
    params += [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default,
                                 annotation=_annotation(o)) for o in stage.options]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = stage.help
    command.__name__ = stage.name.replace("-", "_")
    return command


def _annotation(option: Option) -> Any:
    kind = bool if isinstance(option.default, bool) else str | None
    return Annotated[kind, typer.Option(help=option.help)]


def add_stage_commands(app: typer.Typer, group: tuple[str, ...] = ()) -> None:
    """Add to ``app`` the command of every stage whose command path is ``group + (name,)``."""
    for stage in STAGES.values():
        if stage.command[:-1] == group:
            app.command(stage.command[-1])(stage_command(stage))


app = typer.Typer()
add_stage_commands(app)
