"""``zhufu operator``: generate the CRDs, show what a resource becomes, run the Kopf operator.

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


@app.command("render")
def render(
    file: Annotated[Path, typer.Option("--filename", "-f", help="YAML with one or more Zhufu "
                                       "resources (CurationJob, JudgeTraining, GRPORun).")],
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace of resources "
                                           "whose metadata names none.")] = "default",
) -> None:
    """Print the children the operator would create (ConfigMap, Service, Job), no cluster
    needed: its own validation and builders, settings from the ZHUFU_* environment."""
    from zhufu.operator.render import RenderError, render_file, to_yaml
    from zhufu.operator.settings import SettingsError, load_settings

    try:
        rendered = render_file(file, load_settings(), namespace)
    except (RenderError, SettingsError) as e:
        typer.echo(f"zhufu operator render: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(to_yaml(rendered), nl=False)


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
