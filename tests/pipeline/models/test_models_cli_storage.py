"""``zhufu models build`` in-process (uploads to S3 are tested with the data storage layer)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner


def test_models_build_prints_paths(zhufu_home: Path) -> None:
    from zhufu.pipeline.cli import app

    out = CliRunner().invoke(app, ["models", "build"])
    assert out.exit_code == 0, out.output
    lines = dict(line.split(None, 1) for line in out.stdout.strip().splitlines())
    models = zhufu_home / "models"
    assert lines["tokenizer"].startswith(str(models / "qwen2.5-tokenizer "))
    assert lines["vocab-cut"].startswith(str(models / "qwen2.5-tokenizer-zhufu-"))
    assert lines["tiny"].startswith(str(models / "tiny-qwen2-"))
    assert lines["tiny-rm"].startswith(str(models / "tiny-qwen2-rm-"))
