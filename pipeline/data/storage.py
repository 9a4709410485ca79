"""Bytes and text from a local path or an ``s3://bucket/key`` URI, and whole folders to and from S3.

S3 goes through boto3. The endpoint comes from ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``
or ``MLFLOW_S3_ENDPOINT_URL`` (first one set), so any S3-compatible store works (MinIO,
Ceph, moto). Calls retry a bounded number of times (botocore's "standard" mode) with short
connect/read timeouts; after that a :class:`StorageError` names the URI and the endpoint.
boto3 is imported only when an S3 URI is used.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from zhufu.pipeline.errors import StorageError

#: Env vars that may hold an S3-compatible endpoint, in order of precedence.
ENDPOINT_ENV_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL")
#: Total attempts per S3 call (first try included), and socket timeouts in seconds.
S3_MAX_ATTEMPTS = int(os.environ.get("ZHUFU_S3_MAX_ATTEMPTS", "3"))
S3_CONNECT_TIMEOUT_S = float(os.environ.get("ZHUFU_S3_CONNECT_TIMEOUT", "5"))
S3_READ_TIMEOUT_S = float(os.environ.get("ZHUFU_S3_READ_TIMEOUT", "60"))


class ObjectNotFound(StorageError, FileNotFoundError):
    """The file, bucket or key does not exist."""


def is_s3(uri: str | os.PathLike[str]) -> bool:
    """True when ``uri`` is an ``s3://`` URI (a local path otherwise)."""
    return str(uri).startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → ``("bucket", "a/b")``; the key may be empty (bucket root)."""
    if not is_s3(uri):
        raise StorageError(uri, "not an s3:// URI")
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(uri, "an s3:// URI needs a bucket name (s3://BUCKET/KEY)")
    return bucket, key


def s3_endpoint() -> str | None:
    """The S3-compatible endpoint from the environment, or None for AWS itself."""
    for name in ENDPOINT_ENV_VARS:
        value = os.environ.get(name)
        if value:
            return value
    return None


def s3_client() -> Any:
    """A boto3 S3 client with bounded retries and timeouts, pointed at :func:`s3_endpoint`."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"},
        connect_timeout=S3_CONNECT_TIMEOUT_S,
        read_timeout=S3_READ_TIMEOUT_S,
    )
    return boto3.client("s3", endpoint_url=s3_endpoint(), config=config)


def _s3_error(uri: str, exc: Exception) -> StorageError:
    """Translate a botocore exception into a StorageError that says what to check."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    endpoint = s3_endpoint() or "AWS S3"
    if isinstance(exc, (EndpointConnectionError, BotoConnectionError, ReadTimeoutError)):
        return StorageError(uri, f"cannot reach S3 endpoint {endpoint} after "
                                 f"{S3_MAX_ATTEMPTS} attempts ({exc})")
    if isinstance(exc, NoCredentialsError):
        return StorageError(uri, "no S3 credentials: set AWS_ACCESS_KEY_ID and "
                                 "AWS_SECRET_ACCESS_KEY (or mount a credentials file)")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        bucket, _ = split_s3(uri)
        if code == "NoSuchBucket":
            return ObjectNotFound(uri, f"bucket '{bucket}' does not exist at {endpoint}")
        if code in ("NoSuchKey", "404", "NotFound"):
            return ObjectNotFound(uri, f"no such object in bucket '{bucket}' at {endpoint}")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return StorageError(uri, f"access denied by {endpoint} ({code})")
        return StorageError(uri, f"S3 error {code or 'unknown'} from {endpoint}: {exc}")
    return StorageError(uri, f"S3 call failed: {exc}")


def _boto_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def read_bytes(uri: str | os.PathLike[str]) -> bytes:
    """The whole content of a local file or an S3 object."""
    uri = str(uri)
    if not is_s3(uri):
        path = Path(uri)
        if not path.exists():
            raise ObjectNotFound(uri, "file not found")
        if path.is_dir():
            raise StorageError(uri, "is a directory, expected a file")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise StorageError(uri, f"cannot read: {exc.strerror or exc}") from exc
    bucket, key = split_s3(uri)
    if not key or key.endswith("/"):
        raise StorageError(uri, "an s3:// URI to read needs an object key, not a prefix")
    client = s3_client()
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except _boto_errors() as exc:
        raise _s3_error(uri, exc) from exc


def read_text(uri: str | os.PathLike[str], encoding: str = "utf-8") -> str:
    """The content decoded as text (strict: invalid bytes raise StorageError with the offset)."""
    data = read_bytes(uri)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StorageError(str(uri), f"line {line}: invalid {encoding} "
                                     f"(byte 0x{data[exc.start]:02x} at offset {exc.start})"
                           ) from exc


def write_bytes(uri: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a local file (atomically, creating parents) or an S3 object."""
    uri = str(uri)
    if not is_s3(uri):
        path = Path(uri)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            raise StorageError(uri, f"cannot write: {exc.strerror or exc}") from exc
        return
    bucket, key = split_s3(uri)
    if not key or key.endswith("/"):
        raise StorageError(uri, "an s3:// URI to write needs an object key, not a prefix")
    try:
        s3_client().put_object(Bucket=bucket, Key=key, Body=data)
    except _boto_errors() as exc:
        raise _s3_error(uri, exc) from exc


