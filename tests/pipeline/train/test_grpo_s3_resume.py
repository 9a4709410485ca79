"""Which checkpoint a GRPO run resumes from when its checkpoints live in S3 (a real moto
server on 127.0.0.1): the one ``LATEST`` names, on every node, never a newer local leftover
of a group that broke before finishing it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from zhufu.pipeline.data.storage import upload_dir, write_text
from zhufu.pipeline.train.grpo import _restore_from_s3
from zhufu.pipeline.train.grpo_setup import latest_checkpoint


@pytest.fixture
def target(s3_server, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: ANN001
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    bucket = f"resume-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=bucket)
    return f"s3://{bucket}/grpo"


def _checkpoint(folder: Path, files: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True)
    for name in files:  # Trainer's state is JSON (a checkpoint is complete once it reads)
        (folder / name).write_text('{"global_step": 0}' if name.endswith(".json") else name)
    return folder


def test_resume_takes_latest_and_drops_newer_leftovers(target: str, tmp_path: Path) -> None:
    complete = _checkpoint(tmp_path / "uploaded" / "checkpoint-2",
                           ("trainer_state.json", "rng_state_0.pth", "rng_state_1.pth"))
    upload_dir(complete, f"{target}/checkpoint-2")
    write_text(f"{target}/LATEST", "checkpoint-2")
    # node 0's mirror: rank 0 wrote checkpoint-4, node 1 died before its part and LATEST
    node0 = tmp_path / "node0"
    _checkpoint(node0 / "checkpoint-2", ("trainer_state.json", "rng_state_0.pth"))
    _checkpoint(node0 / "checkpoint-4", ("trainer_state.json", "rng_state_0.pth"))
    assert latest_checkpoint(node0) == node0 / "checkpoint-4"
    assert _restore_from_s3(node0, target) == "checkpoint-2"
    assert latest_checkpoint(node0) == node0 / "checkpoint-2"
    assert not (node0 / "checkpoint-4").exists()
    # node 1's mirror (or a new pod's empty disk): only its own RNG state, no trainer state
    node1 = tmp_path / "node1"
    _checkpoint(node1 / "checkpoint-2", ("rng_state_1.pth",))
    assert _restore_from_s3(node1, target) == "checkpoint-2"
    assert latest_checkpoint(node1) == node1 / "checkpoint-2"
    assert (node1 / "checkpoint-2" / "rng_state_0.pth").is_file()


def test_without_latest_nothing_local_is_resumed(target: str, tmp_path: Path) -> None:
    local = tmp_path / "mirror"
    _checkpoint(local / "checkpoint-2", ("trainer_state.json",))
    assert _restore_from_s3(local, target) is None
    assert latest_checkpoint(local) is None


def test_a_marker_naming_no_checkpoint_is_an_error_that_keeps_the_mirror(target: str,
                                                                          tmp_path: Path) -> None:
    from zhufu.pipeline.errors import DataError

    local = tmp_path / "mirror"
    _checkpoint(local / "checkpoint-2", ("trainer_state.json",))
    write_text(f"{target}/LATEST", "../team-b/checkpoint-9")
    with pytest.raises(DataError, match="not a checkpoint-N folder") as info:
        _restore_from_s3(local, target)
    assert f"{target}/LATEST" in str(info.value)
    assert latest_checkpoint(local) == local / "checkpoint-2"  # nothing removed


def test_a_checkpoint_killed_while_writing_its_state_is_not_resumed(tmp_path: Path) -> None:
    _checkpoint(tmp_path / "checkpoint-2", ("optimizer.pt",))
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}')
    _checkpoint(tmp_path / "checkpoint-4", ("optimizer.pt",))
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4, "lo')
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-2"
