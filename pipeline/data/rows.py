"""Row types of the data layer: one frozen dataclass per kind of record."""

from __future__ import annotations

from dataclasses import dataclass, field

#: The instruction the paper's verl prompts put before each query (a fact of that format).
PROMPT_PREFIX = "请只生成一条祝福语："
#: A prompt's user message for ``query`` in the verl format.
PROMPT_TEMPLATE = PROMPT_PREFIX + "{query}"


@dataclass(frozen=True)
class SFTExample:
    """One Alpaca row: the query is the ``instruction``, ``input`` is usually empty."""

    instruction: str
    input: str
    output: str


@dataclass(frozen=True)
class PreferencePair:
    """A query with a preferred (``chosen``) and a dispreferred (``rejected``) greeting."""

    query: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class Prompt:
    """A GRPO prompt: the bare ``query`` and the chat ``messages`` ({role, content}) sent."""

    query: str
    messages: list[dict[str, str]] = field(hash=False)

    @classmethod
    def from_query(cls, query: str) -> Prompt:
        """The verl-format prompt for ``query`` (one user message, see PROMPT_TEMPLATE)."""
        return cls(query=query,
                   messages=[{"role": "user", "content": PROMPT_TEMPLATE.format(query=query)}])


@dataclass(frozen=True)
class LabelledExample:
    """A greeting for a query with a binary verdict: 1 = good, 0 = bad."""

    query: str
    response: str
    label: int

    def __post_init__(self) -> None:
        if self.label not in (0, 1):
            raise ValueError(f"label must be 0 or 1, got {self.label!r}")
        object.__setattr__(self, "label", int(self.label))


def query_from_prompt_text(text: str) -> str:
    """The query inside a verl user message (the text after PROMPT_PREFIX, else all of it)."""
    text = text.strip()
    return text[len(PROMPT_PREFIX):].strip() if text.startswith(PROMPT_PREFIX) else text