def write_text(uri: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` encoded as ``encoding`` (see :func:`write_bytes`)."""
    write_bytes(uri, text.encode(encoding))


def exists(uri: str | os.PathLike[str]) -> bool:
    """True when the local file/folder or the S3 object exists (S3 errors other than 404 raise)."""
    uri = str(uri)
    if not is_s3(uri):
        return Path(uri).exists()
    bucket, key = split_s3(uri)
    try:
        s3_client().head_object(Bucket=bucket, Key=key)
        return True
    except _boto_errors() as exc:
        err = _s3_error(uri, exc)
        if isinstance(err, ObjectNotFound):
            return False
        raise err from exc


def _join(prefix: str, rel: str) -> str:
    return prefix.rstrip("/") + "/" + rel


def upload_dir(local_dir: str | os.PathLike[str], s3_prefix: str) -> list[str]:
    """Copy every file under ``local_dir`` to ``s3_prefix/<relative path>``; returns the URIs.

    ``s3_prefix`` may also be a local folder (then this is a recursive copy).
    """
    src = Path(local_dir)
    if not src.is_dir():
        raise ObjectNotFound(str(local_dir), "not a directory")
    files = sorted(p for p in src.rglob("*") if p.is_file())
    written: list[str] = []
    if not is_s3(s3_prefix):
        for path in files:
            dest = Path(s3_prefix) / path.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
            written.append(str(dest))
        return written
    bucket, key_prefix = split_s3(s3_prefix)
    client = s3_client()
    for path in files:
        rel = path.relative_to(src).as_posix()
        key = _join(key_prefix, rel) if key_prefix else rel
        uri = f"s3://{bucket}/{key}"
        try:
            client.upload_file(str(path), bucket, key)
        except _boto_errors() as exc:
            raise _s3_error(uri, exc) from exc
        written.append(uri)
    return written


def download_dir(s3_prefix: str, local_dir: str | os.PathLike[str]) -> list[Path]:
    """Copy every object under ``s3_prefix`` into ``local_dir`` (same relative layout).

    Raises :class:`ObjectNotFound` when the prefix holds no object. ``s3_prefix`` may also be
    a local folder (then this is a recursive copy).
    """
    dest = Path(local_dir)
    if not is_s3(s3_prefix):
        src = Path(s3_prefix)
        if not src.is_dir():
            raise ObjectNotFound(s3_prefix, "not a directory")
        shutil.copytree(src, dest, dirs_exist_ok=True)
        return sorted(p for p in dest.rglob("*") if p.is_file())
    bucket, key_prefix = split_s3(s3_prefix)
    if key_prefix and not key_prefix.endswith("/"):
        key_prefix += "/"
    client = s3_client()
    out: list[Path] = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"]
                rel = PurePosixPath(key[len(key_prefix):])
                if key.endswith("/") or not rel.parts:
                    continue  # folder marker objects hold no data
                if ".." in rel.parts or rel.is_absolute():
                    raise StorageError(f"s3://{bucket}/{key}", "unsafe key (escapes the folder)")
                target = dest.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, key, str(target))
                out.append(target)
    except _boto_errors() as exc:
        raise _s3_error(s3_prefix, exc) from exc
    if not out:
        raise ObjectNotFound(s3_prefix, "no objects under this prefix")
    return out
