"""``zhufu generate`` and the shared sampler: any policy spec, N greetings per query."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhufu.pipeline.evaluation.sampling import sample_greetings
from zhufu.pipeline.models import tiny_policy_path


def test_sample_greetings_shape_and_seed(zhufu_home: Path) -> None:
    queries = ["给妈妈的生日祝福语", "春节给客户的祝福 正式"]
    out = sample_greetings("tiny", queries, n=3, max_tokens=6, seed=1)
    assert [len(x) for x in out] == [3, 3] and all(isinstance(t, str) for x in out for t in x)
    assert sample_greetings(str(tiny_policy_path()), queries, n=3, max_tokens=6, seed=1) == out
    with pytest.raises(ValueError, match="n must be >= 1"):
        sample_greetings("tiny", queries, n=0)
    with pytest.raises(ValueError, match="non-empty"):
        sample_greetings("tiny", ["  "])


def test_generate_cli_text_and_json(zhufu_home: Path) -> None:
    from zhufu.pipeline.cli import app

    out = CliRunner().invoke(app, ["generate", "--model", "tiny", "-n", "2", "--max-tokens",
                                   "5", "给奶奶的中秋祝福", "闺蜜生日祝福语 幽默"])
    assert out.exit_code == 0, out.output
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "# 给奶奶的中秋祝福" and lines[3] == "# 闺蜜生日祝福语 幽默"
    assert all(line.startswith("- ") for line in lines[1:3] + lines[4:6]) and len(lines) == 6
    # five tokens of a random-weight model are never a finished greeting
    assert all("[unreadable:" in line for line in lines[1:3])

    out = CliRunner().invoke(app, ["generate", "-m", "tiny", "-n", "2", "--max-tokens", "5",
                                   "--json", "给奶奶的中秋祝福"])
    rows = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert len(rows) == 2 and {r["query"] for r in rows} == {"给奶奶的中秋祝福"}
    assert all(r["readable"] is False and "unfinished" in r["failed"] for r in rows)


def test_generate_cli_bad_spec_is_a_clean_error(zhufu_home: Path, tmp_path: Path) -> None:
    from zhufu.pipeline.cli import app

    out = CliRunner().invoke(app, ["generate", "--model", str(tmp_path / "nope"), "祝福"])
    assert out.exit_code == 2
    assert "error:" in out.output and "nope" in out.output and "Traceback" not in out.output
    out = CliRunner().invoke(app, ["generate", "祝福"])
    assert out.exit_code == 2 and "--model" in out.output
