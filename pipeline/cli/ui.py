"""``zhufu ui``: the MLflow UI on whichever store is in use."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer()


@app.command("ui")
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
