"""Options every stage command shares: ``--config FILE`` and ``--set KEY=VALUE``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[Path | None, typer.Option(
    "--config", "-c", help="YAML file with the stage's config (see examples/).")]
OverridesOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a field: KEY=VALUE, repeatable (e.g. --set llm.concurrency=32).")]
