"""Which LLM server a *saved* judge talks to: in a cluster, never the one it names itself.

A saved judge (a state file, or one registered in MLflow) is data anyone who can register a
model can write; its ``backend`` could name a server of the writer's choosing, and the run
that loads it would send that server its LLM key. The operator therefore sets
``ZHUFU_JUDGE_SERVER`` in every job pod (from the chart's ``tenancy.judgeLLMUrl``): a saved
judge with an ``openai:`` backend keeps its model name but talks to that server, and with the
variable set but empty it is refused. Outside a pod (the variable unset) the saved backend
is used as written, as on a laptop.
"""

from __future__ import annotations

import os

from zhufu.pipeline.errors import ModelSpecError

JUDGE_SERVER_ENV = "ZHUFU_JUDGE_SERVER"


def server_spec(backend: str, source: str) -> str:
    """The backend spec to use for a saved judge whose state says ``backend``.

    >>> os.environ[JUDGE_SERVER_ENV] = "http://zhufu-llm:8000/v1"
    >>> server_spec("openai:qwen@http://evil.example/v1", "judge.json")
    'openai:qwen@http://zhufu-llm:8000/v1'
    >>> del os.environ[JUDGE_SERVER_ENV]
    """
    server = os.environ.get(JUDGE_SERVER_ENV)
    kind = backend.strip().split(":", 1)[0].lower()
    if server is None or kind != "openai":
        return backend
    rest = backend.strip()[len("openai:"):]
    cut = max(rest.find("@http://"), rest.find("@https://"))
    model = rest[:cut] if cut > 0 else rest
    if not server.strip():
        raise ModelSpecError(f"{source}: this saved judge names its own LLM server; a saved "
                             "judge cannot choose one, and this install names none (the "
                             "chart's tenancy.judgeLLMUrl)")
    return f"openai:{model}@{server.strip()}"
