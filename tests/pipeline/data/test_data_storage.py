"""Storage on a real S3 API (moto_server on 127.0.0.1) and on local paths.

Proves: loaders read s3:// URIs through the endpoint from the environment, writers write
there, folders go up and come back, and missing buckets/keys or a dead endpoint give a
clear error naming the URI instead of a hang or a botocore traceback.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from zhufu.pipeline.data import (
    ObjectNotFound,
    StorageError,
    is_s3,
    load_pairs,
    load_prompts,
    load_queries,
    write_pairs,
)
from zhufu.pipeline.data import storage as S
from zhufu.pipeline.data.storage import download_dir, read_bytes, upload_dir, write_text


def test_is_s3() -> None:
    assert is_s3("s3://b/k") and not is_s3("/tmp/x") and not is_s3(Path("s3x"))


def test_load_paper_files_from_s3(shared_data: Path, s3_bucket: str, s3_server) -> None:  # noqa: ANN001
    client = s3_server.client()
    for name in ("reward_data_train.json", "grpo_test.parquet", "random_query.txt"):
        client.upload_file(str(shared_data / name), s3_bucket, f"data/{name}")
    assert len(load_pairs(f"s3://{s3_bucket}/data/reward_data_train.json")) == 6310
    assert len(load_prompts(f"s3://{s3_bucket}/data/grpo_test.parquet")) == 800
    assert len(load_queries(f"s3://{s3_bucket}/data/random_query.txt")) == 10_000


def test_endpoint_from_mlflow_variable(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLFLOW_S3_ENDPOINT_URL alone is enough to find the store."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    write_text(f"s3://{s3_bucket}/q.txt", "生日祝福语\n")
    assert load_queries(f"s3://{s3_bucket}/q.txt") == ["生日祝福语"]


def test_write_then_load_pairs_on_s3(s3_bucket: str) -> None:
    from zhufu.pipeline.data import PreferencePair

    pairs = [PreferencePair("春节祝福", "新春大吉，阖家安康！", "新年好")]
    write_pairs(pairs, f"s3://{s3_bucket}/out/pairs.json")
    assert load_pairs(f"s3://{s3_bucket}/out/pairs.json") == pairs


def test_missing_key_and_bucket(s3_bucket: str) -> None:
    with pytest.raises(ObjectNotFound, match=rf"s3://{s3_bucket}/nope.json: no such object"):
        read_bytes(f"s3://{s3_bucket}/nope.json")
    with pytest.raises(ObjectNotFound, match="bucket 'no-such-bucket-zz' does not exist"):
        read_bytes("s3://no-such-bucket-zz/x.json")
    with pytest.raises(StorageError, match="needs a bucket"):
        read_bytes("s3:///x")
    with pytest.raises(StorageError, match="not a prefix"):
        read_bytes(f"s3://{s3_bucket}/folder/")
    assert not S.exists(f"s3://{s3_bucket}/nope.json")


def test_upload_and_download_dir(s3_bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "ckpt"
    (src / "sub").mkdir(parents=True)
    (src / "model.bin").write_bytes(b"\x00\x01" * 1000)
    (src / "sub" / "config.json").write_text('{"a": 1}')
    uris = upload_dir(src, f"s3://{s3_bucket}/runs/1/")
    assert sorted(uris) == [f"s3://{s3_bucket}/runs/1/model.bin",
                            f"s3://{s3_bucket}/runs/1/sub/config.json"]
    files = download_dir(f"s3://{s3_bucket}/runs/1", tmp_path / "back")
    assert len(files) == 2
    assert (tmp_path / "back" / "model.bin").read_bytes() == b"\x00\x01" * 1000
    assert (tmp_path / "back" / "sub" / "config.json").read_text() == '{"a": 1}'
    with pytest.raises(ObjectNotFound, match="no objects under this prefix"):
        download_dir(f"s3://{s3_bucket}/runs/2", tmp_path / "none")


def test_local_dirs_copy(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("x")
    upload_dir(tmp_path / "a", str(tmp_path / "b"))
    assert download_dir(str(tmp_path / "b"), tmp_path / "c") == [tmp_path / "c" / "f.txt"]


def test_unreachable_endpoint_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    start = time.monotonic()
    with pytest.raises(StorageError) as info:
        load_pairs("s3://bucket/pairs.json")
    assert time.monotonic() - start < 20
    message = str(info.value)
    assert "s3://bucket/pairs.json" in message and "cannot reach S3 endpoint" in message
    assert dead in message


def test_local_errors(tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound, match="file not found"):
        load_pairs(tmp_path / "missing.json")
    with pytest.raises(StorageError, match="is a directory"):
        load_pairs(tmp_path)
