"""``zhufu operator``: generate the CRDs, run the Kopf operator.

Importing this module imports neither kopf nor kubernetes; the commands import them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The Kubernetes operator: CRDs and the controller.", no_args_is_help=True)


@app.command("crds")
def crds(
    out: Annotated[Path, typer.Option(help="Folder for the CRD YAML files.")] = Path(
        "charts/zhufu/crds"),
    check: Annotated[bool, typer.Option(help="Only compare; exit 1 if they differ.")] = False,
) -> None:
    """Write one CustomResourceDefinition per kind, generated from the config models."""
    from zhufu.operator.crds import drift, write_crds

    if check:
        stale = drift(out)
        if stale:
            typer.echo(f"out of date in {out}: {', '.join(stale)}; run `zhufu operator crds`")
            raise typer.Exit(1)
        typer.echo(f"{out}: up to date")
        return
    for path in write_crds(out):
        typer.echo(f"wrote {path}")


@app.command("run")
def run(
    namespace: Annotated[str, typer.Option(envvar="ZHUFU_NAMESPACE",
                                           help="Namespace to watch; empty = all.")] = "",
    liveness: Annotated[str, typer.Option(help="Kopf liveness endpoint ('' = none).")] = (
        "http://0.0.0.0:8080/healthz"),
    verbose: Annotated[bool, typer.Option(help="Debug logging.")] = False,
) -> None:
    """Run the operator (``kopf run --standalone -m zhufu.operator.handlers``)."""
    import kopf.cli

    args = ["run", "--standalone", "-m", "zhufu.operator.handlers"]
    args += ["--namespace", namespace] if namespace else ["--all-namespaces"]
    if liveness:
        args += ["--liveness", liveness]
    if verbose:
        args.append("--verbose")
    kopf.cli.main(args=args, standalone_mode=True)
