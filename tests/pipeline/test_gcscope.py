"""gcscope: fewer collector passes inside the block, Python's settings back after it."""

from __future__ import annotations

import gc

import pytest

from zhufu.pipeline import gcscope


def test_inside_the_block_old_objects_are_frozen_and_passes_rarer() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with gcscope.fewer_collections(5000):
        assert gc.get_threshold() == (max(5000, before[0]), *before[1:])
        assert gc.get_freeze_count() > frozen  # what existed is skipped by full passes
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen


def _tracked_unfrozen(obj: object) -> bool:
    """Whether the collector walks ``obj``: frozen objects are in none of its generations."""
    return any(tracked is obj for tracked in gc.get_objects())


def test_objects_the_process_froze_stay_frozen() -> None:
    # Not a freeze count before and after: a frozen object freed by its reference count
    # (another test's thread letting go) lowers the count in between.
    frozen_by_the_process = [object()]
    gc.freeze()
    try:
        assert not _tracked_unfrozen(frozen_by_the_process)
        with gcscope.fewer_collections():
            pass
        assert not _tracked_unfrozen(frozen_by_the_process)
    finally:
        gc.unfreeze()
    assert _tracked_unfrozen(frozen_by_the_process)


def test_settings_come_back_when_the_block_raises() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with pytest.raises(RuntimeError), gcscope.fewer_collections():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen


def test_a_cycle_made_inside_is_still_collected() -> None:
    class Node:
        ref: object

    with gcscope.fewer_collections():
        a = Node()
        a.ref = a
        del a
        assert gc.collect() >= 1
