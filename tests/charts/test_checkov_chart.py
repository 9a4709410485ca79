"""checkov (static security analysis) over the rendered chart and both Dockerfiles.

Every CI values file is rendered with helm, the Dockerfiles are copied beside the manifests,
and one checkov run scans them with the repository's .checkov.yaml (whose skipped checks are
explained there). A deliberately bad manifest is planted in the same run: checkov must flag it
and nothing else. checkov lives in its own virtual environment (.venv/checkov) because its
pins would downgrade packages of the main one:

    python3 -m venv .venv/checkov && .venv/checkov/bin/pip install checkov==3.3.30
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKOV_CANDIDATES = [REPO / ".venv" / "checkov" / "bin" / "checkov",
                      Path(sys.executable).parent / "checkov"]

BAD_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: planted-bad-pod
  namespace: zhufu
spec:
  containers:
    - name: root
      image: busybox:latest
      securityContext:
        privileged: true
        allowPrivilegeEscalation: true
"""


def _checkov() -> Path:
    for path in CHECKOV_CANDIDATES:
        if path.exists():
            return path
    found = shutil.which("checkov")
    if found:
        return Path(found)
    pytest.skip("checkov not installed: python3 -m venv .venv/checkov && "
                ".venv/checkov/bin/pip install checkov==3.3.30")


@pytest.mark.slow
def test_checkov_finds_nothing_but_the_planted_pod(chart, tmp_path: Path) -> None:
    checkov = _checkov()
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    for values in sorted((chart.dir / "ci").glob("*-values.yaml")):
        out = chart.helm("template", chart.release, str(chart.dir), "--namespace",
                         chart.namespace, "-f", str(values), "--include-crds").stdout
        (rendered / values.name).write_text(out)
    (rendered / "planted-bad-pod.yaml").write_text(BAD_POD)
    shutil.copytree(REPO / "images", tmp_path / "images")
    proc = subprocess.run(
        [str(checkov), "--config-file", str(REPO / ".checkov.yaml"), "-d", str(tmp_path),
         "--framework", "kubernetes", "dockerfile", "-o", "json"],
        capture_output=True, text=True, timeout=600)
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    by_type = {r["check_type"]: r for r in reports}
    assert {"kubernetes", "dockerfile"} <= set(by_type), proc.stderr[-2000:]
    assert by_type["dockerfile"]["summary"]["passed"] > 0
    assert by_type["kubernetes"]["summary"]["passed"] > 0
    failed = [(c["check_id"], c["file_path"]) for r in reports
              for c in r["results"]["failed_checks"]]
    assert any(path.endswith("planted-bad-pod.yaml") for _, path in failed), \
        "checkov did not flag the planted privileged pod"
    ours = sorted({f for f in failed if not f[1].endswith("planted-bad-pod.yaml")})
    assert not ours, f"checkov findings in the chart or Dockerfiles: {ours}"
