"""The curation journal: an append-only JSONL file that makes a run resumable.

Every finished unit of work is one line: an agent's answer (``kind="call"``) or a policy
sample (``kind="sample"``), each under a content-addressed ``key`` (a hash of the request
and of the backend that answers it), so a changed input can never replay a stale answer and
two configurations may share one journal safely. A line is durable (written, flushed and
``fsync``-ed) before the coroutine that produced it moves on, so a run killed at any instant
has on disk every LLM answer it had acted on; a restart reads them back instead of calling
again. Only calls that were in flight at the kill (sent, answer not yet on disk) are made
again.

Writes use group commit: lines appended while an ``fsync`` runs are flushed together by the
next one, so durability costs one ``fsync`` per batch, not per line, and high concurrency
does not queue on the disk. One worker thread drains the batches for as long as lines keep
coming (it is handed work once per busy spell, not once per batch: waking a thread costs the
event loop more than the ``fsync`` it waits for) and wakes the loop once per batch written.
The first line is a header with the journal's format version. A torn last line (the kill
landed mid-write) is dropped on load; any other bad line is an error.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any

from zhufu.pipeline import fastjson
from zhufu.pipeline.errors import ZhufuError

JOURNAL_VERSION = 1


class JournalError(ZhufuError, RuntimeError):
    """The journal on disk cannot be used (corrupt, or written by another format version)."""


class Journal:
    """Durable, append-only record of finished work, indexed in memory by ``key``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        self.dropped_lines = 0
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._lock = threading.Lock()  # guards _pending and _flushing across the two threads
        self._flushing = False  # a drain is running (or about to): it will take new lines
        self._load()
        self._fh = self.path.open("ab")  # lines are UTF-8 JSON bytes already
        if self.path.stat().st_size == 0:
            header = {"kind": "header", "version": JOURNAL_VERSION}
            self._fh.write(json.dumps(header).encode("utf-8") + b"\n")
            self._sync()

    # -- reading -----------------------------------------------------------------------------
    def _load(self) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        good_bytes = 0
        for i, line in enumerate(lines):
            if not line.strip():
                good_bytes += len(line) + (1 if i < len(lines) - 1 else 0)
                continue
            try:
                record = json.loads(line)
                if i == len(lines) - 1:  # no trailing newline: the write was cut short
                    raise ValueError("unterminated line")
            except ValueError:
                if i < len(lines) - 1:
                    raise JournalError(
                        f"{self.path}: line {i + 1} is not valid JSON (the journal is corrupt; "
                        "only a torn last line can be repaired)"
                    ) from None
                self.dropped_lines += 1
                break
            good_bytes += len(line) + 1
            if record.get("kind") == "header":
                if record.get("version") != JOURNAL_VERSION:
                    raise JournalError(
                        f"{self.path}: journal format version {record.get('version')}, this "
                        f"code reads version {JOURNAL_VERSION}; move the file away to start over"
                    )
                continue
            self.records[record["key"]] = record
        if good_bytes < len(raw):  # cut the torn tail so new lines start on a clean line
            with self.path.open("r+b") as fh:
                fh.truncate(good_bytes)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def keys_of(self, kind: str) -> list[str]:
        return [k for k, r in self.records.items() if r.get("kind") == kind]

    # -- writing -----------------------------------------------------------------------------
    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    async def append(self, key: str, kind: str, **payload: Any) -> dict[str, Any]:
        """Record ``payload`` under ``key``; returns once the line is on disk."""
        record = {"key": key, "kind": kind, **payload}
        line = fastjson.dumps(record) + b"\n"
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self.records[key] = record
        with self._lock:
            self._pending.append((line, future))
            start, self._flushing = not self._flushing, True
        if start:
            loop.run_in_executor(None, self._drain, loop)
        await future
        return record

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """Worker thread: write and ``fsync`` batches until none is left, then stop; each
        batch's futures are settled on the loop (a write that fails fails its batch only)."""
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._flushing = False
                    return
            error: Exception | None = None
            try:
                self._fh.write(b"".join([line for line, _ in batch]))
                self._sync()
            except Exception as e:  # noqa: BLE001 - handed to the callers awaiting the batch
                error = e
            loop.call_soon_threadsafe(_settle, batch, error)

    def close(self) -> None:
        if not self._fh.closed:
            self._sync()
            self._fh.close()


def _settle(batch: list[tuple[bytes, asyncio.Future[None]]], error: Exception | None
            ) -> None:
    """On the loop: the batch's lines are on disk (``error`` None) or failed with ``error``."""
    for _, future in batch:
        if not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
