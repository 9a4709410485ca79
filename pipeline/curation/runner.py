"""One candidate through the agents: retrieval → debate → judge → reflect, journaled per call.

:class:`Curator` runs the steps the configuration switches on and returns the candidate's
*trace*: every agent's parsed output (and the raw text where it broke the contract), the
final verdict and the issues met. Every LLM answer goes through :meth:`Curator.call`, which
first looks the request up in the :class:`~zhufu.pipeline.curation.journal.Journal` (key =
hash of the request and of the backend's identity) and only calls the backend on a miss, so a
restarted run replays what it had and calls only for what is missing.

Degradation, never an exception: a malformed debate answer counts as "no points from that
side" (the last good round's points are kept); a malformed judge answer leaves the candidate
without a verdict (it forms no pair); a malformed reflect answer, or a change of verdict
without a reason, keeps the judge's verdict. A call that still fails after the backend's
retries stops that candidate: it is reported as failed, forms no pair, and is tried again by
the next run.

With ``llm.trace_rate`` > 0 a sampled candidate is also an MLflow trace (see
:mod:`zhufu.pipeline.llm.tracing`): a ``candidate`` span holding ``retrieval``, one span per
advocate / critic call, ``judge`` and ``reflect``, with their inputs, answers and tokens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from zhufu.pipeline import fastjson
from zhufu.pipeline.config import CurateConfig
from zhufu.pipeline.curation import agents
from zhufu.pipeline.curation.journal import Journal
from zhufu.pipeline.curation.retrieval import Retriever
from zhufu.pipeline.llm import ChatBackend, ChatRequest, LLMError, tracing


@dataclass(frozen=True)
class Candidate:
    """A greeting to curate for ``query``; ``source`` is ``given`` or ``policy``."""

    query: str
    response: str
    source: str = "given"

    @property
    def cid(self) -> str:
        return hashlib.sha256(f"{self.query}\0{self.response}".encode()).hexdigest()[:16]


class CallFailed(RuntimeError):
    """An agent call failed for good; the candidate stops here."""

    def __init__(self, agent: str, error: LLMError) -> None:
        super().__init__(f"{agent}: {error}")
        self.agent = agent
        self.kind = error.kind


def request_key(identity: dict[str, Any], request: ChatRequest) -> str:
    """Content address of one call: the backend's identity plus the whole request (hashed
    from its canonical JSON, :func:`zhufu.pipeline.fastjson.canonical`)."""
    return RequestKeys(identity)(request)


class RequestKeys:
    """:func:`request_key` for one backend identity, its JSON encoded once: the canonical
    JSON of ``{"backend": identity, "request": fields}`` is the identity's and the fields'
    canonical JSON put together, byte for byte (sorted keys, ``backend`` < ``request``)."""

    def __init__(self, identity: dict[str, Any]) -> None:
        self._head = hashlib.sha256(b'{"backend":' + fastjson.canonical(identity)
                                    + b',"request":')

    def __call__(self, request: ChatRequest) -> str:
        if type(request) is ChatRequest:  # a plain dataclass: its __dict__ is its fields
            fields = vars(request)
        else:
            fields = {f.name: getattr(request, f.name) for f in _fields(type(request))}
        digest = self._head.copy()
        digest.update(fastjson.canonical(fields))
        digest.update(b"}")
        return digest.hexdigest()


@functools.cache
def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)


def debate_tally(strengths: list[dict[str, Any]], weaknesses: list[dict[str, Any]]
                 ) -> dict[str, Any]:
    """The verdict when no judge runs: the debate's points, weighed.

    Score = 10 × S / (S + W) with S = strengths and W = minor + 2 × major weaknesses (5 when
    nobody found anything); ``good`` when the score is at least 5 and no weakness is major.

    >>> t = debate_tally([{"aspect": "emotion"}] * 3, [{"aspect": "taboo", "severity": "minor"}])
    >>> (t["verdict"], t["score"])
    ('good', 7.5)
    """
    major = sum(1 for w in weaknesses if w.get("severity") == "major")
    minor = len(weaknesses) - major
    weight = len(strengths) + minor + 2 * major
    score = 5.0 if weight == 0 else round(10 * len(strengths) / weight, 1)
    verdict = "good" if score >= 5 and major == 0 else "bad"
    return {"verdict": verdict, "score": score,
            "reason": f"debate tally: {len(strengths)} strengths, {minor} minor and "
                      f"{major} major weaknesses"}


class Curator:
    """Runs the configured agents for one candidate at a time (many concurrently)."""

    def __init__(self, cfg: CurateConfig, backend: ChatBackend, journal: Journal,
                 retriever: Retriever, identity: dict[str, Any]) -> None:
        self.cfg = cfg
        self.backend = backend
        self.journal = journal
        self.retriever = retriever
        self.identity = identity
        self._key = RequestKeys(identity)
        self.calls = 0
        self.replayed = 0
        self.prompt_tokens = 0  # over every answer used, replayed or new
        self.completion_tokens = 0
        # per query: (hits, exemplars) shared by its candidates and the agents they meet
        self._retrieved: dict[str, tuple[list[dict[str, Any]], list[dict[str, str]]]] = {}

    def retrieve(self, queries: list[str]) -> None:
        """Look the exemplars of ``queries`` up now, in one batch (a query left out is
        looked up when its first candidate comes)."""
        todo = list(dict.fromkeys(q for q in queries if q not in self._retrieved))
        for query, hits in zip(todo, self.retriever.search_many(todo, self.cfg.retrieval.top_k),
                               strict=True):
            self._remember(query, hits)

    def _remember(self, query: str, hits: list[Any]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        dicts = [h.as_dict() for h in hits]
        found = self._retrieved[query] = (
            dicts, [{"query": h["query"], "text": h["text"]} for h in dicts])
        return found

    async def call(self, agent: str, request: ChatRequest, trace: dict[str, Any],
                   steps_left: int) -> agents.AgentOutput:
        """The agent's answer: from the journal when there, else from the backend (journaled).

        ``steps_left`` (this call's step and those after it in the candidate's chain) is the
        call's priority for a backend slot: the run's last candidates do not wait behind the
        final steps of all the others (:mod:`zhufu.pipeline.llm.slots`)."""
        key = self._key(request)
        with tracing.span(agent, "LLM", {"messages": request.messages}) as child:
            record = self.journal.get(key)
            replayed = record is not None
            if replayed:
                self.replayed += 1
                trace["replayed"] += 1
            else:
                try:
                    response = await self.backend.chat(request, priority=steps_left)
                except LLMError as e:
                    raise CallFailed(agent, e) from e
                self.calls += 1
                trace["calls"] += 1
                record = await self.journal.append(
                    key, "call", agent=agent, text=response.text,
                    prompt_tokens=response.prompt_tokens,
                    completion_tokens=response.completion_tokens, latency_s=response.latency_s)
            tracing.record_call(child, record["text"], int(record.get("prompt_tokens", 0)),
                                int(record.get("completion_tokens", 0)), replayed=replayed)
        self.prompt_tokens += int(record.get("prompt_tokens", 0))
        self.completion_tokens += int(record.get("completion_tokens", 0))
        out = agents.parse_agent_output(agent, record["text"])
        if not out.ok:
            trace["issues"].append(f"{agent}:{out.error}")
        return out

    @staticmethod
    def _entry(out: agents.AgentOutput) -> dict[str, Any]:
        entry: dict[str, Any] = {"ok": out.ok, "output": out.data}
        if not out.ok:
            entry["error"] = out.error
            entry["raw"] = out.raw[:2000]
        return entry

    async def curate(self, cand: Candidate) -> dict[str, Any]:
        """The trace of ``cand``; ``final`` is None when no verdict could be reached."""
        trace: dict[str, Any] = {
            "cid": cand.cid, "query": cand.query, "response": cand.response,
            "source": cand.source, "retrieval": None, "debate": None, "judge": None,
            "reflect": None, "final": None, "issues": [], "failed": None, "calls": 0,
            "replayed": 0,
        }
        rate = getattr(self.backend, "trace_rate", 0.0)
        with tracing.trace("candidate", tracing.sampled(cand.cid, rate),
                           {"query": cand.query, "response": cand.response},
                           {"zhufu.cid": cand.cid, "zhufu.source": cand.source}) as root:
            try:
                await self._run(cand, trace)
            except CallFailed as e:
                trace["failed"] = {"agent": e.agent, "kind": e.kind}
                trace["final"] = None
            if root is not None:
                root.set_outputs({"final": trace["final"], "failed": trace["failed"],
                                  "issues": trace["issues"]})
        return trace

    async def _run(self, cand: Candidate, trace: dict[str, Any]) -> None:
        cfg = self.cfg
        with tracing.span("retrieval", "RETRIEVER", {"query": cand.query}) as child:
            found = self._retrieved.get(cand.query)
            if found is None:  # once per query: its candidates share the exemplars
                found = self._remember(cand.query, self.retriever.search(
                    cand.query, cfg.retrieval.top_k))
            hits, exemplars = found
            if child is not None:
                child.set_outputs(hits)
        trace["retrieval"] = {"kind": self.retriever.kind, "hits": hits}
        q, r = cand.query, cand.response

        strengths: list[dict[str, Any]] | None = None
        weaknesses: list[dict[str, Any]] | None = None
        steps_left = ((cfg.debate.rounds if cfg.debate.enabled else 0) + int(cfg.judge)
                      + int(cfg.reflect))
        if cfg.debate.enabled:
            strengths, weaknesses = [], []
            trace["debate"] = []
            for round_no in range(1, cfg.debate.rounds + 1):
                adv, cri = await self._both(
                    self.call("advocate", agents.advocate_request(q, r, exemplars, weaknesses,
                                                                  round_no), trace, steps_left),
                    self.call("critic", agents.critic_request(q, r, exemplars, strengths,
                                                              round_no), trace, steps_left))
                steps_left -= 1
                trace["debate"].append({"round": round_no, "advocate": self._entry(adv),
                                        "critic": self._entry(cri)})
                if adv.ok:
                    strengths = adv.data["strengths"]
                if cri.ok:
                    weaknesses = cri.data["weaknesses"]

        if cfg.judge:
            out = await self.call("judge", agents.judge_request(q, r, exemplars, strengths,
                                                                weaknesses), trace, steps_left)
            trace["judge"] = self._entry(out)
            if not out.ok:
                return
            verdict = {**out.data, "by": "judge"}
            steps_left -= 1
        else:
            assert strengths is not None and weaknesses is not None
            verdict = {**debate_tally(strengths, weaknesses), "by": "debate"}

        if cfg.reflect:
            out = await self.call("reflect", agents.reflect_request(
                q, r, exemplars, strengths, weaknesses, verdict), trace, steps_left)
            trace["reflect"] = self._entry(out)
            if out.ok:
                verdict = self._apply_reflection(verdict, out.data, trace)
        trace["final"] = verdict

    @staticmethod
    async def _both(first: Coroutine[Any, Any, agents.AgentOutput],
                    second: Coroutine[Any, Any, agents.AgentOutput]
                    ) -> tuple[agents.AgentOutput, agents.AgentOutput]:
        """Both answers, the calls concurrent: ``first`` in this task (it goes out first, as
        with ``gather``), ``second`` in a task of its own: one task fewer than ``gather``. As
        with ``gather``, a failure of either is raised and the other call runs on (its
        answer is journaled); cancelling this cancels both."""
        task = asyncio.ensure_future(second)
        try:
            one = await first
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError):
                task.cancel()
            task.add_done_callback(_retrieve)  # its own failure is not ours to raise now
            raise
        return one, await task

    @staticmethod
    def _apply_reflection(verdict: dict[str, Any], audit: dict[str, Any],
                          trace: dict[str, Any]) -> dict[str, Any]:
        differs = (audit["verdict"], audit["score"]) != (verdict["verdict"], verdict["score"])
        if not audit["changed"]:
            if differs:  # claims no change but answers another verdict: keep the judge's
                trace["issues"].append("reflect:inconsistent")
            return verdict
        if not audit["reason"]:
            trace["issues"].append("reflect:change_without_reason")
            return verdict
        if not differs:
            return verdict
        return {"verdict": audit["verdict"], "score": audit["score"], "reason": audit["reason"],
                "by": "reflect", "before": {k: verdict[k] for k in ("verdict", "score")}}


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark the outcome of a task nobody awaits any more as seen (no asyncio warning)."""
    if not task.cancelled():
        task.exception()
