"""Copy a saved model dir to an ``s3://bucket/prefix`` (S3 or any S3-compatible store).

The endpoint comes from ``AWS_ENDPOINT_URL`` or ``MLFLOW_S3_ENDPOINT_URL`` when set;
credentials from boto3's usual chain.
"""

from __future__ import annotations

import os
from pathlib import Path


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → ``("bucket", "a/b")``.

    >>> split_s3("s3://zhufu/outputs/sft")
    ('zhufu', 'outputs/sft')
    """
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri}: not an s3:// URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"{uri}: no bucket name")
    return bucket, key.strip("/")


def s3_client():  # noqa: ANN201 - boto3 client type is dynamic
    import boto3

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("MLFLOW_S3_ENDPOINT_URL")
    return boto3.client("s3", endpoint_url=endpoint or None)


def upload_dir(local: str | Path, uri: str) -> list[str]:
    """Upload every file under ``local`` to ``uri``; return the object keys written."""
    bucket, prefix = split_s3(uri)
    client = s3_client()
    keys = []
    root = Path(local)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = "/".join(filter(None, [prefix, path.relative_to(root).as_posix()]))
        client.upload_file(str(path), bucket, key)
        keys.append(key)
    return keys
