"""The ``zhufu`` command: one module per command group, every group registered in :data:`GROUPS`.

Modules stay light at import (no torch, no kopf): heavy imports happen inside the commands.
Errors follow one rule (:mod:`zhufu.pipeline.errors`): a :class:`ZhufuError` raised by any
command prints ``error: <message>`` on stderr and exits with status 2; any other exception is
a bug and keeps its traceback (status 1). A stage command's stdout carries its result (one
JSON object) and nothing else; logs, progress bars and library chatter go to stderr
(``-v`` turns on Zhufu's INFO logs: judge rounds, curation progress).
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

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

EXIT_CODES = ("Exit status: 0 done; 2 bad input or unusable surroundings (a config, data "
              "file, model, server or path to fix: one 'error: ...' line on stderr); 1 a bug "
              "(the traceback on stderr). Stage commands print their result as one JSON "
              "object on stdout; logs and progress go to stderr.")

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
    epilog=EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from zhufu import __version__

        typer.echo(f"zhufu {__version__}")
        raise typer.Exit()


def configure_logging(verbose: bool) -> None:
    """Logs on stderr (the root handler, unless one exists); Zhufu's own INFO logs with
    ``verbose``, else warnings only."""
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s", datefmt="%H:%M:%S")
    logging.getLogger("zhufu").setLevel(logging.INFO if verbose else logging.NOTSET)


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Log progress on stderr (judge rounds, curation progress).")]
    = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")]
    = False,
) -> None:
    if ctx.invoked_subcommand != "operator":  # Kopf sets up the operator's logging
        configure_logging(verbose)


for _name, _group in GROUPS:
    app.add_typer(_group, name=_name)


def main() -> None:
    from zhufu.pipeline import redact

    redact.install()  # credentials never reach the log tail the operator copies into status
    app()
