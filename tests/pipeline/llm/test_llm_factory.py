"""``parse_llm_spec`` and ``make_backend``: CLI specs become configs, configs become backends,
a cache dir wraps the backend, bad specs say what form is expected."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from pydantic import ValidationError

from zhufu.pipeline.config import LLMConfig
from zhufu.pipeline.llm import make_backend, parse_llm_spec
from zhufu.pipeline.llm.cache import CachedBackend
from zhufu.pipeline.llm.openai_compat import OpenAIBackend


def test_specs() -> None:
    assert parse_llm_spec(" OFFLINE ").backend == "offline"
    cfg = parse_llm_spec("openai:qwen@judge@https://api.example.com/v1", concurrency=64)
    assert (cfg.model, cfg.base_url, cfg.concurrency) == (
        "qwen@judge", "https://api.example.com/v1", 64)
    assert parse_llm_spec("transformers:/m").model == "/m"


@pytest.mark.parametrize("spec", ["", "gpt4", "openai:model", "openai:@http://x/v1",
                                  "openai:m@vllm:8000", "hf:", "vllm:http://x"])
def test_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="spec"):
        parse_llm_spec(spec)


def test_bad_override_names_the_field() -> None:
    with pytest.raises(ValidationError, match="concurrency"):
        parse_llm_spec("offline", concurrency=0)


async def test_make_openai_backend(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ZHUFU_FACTORY_KEY", "sk-factory")
    cfg = LLMConfig(backend="openai", model="m", base_url="http://127.0.0.1:1/v1",
                    api_key_env="ZHUFU_FACTORY_KEY", concurrency=7, timeout_s=3,
                    max_retries=1, json_mode=True)
    llm = make_backend(cfg)
    assert isinstance(llm, OpenAIBackend)
    assert (llm.concurrency, llm.timeout_s, llm.retry.max_retries, llm.json_mode) == (
        7, 3, 1, True)
    assert llm._headers["Authorization"] == "Bearer sk-factory"
    cached = make_backend(cfg.model_copy(update={"cache_dir": str(tmp_path)}))
    assert isinstance(cached, CachedBackend) and isinstance(cached.inner, OpenAIBackend)
    assert cached.stats is cached.inner.stats


@pytest.mark.skipif(importlib.util.find_spec("zhufu.pipeline.llm.offline") is None,
                    reason="the offline analyser is not in this tree yet")
def test_make_offline_backend() -> None:
    llm = make_backend("offline")
    assert type(llm).__name__ == "OfflineBackend"


def test_package_import_is_light() -> None:
    """Importing the llm package (as every CLI module may) pulls in neither torch nor aiohttp."""
    code = ("import sys, zhufu.pipeline.llm; "
            "print(sorted(m for m in ('torch', 'aiohttp', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         check=True, cwd="/")
    assert out.stdout.strip() == "[]"
