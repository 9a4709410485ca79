"""Model specs a stage accepts besides ``tiny`` and local folders: an ``s3://`` prefix
(against a real moto S3 server), checked for a model's files and cached by content."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhufu.pipeline.data.storage import upload_dir
from zhufu.pipeline.models import ModelSpecError, resolve_model, tiny_policy_path


def test_s3_prefix_is_downloaded_once_and_again_when_it_changes(
        zhufu_home: Path, s3_bucket: str, s3_server) -> None:  # noqa: ANN001
    tiny = tiny_policy_path()
    upload_dir(tiny, f"s3://{s3_bucket}/base/tiny")
    local = resolve_model(f"s3://{s3_bucket}/base/tiny/")
    assert (local / "config.json").read_bytes() == (tiny / "config.json").read_bytes()
    assert {p.name for p in local.iterdir()} == {p.name for p in tiny.iterdir()}
    assert resolve_model(f"s3://{s3_bucket}/base/tiny/") == local  # cached
    s3_server.client().put_object(Bucket=s3_bucket, Key="base/tiny/README.md", Body=b"v2")
    again = resolve_model(f"s3://{s3_bucket}/base/tiny/")
    assert again != local and (again / "README.md").read_text() == "v2"


def test_s3_prefix_without_a_model_names_the_uri(zhufu_home: Path, s3_bucket: str,
                                                 s3_server) -> None:  # noqa: ANN001
    with pytest.raises(ModelSpecError, match=f"s3://{s3_bucket}/empty: no config.json"):
        resolve_model(f"s3://{s3_bucket}/empty")
    s3_server.client().put_object(Bucket=s3_bucket, Key="data/config.jsonl", Body=b"{}")
    with pytest.raises(ModelSpecError, match="no config.json"):
        resolve_model(f"s3://{s3_bucket}/data")
