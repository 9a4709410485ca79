"""A real OpenAI-compatible chat server that misbehaves on a seeded share of its calls.

Run as a process: ``python -P chaos_llm.py --port P --log FILE [--fault-rate 0.3]
[--seed 7] [--hang-s 5]``. For each request it computes the request's key (SHA-256 of the
canonical JSON body) and how many times it has seen that key before (the attempt number);
a seeded hash of (seed, key, attempt) decides the outcome, so a given sequence of requests
always meets the same faults, whatever the arrival order:

- ``429``: HTTP 429 with ``Retry-After: 0.05``;
- ``500``: HTTP 500;
- ``hang``: no answer for ``--hang-s`` seconds (past the client's timeout), then a 504;
- ``bad_body``: HTTP 200 whose body is truncated JSON;
- ``bad_content``: a well-formed completion whose message is not the agent's JSON;
- ``ok``: the right answer.

The first four are transport faults (the client must retry); ``bad_content`` is a
successful call with a useless answer (the stage must count it as malformed). Right answers
come from ``tests/pipeline/curation/agent_server.py``'s ``answer_for`` for the curation
agents, and from :func:`judge_answer` for the judge prompt. Every request is appended to
``--log`` as ``{"n", "key", "attempt", "outcome", "bytes", "system", "user",
"auth_sha256"}`` (the first and last messages' text; a hash of the Authorization header,
never the header itself) before the answer is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline" / "curation"))
from agent_server import answer_for  # noqa: E402 - the curation agents' deterministic answers

FAULTS = ("429", "500", "hang", "bad_body", "bad_content")
JUDGE_MARKER = "strict reviewer of Chinese greetings"
DIMENSIONS = ("language_quality", "creativity", "emotional_resonance",
              "cultural_appropriateness", "content_richness")


def request_key(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False)
                          .encode()).hexdigest()


def outcome(seed: int, key: str, attempt: int, rate: float) -> str:
    """``ok`` or one of :data:`FAULTS`, a pure function of its arguments."""
    h = int(hashlib.sha256(f"{seed}:{key}:{attempt}".encode()).hexdigest(), 16)
    u = (h % 1_000_000) / 1_000_000
    if u >= rate:
        return "ok"
    return FAULTS[min(int(u / rate * len(FAULTS)), len(FAULTS) - 1)]


def judge_answer(body: dict[str, Any]) -> dict[str, Any]:
    """A judge reply in the prompt's contract, drawn from a hash of the body."""
    h = int(request_key(body), 16)
    scores = {d: {"score": 1 + (h >> (3 * i)) % 5, "reason": "r"}
              for i, d in enumerate(DIMENSIONS)}
    overall = sum(s["score"] for s in scores.values()) / len(scores)
    return {"scores": scores, "overall": overall,
            "verdict": "good" if overall >= 3.5 else "bad", "reason": "hash"}


class ChaosServer:
    def __init__(self, log_path: str, rate: float, seed: int, hang_s: float) -> None:
        self.log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the app
        self.rate, self.seed, self.hang_s = rate, seed, hang_s
        self.seen: dict[str, int] = {}
        self.n = 0

    async def chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        key = request_key(body)
        attempt = self.seen.get(key, 0)
        self.seen[key] = attempt + 1
        self.n += 1
        what = outcome(self.seed, key, attempt, self.rate)
        system = str(body["messages"][0]["content"])
        user = str(body["messages"][-1]["content"])
        auth = request.headers.get("Authorization", "")
        record = {"n": self.n, "key": key, "attempt": attempt, "outcome": what,
                  "bytes": len(raw), "system": system, "user": user,
                  "auth_sha256": hashlib.sha256(auth.encode()).hexdigest() if auth else None}
        self.log.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.log.flush()
        if what == "429":
            return web.Response(status=429, text="slow down", headers={"Retry-After": "0.05"})
        if what == "500":
            return web.Response(status=500, text="internal error")
        if what == "hang":
            await asyncio.sleep(self.hang_s)
            return web.Response(status=504, text="late")
        if what == "bad_body":
            return web.Response(status=200, text='{"id": "x", "choices": [{"mess',
                                content_type="application/json")
        if what == "bad_content":
            content = "好的，我来评一下：{这不是 JSON"
        elif JUDGE_MARKER in system:
            content = json.dumps(judge_answer(body), ensure_ascii=False)
        else:
            content = json.dumps(answer_for(body), ensure_ascii=False)
        return web.json_response({
            "id": f"c{self.n}", "object": "chat.completion", "model": body.get("model", "m"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": len(content) // 2}})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hang-s", type=float, default=5.0)
    args = parser.parse_args()
    server = ChaosServer(args.log, args.fault_rate, args.seed, args.hang_s)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", server.chat)
    app.router.add_get("/health", lambda _: web.json_response({"ok": True}))
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
