"""The judge: scores greetings over any chat backend and resolves judge specs.

:class:`Judge` sends one :class:`ChatRequest` per greeting carrying both the LLM prompt
(``messages``) and the structured task (``{"kind": "judge", ...}``), so the same code runs
against an LLM endpoint or the offline principle analyser. A call that fails or a reply that
cannot be read becomes a neutral :class:`JudgeResult` (``ok=False``) and is counted in
``judge.failures``; a batch never crashes on one greeting.

A judge *state* is the saved form of a judge: backend spec, principles' extra rules (for LLM
judges) and the feature weights (for the offline judge). :func:`load_judge` resolves a spec:
``offline`` | ``openai:MODEL@URL`` | ``hf:PATH`` | a path to a state JSON (or a folder holding
``judge.json``) | ``models:/…`` or ``runs:/…`` (MLflow, see :mod:`.registry`) | any URI
scheme registered with :func:`register_judge_resolver`. ``offline`` (and no spec) is the
default judge: the trained state shipped as ``default_judge.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhufu.pipeline.analysis.weights import JudgeWeights
from zhufu.pipeline.errors import ModelSpecError
from zhufu.pipeline.judge.principles import build_messages
from zhufu.pipeline.judge.result import JudgeResult, parse_judge_output
from zhufu.pipeline.llm import tracing
from zhufu.pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, LLMError

STATE_FORMAT = "zhufu-judge"
STATE_FILE = "judge.json"


#: The judge trained by Zhufu's own recipe (``examples/judge.yaml``), shipped with the package.
DEFAULT_JUDGE_FILE = Path(__file__).with_name("default_judge.json")


def _default_weights() -> JudgeWeights:
    """The shipped trained judge's weights (the hand-set analyser weights if it is absent)."""
    if DEFAULT_JUDGE_FILE.is_file():
        return JudgeState.load(DEFAULT_JUDGE_FILE).weights
    from zhufu.pipeline.analysis import default_weights

    return default_weights()


def default_state() -> JudgeState:
    """The default judge: the shipped trained state, else the hand-set offline judge v1."""
    if DEFAULT_JUDGE_FILE.is_file():
        return JudgeState.load(DEFAULT_JUDGE_FILE)
    return JudgeState()


class JudgeSpecError(ModelSpecError):
    """A judge spec that names nothing loadable; the message says what forms work."""


