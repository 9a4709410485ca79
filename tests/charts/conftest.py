"""Fixtures for the Helm chart tests: the real helm binary renders charts/zhufu.

No Kubernetes cluster can run on the development machines, so these tests check what helm
renders (and what the API server's schemas say of it), not a live install.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "zhufu"
HELM = Path(sys.executable).parent / "helm"
RELEASE = "zz"
NAMESPACE = "zhufu-test"
#: Kubernetes version whose schemas kubernetes-validate checks against.
KUBE_VERSION = "1.37"


@dataclass(frozen=True)
class Rendered:
    """The manifests ``helm template`` produced, parsed, plus the raw text."""

    docs: tuple[dict[str, Any], ...]
    text: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def pod_specs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(``Kind/name``, pod spec) of every workload that carries a pod template."""
        for d in self.docs:
            if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                yield f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the helm binary of the virtual environment; raise with its stderr on failure."""
    proc = subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
    return proc


@functools.cache
def _render(values_file: str | None, sets: tuple[str, ...], include_crds: bool) -> Rendered:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    if values_file:
        args += ["-f", values_file]
    for s in sets:
        args += ["--set", s]
    if include_crds:
        args.append("--include-crds")
    text = helm(*args).stdout
    docs = tuple(d for d in yaml.safe_load_all(text) if d)
    return Rendered(docs=docs, text=text)


@dataclass(frozen=True)
class ChartEnv:
    """What the chart tests share: paths, the test release, helm and a cached renderer."""

    dir: Path = CHART
    release: str = RELEASE
    namespace: str = NAMESPACE
    kube_version: str = KUBE_VERSION

    @staticmethod
    def helm(*args: str) -> subprocess.CompletedProcess[str]:
        return helm(*args)

    @staticmethod
    def render(values_file: Path | str | None = None, *sets: str,
               include_crds: bool = False) -> Rendered:
        """Cached ``helm template`` of the chart with a values file and ``--set`` pairs."""
        return _render(str(values_file) if values_file else None, tuple(sets), include_crds)

    def name(self, component: str, prefix: str | None = None) -> str:
        """Object name of a chart component (``zz-zhufu-<component>`` for the test release)."""
        return f"{prefix or self.release + '-zhufu'}-{component}"

    def ci(self, name: str) -> Path:
        return self.dir / "ci" / f"{name}-values.yaml"


@pytest.fixture(scope="session")
def chart() -> ChartEnv:
    if not HELM.exists():
        pytest.fail(f"{HELM} is missing: run `.venv/bin/python -P scripts/install_tools.py .venv`")
    return ChartEnv()
