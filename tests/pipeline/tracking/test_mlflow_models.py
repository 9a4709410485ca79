"""Registered models load through MLflow's own API: ``mlflow server`` on 127.0.0.1 with its
artifacts proxied to a moto_server bucket; the client has no AWS settings.

The policy and the reward model are registered as MLflow's transformers flavor from their
saved folders, the judge as a pyfunc; each is loaded here with ``mlflow.transformers`` /
``mlflow.pyfunc`` alone, and compared with what Zhufu's own loaders give for the same URI.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from zhufu.pipeline import tracking
from zhufu.pipeline.config import SFTConfig
from zhufu.pipeline.judge.judge import STATE_FILE, default_state, load_judge
from zhufu.pipeline.judge.principles import DIMENSION_KEYS
from zhufu.pipeline.models import (
    load_reward_model,
    resolve_model,
    tiny_policy_path,
    tiny_reward_model_path,
)

pytestmark = pytest.mark.integration

GREETINGS = [
    {"query": "给妈妈写一句生日祝福", "response": "妈妈生日快乐，愿您身体健康，笑口常开！"},
    {"query": "新年祝福同事", "response": "新年快乐"},
]


@pytest.fixture
def server(mlflow_server, zhufu_home: Path, monkeypatch: pytest.MonkeyPatch):
    tiny_policy_path(), tiny_reward_model_path()  # built before switching stores
    for var in ("AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    tracking.configure()
    return mlflow_server


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_policy_loads_with_the_transformers_flavor(server) -> None:
    import mlflow
    from safetensors.torch import load_file

    name = _name("policy")
    with tracking.stage_run("grpo", SFTConfig(experiment=name)):
        version = tracking.register_model_dir(tiny_policy_path(), name, alias="grpo")
    uri = f"models:/{name}@grpo"
    info = mlflow.models.get_model_info(uri)
    assert info.flavors["transformers"]["task"] == "text-generation"
    assert info.flavors["python_function"]["loader_module"] == "mlflow.transformers"
    pipe = mlflow.transformers.load_model(uri)
    assert type(pipe).__name__ == "TextGenerationPipeline"
    saved = load_file(str(tiny_policy_path() / "model.safetensors"))
    weights = pipe.model.state_dict()
    assert all(weights[k].equal(v) for k, v in saved.items())
    text = pipe("新年快乐", max_new_tokens=4, do_sample=False)[0]["generated_text"]
    assert text.startswith("新年快乐") and len(text) > len("新年快乐")
    served = mlflow.pyfunc.load_model(uri).predict(["新年快乐"], params={"max_new_tokens": 4,
                                                                     "do_sample": False})
    assert served == [text]
    # Zhufu's own loader reads the same version.
    assert (resolve_model(f"models:/{name}/{version}") / "model.safetensors").read_bytes() == (
        tiny_policy_path() / "model.safetensors").read_bytes()


def test_reward_model_pyfunc_returns_the_raw_reward(server) -> None:
    import mlflow
    import torch

    name = _name("reward")
    tracking.register_model_dir(tiny_reward_model_path(), name, alias="candidate")
    uri = f"models:/{name}@candidate"
    pipe = mlflow.transformers.load_model(uri)
    assert type(pipe).__name__ == "TextClassificationPipeline"
    scores = mlflow.pyfunc.load_model(uri).predict([g["response"] for g in GREETINGS])
    model, tok = load_reward_model(uri, device="cpu")
    with torch.no_grad():
        batch = tok([g["response"] for g in GREETINGS], return_tensors="pt", padding=True)
        logits = model(**batch).logits[:, 0].tolist()
    assert scores["score"].tolist() == pytest.approx(logits, abs=1e-4)


def test_judge_is_a_pyfunc_over_query_and_response(server, tmp_path: Path) -> None:
    import mlflow
    import pandas as pd

    name = _name("judge")
    folder = tmp_path / "judge"
    folder.mkdir()
    default_state().save(folder / STATE_FILE)
    tracking.register_dir(folder, name, alias="best", artifact_path="judge")
    uri = f"models:/{name}@best"
    model = mlflow.pyfunc.load_model(uri)
    out = model.predict(pd.DataFrame(GREETINGS))
    assert list(out.columns) == ["score", "label", *DIMENSION_KEYS]
    judge = load_judge(uri)  # Zhufu's own loader, same version
    expected = asyncio.run(judge.score_many([(g["query"], g["response"]) for g in GREETINGS]))
    assert out["score"].tolist() == pytest.approx([r.score for r in expected])
    assert out["label"].tolist() == [r.label for r in expected]
    assert out[DIMENSION_KEYS[0]].tolist() == pytest.approx(
        [r.scores[DIMENSION_KEYS[0]] for r in expected])
    assert out["score"].iloc[0] != out["score"].iloc[1]
    sig = mlflow.models.get_model_info(uri).signature
    assert sig.inputs.input_names() == ["query", "response"]
    with pytest.raises(Exception, match="response"):
        model.predict(pd.DataFrame([{"query": "生日祝福"}]))
