"""A real OpenAI-compatible chat server that plays the four curation agents, deterministically.

Run as a process: ``python -P agent_server.py --port P --log FILE [--latency S]``. Every
request body is appended to ``--log`` as it arrives (``{"event": "request", "n", "body"}``)
and every answer as it is sent (``{"event": "answered", "n"}``). The answer depends only on
the request body (a SHA-256 of it), so two runs that send the same requests get the same
answers: the agent is recognised from the output contract in the system prompt, and it
answers in that contract with points, a verdict and a score drawn from the hash.

Control (for tests): ``POST /control {"hold": true}`` makes every later request wait
(never answered) until ``{"hold": false}``; ``GET /stats`` gives ``requests``, ``answered``
and ``held`` counts. Used by the resume test and by ``bench/curation.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
from typing import Any

from aiohttp import web

ASPECTS = ("wording", "fluency", "emotion", "creativity", "specificity", "appropriateness",
           "positivity", "intent", "taboo")
_REVIEWED = re.compile(r"待复核的结论：(\{.*\})")


def answer_for(body: dict[str, Any]) -> dict[str, Any]:
    """The agent's JSON answer, a pure function of the request body."""
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False).encode()
    h = int(hashlib.sha256(blob).hexdigest(), 16)
    system = body["messages"][0]["content"]
    user = body["messages"][-1]["content"]
    if '"strengths"' in system:
        return {"strengths": [{"aspect": ASPECTS[(h >> i) % 9], "evidence": f"e{i}"}
                              for i in range(h % 3)], "rebuttal": ""}
    if '"weaknesses"' in system:
        return {"weaknesses": [{"aspect": ASPECTS[(h >> i) % 9], "evidence": f"w{i}",
                                "severity": "major" if (h >> 7) % 5 == 0 else "minor"}
                               for i in range((h >> 3) % 3)], "rebuttal": ""}
    if '"changed"' in system:
        m = _REVIEWED.search(user)
        reviewed = json.loads(m.group(1)) if m else {"verdict": "bad", "score": 0}
        flip = h % 7 == 0
        verdict = reviewed["verdict"]
        if flip:
            verdict = "good" if verdict == "bad" else "bad"
        score = reviewed["score"] if not flip else (6 if verdict == "good" else 3)
        return {"verdict": verdict, "score": score, "changed": flip,
                "reason": "与证据不符，改判" if flip else "一致"}
    score = h % 11
    return {"verdict": "good" if score >= 5 else "bad", "score": score, "reason": f"r{h % 97}"}


class AgentServer:
    def __init__(self, log_path: str, latency: float) -> None:
        self.log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the app
        self.latency = latency
        self.requests = 0
        self.answered = 0
        self.held = 0
        self.hold = False
        self.release = asyncio.Event()

    def _write(self, record: dict[str, Any]) -> None:
        self.log.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.log.flush()

    async def chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests += 1
        n = self.requests
        self._write({"event": "request", "n": n, "body": body})
        if self.hold:
            self.held += 1
            await self.release.wait()
        if self.latency:
            await asyncio.sleep(self.latency)
        content = json.dumps(answer_for(body), ensure_ascii=False)
        response = web.json_response({
            "id": f"cmpl-{n}", "object": "chat.completion", "model": body.get("model", "m"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": len(json.dumps(body)) // 4,
                      "completion_tokens": len(content) // 2},
        })
        await response.prepare(request)
        await response.write_eof()
        self.answered += 1
        self._write({"event": "answered", "n": n})
        return response

    async def control(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.hold = bool(data.get("hold", False))
        if self.hold:
            self.release.clear()
        else:
            self.release.set()
        return web.json_response({"hold": self.hold})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": self.requests, "answered": self.answered,
                                  "held": self.held})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    server = AgentServer(args.log, args.latency)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.chat)
    app.router.add_post("/control", server.control)
    app.router.add_get("/stats", server.stats)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None,
                backlog=1024)


if __name__ == "__main__":
    main()
