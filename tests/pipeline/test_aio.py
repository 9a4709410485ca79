"""The pipeline's event loop: uvloop where installed, the standard loop on request."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from zhufu.pipeline import aio


async def _loop_type() -> type:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_run_uses_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(aio.LOOP_ENV, raising=False)
    assert aio.run(_loop_type()) is uvloop.Loop
    assert aio.loop_name() == "uvloop"


def test_the_standard_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(aio.LOOP_ENV, "asyncio")
    loop_type = aio.run(_loop_type())
    assert loop_type is not uvloop.Loop and issubclass(loop_type, asyncio.BaseEventLoop)
    assert aio.loop_name() == "asyncio"


def test_an_unknown_loop_name_is_an_error_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(aio.LOOP_ENV, "trio")
    main = _loop_type()
    with pytest.raises(ValueError, match="ZHUFU_EVENT_LOOP='trio'"):
        aio.run(main)
    main.close()  # never started: no "coroutine was never awaited" warning


def test_run_closes_its_loop_and_finalises_async_generators() -> None:
    closed: list[bool] = []

    async def numbers():  # noqa: ANN202
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def first() -> int:
        gen = numbers()
        return await gen.__anext__()  # left suspended: the runner must finalise it

    assert aio.run(first()) == 1
    assert closed == [True]
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.get_running_loop()
