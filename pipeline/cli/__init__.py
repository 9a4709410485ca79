"""The ``zhufu`` command: one sub-command per stage, each a thin wrapper over library code.

Sub-command modules stay light (no torch at import); heavy imports happen inside commands.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="zhufu",
    help="Zhufu (祝福): RLAIF for Chinese greetings — curation, judges, reward models, GRPO.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each area registers its commands here (one line each).
from zhufu.pipeline.cli import data  # noqa: E402

app.add_typer(data.app, name="data")
from zhufu.pipeline.cli import evaluate, judge  # noqa: E402

app.add_typer(judge.app, name="judge")
from zhufu.pipeline.cli import judge_train  # noqa: E402

judge.app.command("train")(judge_train.train)
app.add_typer(evaluate.app, name="eval")
from zhufu.pipeline.cli import operator_cmd  # noqa: E402

app.add_typer(operator_cmd.app, name="operator")

from zhufu.pipeline.cli import grpo  # noqa: E402

app.command("grpo")(grpo.grpo)
from zhufu.pipeline.cli import curate  # noqa: E402

app.command("curate")(curate.curate)
from zhufu.pipeline.cli import rm  # noqa: E402

app.command("train-rm")(rm.train_rm)
app.add_typer(rm.app, name="rm")

from zhufu.pipeline.cli import run  # noqa: E402

app.command("run")(run.run)

from zhufu.pipeline.cli import models  # noqa: E402

app.command("sft")(models.sft)
app.add_typer(models.app, name="models")
app.command("ui")(models.ui)

from zhufu.pipeline.cli import compare  # noqa: E402

evaluate.app.command("compare")(compare.compare)


def main() -> None:
    app()