@dataclass
class JudgeState:
    """A judge as data: which backend, extra judging rules, feature weights."""

    backend: str = "offline"
    rules: list[str] = field(default_factory=list)
    weights: JudgeWeights = field(default_factory=lambda: _default_weights())
    name: str = "offline-v1"
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "version": 1, "name": self.name,
                "backend": self.backend, "rules": list(self.rules),
                "weights": self.weights.to_dict(), "metadata": self.metadata}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "judge state") -> JudgeState:
        if data.get("format") != STATE_FORMAT:
            raise JudgeSpecError(f"{source}: not a Zhufu judge state (format must be "
                                 f"{STATE_FORMAT!r}, got {data.get('format')!r})")
        rules = data.get("rules", [])
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise JudgeSpecError(f"{source}: field 'rules' must be a list of strings")
        try:
            weights = JudgeWeights.from_dict(data.get("weights") or {})
        except (TypeError, ValueError) as e:
            raise JudgeSpecError(f"{source}: field 'weights': {e}") from e
        return cls(backend=str(data.get("backend", "offline")), rules=rules, weights=weights,
                   name=str(data.get("name", "judge")), metadata=dict(data.get("metadata", {})))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if path.is_dir():
            path = path / STATE_FILE
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n",
                        encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> JudgeState:
        path = Path(path)
        if path.is_dir():
            path = path / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise JudgeSpecError(f"{path}: no such judge state file") from e
        except json.JSONDecodeError as e:
            raise JudgeSpecError(f"{path}: not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise JudgeSpecError(f"{path}: expected a JSON object")
        return cls.from_dict(data, str(path))


class Judge:
    """Scores (query, greeting) pairs with ``backend`` under ``state``."""

    def __init__(self, backend: ChatBackend, state: JudgeState | None = None) -> None:
        self.backend = backend
        self.state = state or JudgeState()
        self.failures = 0
        self.errors: dict[str, int] = {}
        self._weights = self.state.weights.to_dict()

    @property
    def name(self) -> str:
        return self.state.name

    def request(self, query: str, response: str) -> ChatRequest:
        """The request for one greeting: LLM prompt + the same thing as an offline task."""
        return ChatRequest(
            messages=build_messages(query, response, self.state.rules),
            task={"kind": "judge", "query": query, "response": response,
                  "weights": self._weights},
            temperature=0.0, json_output=True)

    def _read(self, reply: ChatResponse | LLMError) -> JudgeResult:
        if isinstance(reply, LLMError):
            return self._fail("call_error", str(reply))
        result = parse_judge_output(reply.text)
        if result is None:
            return self._fail("unreadable_reply", f"unreadable reply: {reply.text[:80]!r}")
        return result

    def _fail(self, kind: str, message: str) -> JudgeResult:
        self.failures += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1
        return JudgeResult.neutral(message)

    async def score(self, query: str, response: str) -> JudgeResult:
        return (await self.score_many([(query, response)]))[0]

    async def score_many(self, pairs: Sequence[tuple[str, str]], progress: bool = False,
                         chunk: int = 256) -> list[JudgeResult]:
        """Judge every (query, greeting) pair, in order; failures become neutral results."""
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(pairs), desc=f"judge {self.name}", unit="greeting")
        results: list[JudgeResult] = []
        try:
            for start in range(0, len(pairs), chunk):
                part = pairs[start:start + chunk]
                replies = await tracing.chat_many(
                    self.backend, [self.request(q, r) for q, r in part], "judge",
                    [{"query": q, "response": r} for q, r in part])
                results.extend(self._read(rep) for rep in replies)
                if bar is not None:
                    bar.update(len(part))
        finally:
            if bar is not None:
                bar.close()
        return results

    def metrics(self) -> dict[str, float]:
        return {"judge_failures": float(self.failures), **self.backend.stats.as_metrics()}

    async def aclose(self) -> None:
        await self.backend.aclose()


Resolver = Callable[[str], "Judge"]
_RESOLVERS: dict[str, Resolver] = {}


def register_judge_resolver(prefix: str, resolver: Resolver) -> None:
    """Let ``load_judge`` resolve specs starting with ``prefix`` (e.g. ``"models:/"``)."""
    _RESOLVERS[prefix] = resolver


def _backend_for(spec: str) -> ChatBackend:
    if spec.strip().lower() == "offline":
        from zhufu.pipeline.llm.offline import OfflineBackend

        return OfflineBackend()
    from zhufu.pipeline.llm import make_backend, parse_llm_spec

    try:
        return make_backend(parse_llm_spec(spec))
    except ValueError as e:
        raise JudgeSpecError(str(e)) from e


def saved_judge(state: JudgeState, source: str) -> Judge:
    """A :class:`Judge` from a saved state; its LLM server follows
    :func:`~zhufu.pipeline.judge.server.server_spec`, not only the state."""
    from zhufu.pipeline.judge.server import server_spec

    return Judge(_backend_for(server_spec(state.backend, source)), state)


def load_judge(spec: str | None = None) -> Judge:
    """Resolve a judge spec (see module docstring); None or ``offline`` = the default judge."""
    spec = (spec or "offline").strip()
    if spec.startswith(("models:/", "runs:/")):
        import zhufu.pipeline.judge.registry  # noqa: F401 - registers the MLflow resolvers
    for prefix, resolver in _RESOLVERS.items():
        if spec.startswith(prefix):
            return resolver(spec)
    if spec.lower() == "offline":
        return Judge(_backend_for("offline"), default_state())
    kind = spec.split(":", 1)[0].lower()
    if kind in ("openai", "hf", "transformers"):
        return Judge(_backend_for(spec), JudgeState(backend=spec, name=spec))
    path = Path(spec)
    if path.exists():
        return saved_judge(JudgeState.load(path), str(path))
    if "://" in spec or spec.startswith(("models:/", "runs:/")):
        raise JudgeSpecError(f"judge spec {spec!r}: no resolver for this URI scheme here "
                             f"(registered: {sorted(_RESOLVERS) or 'none'})")
    raise JudgeSpecError(f"judge spec {spec!r}: not 'offline', an LLM spec "
                         "(openai:MODEL@URL, hf:PATH) or an existing judge state file")
