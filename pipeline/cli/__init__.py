"""The ``zhufu`` command: one module per command group, every group registered in :data:`GROUPS`.

Modules stay light at import (no torch, no kopf): heavy imports happen inside the commands.
Errors follow one rule (:mod:`zhufu.pipeline.errors`): a :class:`ZhufuError` raised by any
command prints ``error: <message>`` on stderr and exits with status 2; any other exception is
a bug and keeps its traceback (status 1).
"""

from __future__ import annotations

from typing import Any

import click
import typer
from typer.core import TyperGroup

from zhufu.pipeline.cli import (
    data,
    evaluate,
    generate,
    judge,
    models,
    operator_cmd,
    rm,
    run,
    stages,
    ui,
)
from zhufu.pipeline.errors import ZhufuError

#: Every command group: (name, typer app); ``None`` puts its commands at the top level.
GROUPS: list[tuple[str | None, typer.Typer]] = [
    (None, run.app),           # zhufu run
    (None, stages.app),        # zhufu sft | curate | train-rm | grpo
    ("data", data.app),        # zhufu data validate
    ("judge", judge.app),      # zhufu judge score | train
    ("eval", evaluate.app),    # zhufu eval agreement | compare | judge
    ("rm", rm.app),            # zhufu rm score
    (None, generate.app),      # zhufu generate
    ("models", models.app),    # zhufu models build
    ("operator", operator_cmd.app),  # zhufu operator crds | run
    (None, ui.app),            # zhufu ui
]


class ZhufuCommand(TyperGroup):
    """The root group: turns a :class:`ZhufuError` into one line on stderr and exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZhufuError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e


app = typer.Typer(
    name="zhufu",
    cls=ZhufuCommand,
    help="Zhufu (祝福): RLAIF for Chinese greetings — curation, judges, reward models, GRPO.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for _name, _group in GROUPS:
    app.add_typer(_group, name=_name)


def main() -> None:
    from zhufu.pipeline import redact

    redact.install()  # credentials never reach the log tail the operator copies into status
    app()
