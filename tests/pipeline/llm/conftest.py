"""A real aiohttp chat-completions server on 127.0.0.1 that misbehaves on request.

``server.plan`` is a list of actions consumed one per incoming request (then "ok" for ever):
``"ok"``, ``"slow"`` (50 ms, then ok), ``"429"``, ``("429", "<Retry-After>")``, ``"500"``,
``"400"``, ``"hang"`` (answers only when the test ends), ``"badjson"`` (200, truncated body),
``"nochoices"``, ``"nullcontent"``, ``"intcontent"``, ``"garbage"`` (200, prose content).
The server records every parsed body, the Authorization header and the peak of concurrent
requests. It runs in the test's own event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


@dataclass
class ChatServer:
    url: str = ""
    plan: list[Any] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def hits(self) -> int:
        return len(self.bodies)

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = json.loads(await request.read())
            self.bodies.append(body)
            self.auth.append(request.headers.get("Authorization"))
            action = self.plan.pop(0) if self.plan else "ok"
            return await self._act(action, body)
        finally:
            self.in_flight -= 1

    async def _act(self, action: Any, body: dict[str, Any]) -> web.Response:
        if isinstance(action, tuple):
            status, retry_after = action
            return web.Response(status=int(status), text="slow down",
                                headers={"Retry-After": retry_after})
        if action in ("429", "500", "400", "503"):
            return web.Response(status=int(action), text=f'{{"error": "injected {action}"}}',
                                content_type="application/json")
        if action == "hang":
            try:
                await asyncio.wait_for(self.release.wait(), 30)
            except TimeoutError:
                pass
            return completion("too late")
        if action == "badjson":
            return web.Response(body=b'{"choices": [{"message": {"content": "cut', status=200,
                                content_type="application/json")
        if action == "nochoices":
            return web.json_response({"object": "error", "message": "overloaded"})
        if action == "nullcontent":
            return completion(None)
        if action == "intcontent":
            return completion(42)
        if action == "garbage":
            return completion("As an AI I think }{ this greeting is {nice")
        if action == "slow":
            await asyncio.sleep(0.05)
        last = body["messages"][-1]["content"]
        return completion(f"echo: {last}")


def completion(content: Any, prompt_tokens: int = 11, completion_tokens: int = 7) -> web.Response:
    return web.json_response({
        "id": "cmpl-test", "object": "chat.completion", "model": "test",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    })


async def start_chat_server(port: int = 0) -> tuple[ChatServer, web.AppRunner]:
    server = ChatServer()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    sockets = [s for s in runner.addresses]
    server.url = f"http://127.0.0.1:{sockets[0][1]}"
    return server, runner


async def stop_chat_server(server: ChatServer, runner: web.AppRunner) -> None:
    server.release.set()
    await runner.cleanup()


@dataclass
class ChatServerKit:
    """Start/stop functions for tests that manage servers themselves (own loops, dead ports)."""

    start: Any = start_chat_server
    stop: Any = stop_chat_server


@pytest.fixture
def chat_server_kit() -> ChatServerKit:
    return ChatServerKit()


@pytest.fixture
async def chat_server() -> AsyncIterator[ChatServer]:
    server, runner = await start_chat_server()
    try:
        yield server
    finally:
        await stop_chat_server(server, runner)
