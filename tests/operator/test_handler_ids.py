"""The Kopf handlers are module-level functions, one per event, shared by the kinds, with the
ids Kopf keeps as progress in every live resource: ``<kind>_create``, ``_resume``,
``_update`` (on ``spec``), ``_delete``, ``_recheck`` for each kind, plus ``job_event`` and
``pod_event``. Renaming one would strand resources created by an older operator."""

from __future__ import annotations

import kopf

import zhufu.operator.handlers  # noqa: F401 - registers the handlers
from zhufu.operator.spec import KINDS


def _handlers() -> list[tuple[str, str, str]]:
    registry = kopf.get_default_registry()
    out = []
    for group in (registry._changing, registry._spawning, registry._watching):
        for handler in group.get_all_handlers():
            out.append((handler.id, handler.selector.any_name, handler.fn.__qualname__))
    return out


def test_every_kind_has_its_handler_ids() -> None:
    handlers = _handlers()
    for kind in KINDS.values():
        prefix = kind.kind.lower()
        ids = {i for i, plural, _ in handlers if plural == kind.plural}
        assert ids == {f"{prefix}_create", f"{prefix}_resume", f"{prefix}_update/spec",
                       f"{prefix}_delete", f"{prefix}_recheck"}, kind.kind
    assert {("job_event", "jobs"), ("pod_event", "pods")} <= {(i, p) for i, p, _ in handlers}
    assert len({i for i, _, _ in handlers}) == len(handlers)  # no id twice


def test_handlers_are_module_level_functions() -> None:
    names = {name for _, _, name in _handlers()}
    assert names == {"on_create", "on_update", "on_delete", "on_timer", "job_event",
                     "pod_event"}
    for name in names:
        assert getattr(zhufu.operator.handlers, name).__qualname__ == name
