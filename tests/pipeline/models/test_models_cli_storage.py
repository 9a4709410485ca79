"""``zhufu models build`` in-process, and uploading a model dir to a real S3 API (moto)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhufu.pipeline.models.storage import split_s3, upload_dir


def test_models_build_prints_paths(zhufu_home: Path) -> None:
    from zhufu.pipeline.cli import app

    out = CliRunner().invoke(app, ["models", "build"])
    assert out.exit_code == 0, out.output
    lines = dict(line.split(None, 1) for line in out.stdout.strip().splitlines())
    assert lines["tokenizer"].startswith(str(zhufu_home / "models" / "qwen2.5-tokenizer"))
    assert lines["tiny"].startswith(str(zhufu_home / "models" / "tiny-qwen2 "))
    assert lines["tiny-rm"].startswith(str(zhufu_home / "models" / "tiny-qwen2-rm "))


def test_split_s3_errors() -> None:
    assert split_s3("s3://b") == ("b", "")
    with pytest.raises(ValueError, match="not an s3:// URI"):
        split_s3("/tmp/x")
    with pytest.raises(ValueError, match="no bucket"):
        split_s3("s3:///key")


@pytest.mark.integration
def test_upload_dir_to_s3(s3_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    s3_server.client().create_bucket(Bucket="zhufu-upload")
    (tmp_path / "m" / "sub").mkdir(parents=True)
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "sub" / "w.bin").write_bytes(b"\x00\x01" * 1000)
    keys = upload_dir(tmp_path / "m", "s3://zhufu-upload/outputs/sft/")
    assert keys == ["outputs/sft/config.json", "outputs/sft/sub/w.bin"]
    got = s3_server.client().get_object(Bucket="zhufu-upload", Key="outputs/sft/sub/w.bin")
    assert got["Body"].read() == b"\x00\x01" * 1000
