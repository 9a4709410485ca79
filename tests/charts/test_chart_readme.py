"""charts/zhufu/README.md is generated from values.yaml's ``# --`` comments by
scripts/chart_readme.py, and the committed file is up to date."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "chart_readme.py"


def _module():
    spec = importlib.util.spec_from_file_location("chart_readme", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["chart_readme"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_committed_readme_is_up_to_date() -> None:
    proc = subprocess.run([sys.executable, "-P", str(SCRIPT), "--check"], capture_output=True,
                          text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_every_documented_value_is_a_row() -> None:
    mod = _module()
    values = (REPO / "charts" / "zhufu" / "values.yaml").read_text(encoding="utf-8")
    documented = sum(1 for line in values.splitlines()
                     if line.strip() == "# --" or line.strip().startswith("# -- "))
    rows = mod.parse_values(values)
    assert len(rows) == documented
    readme = (REPO / "charts" / "zhufu" / "README.md").read_text(encoding="utf-8")
    for key in ("minio.auth.rootPassword", "llm.enabled", "rbac.aggregateToDefaultRoles",
                "operator.image.digest"):
        assert f"| `{key}` |" in readme


def test_parser_reads_nesting_continuations_and_map_defaults() -> None:
    text = """\
# A file comment, not a value.
a:
  # -- Nested leaf,
  # continued.
  b: 1
  # -- A documented map: one row, its whole default.
  c:
    d: [x]
    e: "y"
  f: 2
# -- A top-level list.
g: []
"""
    rows = _module().parse_values(text)
    assert [(r.key, r.type, r.default, r.description) for r in rows] == [
        ("a.b", "int", "1", "Nested leaf, continued."),
        ("a.c", "object", '{"d": ["x"], "e": "y"}', "A documented map: one row, its whole "
         "default."),
        ("g", "list", "[]", "A top-level list."),
    ]
    assert yaml.safe_load(text)["a"]["f"] == 2  # undocumented: no row


def test_check_fails_on_a_stale_readme(tmp_path: Path) -> None:
    """The check can fail: a README that misses a row is reported."""
    mod = _module()
    chart = tmp_path / "zhufu"
    chart.mkdir()
    for name in ("Chart.yaml", "values.yaml"):
        (chart / name).write_text((REPO / "charts" / "zhufu" / name).read_text())
    text = mod.render(chart)
    assert text == mod.render()
    (chart / "values.yaml").write_text((chart / "values.yaml").read_text()
                                       + "# -- A new value.\nnewValue: 1\n")
    assert "| `newValue` | int | `1` | A new value. |" in mod.render(chart)
