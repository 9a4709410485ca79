"""The resume journal: durable appends, group commit, torn tails repaired, corruption refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from zhufu.pipeline.curation.journal import Journal, JournalError


async def test_appends_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j" / "journal.jsonl"
    j = Journal(path)
    await j.append("k1", "call", text="答案一")
    await j.append("k2", "call", text="答案二")
    j.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"kind": "header", "version": 1}
    again = Journal(path)
    assert again.get("k1")["text"] == "答案一" and again.get("k2")["text"] == "答案二"
    assert again.keys_of("call") == ["k1", "k2"]
    again.close()


async def test_group_commit_batches_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    j = Journal(tmp_path / "journal.jsonl")
    syncs = 0
    real = j._sync

    def counting() -> None:
        nonlocal syncs
        syncs += 1
        real()

    monkeypatch.setattr(j, "_sync", counting)
    await asyncio.gather(*(j.append(f"k{i}", "call", text=str(i)) for i in range(300)))
    j.close()
    assert len(Journal(tmp_path / "journal.jsonl").records) == 300
    assert 1 <= syncs < 300  # many lines per fsync, and every append waited for one


async def test_each_append_returns_with_its_line_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    j = Journal(path)

    async def append_and_read(i: int) -> bytes:
        await j.append(f"k{i}", "call", text=str(i))
        return path.read_bytes()

    seen = await asyncio.gather(*(append_and_read(i) for i in range(50)))
    assert all(f'"key":"k{i}"'.encode() in on_disk for i, on_disk in enumerate(seen))
    j.close()


async def test_a_failed_fsync_fails_its_batch_only(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    j = Journal(tmp_path / "journal.jsonl")
    real, failures = j._sync, [OSError(5, "Input/output error")]

    def failing_once() -> None:
        if failures:
            raise failures.pop()
        real()

    monkeypatch.setattr(j, "_sync", failing_once)
    with pytest.raises(OSError, match="Input/output error"):
        await j.append("lost", "call", text="x")
    await asyncio.gather(*(j.append(f"k{i}", "call", text=str(i)) for i in range(20)))
    j.close()
    assert {f"k{i}" for i in range(20)} <= set(Journal(tmp_path / "journal.jsonl").records)


async def test_torn_last_line_is_dropped_and_repaired(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    await j.append("a", "call", text="x")
    j.close()
    with path.open("ab") as fh:
        fh.write(b'{"key": "b", "kind": "call", "te')  # killed mid-write
    j = Journal(path)
    assert j.dropped_lines == 1 and j.get("b") is None and j.get("a") is not None
    await j.append("c", "call", text="z")
    j.close()
    final = Journal(path)
    assert set(final.records) == {"a", "c"} and final.dropped_lines == 0
    final.close()


def test_corrupt_middle_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"kind": "header", "version": 1}\nnot json\n{"key": "a", "kind": "call"}\n',
                    encoding="utf-8")
    with pytest.raises(JournalError, match="line 2"):
        Journal(path)


def test_other_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"kind": "header", "version": 99}\n', encoding="utf-8")
    with pytest.raises(JournalError, match="version 99"):
        Journal(path)
