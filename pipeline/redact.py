"""Keep credentials out of what a stage prints, logs, tracks or reports.

- :func:`strip_url_credentials` removes ``user:password@`` from every URL in a text; it runs
  on MLflow params here and on the status messages and Events the operator writes (a URL's
  credentials are visible in the text itself, so no secret value is needed).
- :func:`install` wraps ``sys.stdout`` and ``sys.stderr`` of the ``zhufu`` command so every
  line it prints has the *values* of the credentials the pod holds replaced by ``***``: the
  environment variables the operator fills from Secrets (S3, MLflow, an LLM key) and the
  files mounted under :data:`SECRET_DIR` (the LLM key of ``spec.llmApiKeySecret``). A failed
  pod's log tail becomes its termination message, which the operator copies into the
  resource's status and Events: scrubbing at the source means the operator never needs to
  read a Secret's data to keep it out of them.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

#: Environment variables that hold credentials in a job pod (filled from Secrets).
SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
              "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
              "OPENAI_API_KEY", "HF_TOKEN", "VLLM_API_KEY")
#: Where the operator mounts Secret files (the LLM key) in a job pod; ``ZHUFU_SECRET_DIR``
#: overrides it (tests).
SECRET_DIR = "/var/run/secrets/zhufu"
MASK = "***"
#: Values shorter than this are not masked (a one-letter "secret" would mask every word).
MIN_SECRET_LEN = 8
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")


def strip_url_credentials(text: str) -> str:
    """``text`` with the ``user:password@`` part of every URL replaced by ``***@``.

    >>> strip_url_credentials("GET https://bob:hunter22@llm.example/v1 failed")
    'GET https://***@llm.example/v1 failed'
    >>> strip_url_credentials("s3://zhufu/team-a/runs")
    's3://zhufu/team-a/runs'
    """
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)


def secret_values(env: dict[str, str] | None = None) -> list[str]:
    """The credential values this process holds (environment and mounted files), longest
    first."""
    env = dict(os.environ) if env is None else env
    values = {env[v].strip() for v in SECRET_ENV if env.get(v, "").strip()}
    root = Path(env.get("ZHUFU_SECRET_DIR") or SECRET_DIR)
    if root.is_dir():
        for path in root.rglob("*"):
            try:
                if path.is_file():
                    values.add(path.read_text(encoding="utf-8", errors="replace").strip())
            except OSError:
                continue
    return sorted((v for v in values if len(v) >= MIN_SECRET_LEN), key=len, reverse=True)


def scrub(text: str, values: Iterable[str]) -> str:
    """``text`` without URL credentials and with each of ``values`` replaced by ``***``."""
    for value in values:
        text = text.replace(value, MASK)
    return strip_url_credentials(text)


class RedactingStream(io.TextIOBase):
    """A text stream that scrubs every line before passing it to ``target``.

    Text is held until a newline (or :meth:`flush`), so a value split over two writes is
    still masked.
    """

    def __init__(self, target: TextIO, values: list[str]) -> None:
        self.target = target
        self.values = values
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            done, _, self._pending = self._pending.rpartition("\n")
            self.target.write(scrub(done + "\n", self.values))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.target.write(scrub(self._pending, self.values))
            self._pending = ""
        self.target.flush()

    def fileno(self) -> int:
        return self.target.fileno()

    def isatty(self) -> bool:
        return self.target.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")


def install() -> None:
    """Scrub this process's stdout and stderr (idempotent); a no-op without credentials."""
    values = secret_values()
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream, values))
