"""``zhufu-operator``: start Kopf with Zhufu's handlers, scoped by ``ZHUFU_NAMESPACE``.

It runs ``kopf run --standalone -m zhufu.operator.handlers`` plus one ``--namespace=<ns>`` per
namespace in ``ZHUFU_NAMESPACE`` (comma-separated; the chart's ``rbac.singleNamespace`` mode
sets it to ``rbac.watchNamespaces`` or the release namespace, each with its own Role) or
``--all-namespaces`` when it is empty. Every
other argument (``--liveness=…``, ``--verbose``) goes to ``kopf run`` unchanged; a namespace
flag among them is refused, so the setting stays the one place that decides what is watched.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from zhufu.operator.settings import OperatorSettings, SettingsError, load_settings

HANDLERS = "zhufu.operator.handlers"
_SCOPE_FLAGS = ("-n", "--namespace", "-A", "--all-namespaces")


def kopf_args(settings: OperatorSettings, extra: Sequence[str] = ()) -> list[str]:
    """The ``kopf`` command line for these settings and extra ``kopf run`` arguments."""
    for arg in extra:
        if arg.split("=", 1)[0] in _SCOPE_FLAGS:
            raise SettingsError(f"{arg!r}: the watched namespace comes from ZHUFU_NAMESPACE "
                                "(empty: all namespaces), not from a kopf flag")
    namespaces = [ns.strip() for ns in settings.namespace.split(",") if ns.strip()]
    scope = [f"--namespace={ns}" for ns in namespaces] or ["--all-namespaces"]
    return ["run", "--standalone", "-m", HANDLERS, *scope, *extra]


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of the operator image and the chart's operator Deployment."""
    try:
        args = kopf_args(load_settings(), sys.argv[1:] if argv is None else argv)
    except SettingsError as e:
        sys.exit(f"zhufu-operator: {e}")
    from kopf.cli import main as kopf_cli

    kopf_cli.main(args=args, prog_name="zhufu-operator")
