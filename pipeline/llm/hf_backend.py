"""In-process generation with transformers from a local model folder, batched.

Calls are queued; one worker task takes up to ``batch_size`` of them (waiting at most
``batch_wait_s`` after the first for more to arrive), groups them by sampling parameters,
applies the tokenizer's chat template (ChatML when the tokenizer has none), pads on the left
and runs ``model.generate`` in a worker thread, so the event loop keeps serving other calls
while the model works. Generation runs one batch at a time (a model is not safe to share
between threads).

Simplification: ``ChatRequest.seed`` is not applied per request (a batch samples from one
random stream); it still keeps requests apart in the response cache.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from zhufu.pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, LLMError

#: Used when a tokenizer ships no chat template (Qwen's own is ChatML too).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_Item = tuple[ChatRequest, "asyncio.Future[ChatResponse]"]


class TransformersBackend(ChatBackend):
    """Chat with a causal LM loaded from ``model_path`` (a folder with config, weights and
    tokenizer). ``device=None`` picks this rank's GPU (``cuda:<LOCAL_RANK>``) when CUDA is
    available, else the CPU, when the model first loads."""

    name = "transformers"

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 8,
        batch_wait_s: float = 0.01,
        concurrency: int | None = None,
        temperature: float = 0.7,
        max_tokens: int = 512,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        super().__init__(concurrency or max(16, 2 * batch_size))
        self.model_path = Path(model_path)
        if not self.model_path.is_dir():
            raise LLMError(f"model folder not found: {self.model_path}", "ModelNotFound")
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.temperature = temperature
        self.max_tokens = max_tokens
        #: size of every batch generated so far (for tests and tuning)
        self.batch_sizes: list[int] = []
        self._model: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self._queue: asyncio.Queue[_Item] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "model": str(self.model_path.resolve()),
                "temperature": self.temperature, "max_tokens": self.max_tokens}

    # -- model ---------------------------------------------------------------------------
    def load(self) -> tuple[Any, Any]:
        """Load model and tokenizer once (thread-safe); returns ``(model, tokenizer)``."""
        with self._load_lock:
            if self._model is None:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                from zhufu.pipeline.hardware import rank_device

                device = rank_device(self.device)  # this rank's GPU, chosen at first use
                tokenizer = AutoTokenizer.from_pretrained(self.model_path)
                tokenizer.padding_side = "left"
                if tokenizer.pad_token is None:
                    tokenizer.pad_token = tokenizer.eos_token
                kwargs: dict[str, Any] = {}
                if self.dtype:
                    kwargs["dtype"] = getattr(torch, self.dtype)
                model = AutoModelForCausalLM.from_pretrained(self.model_path, **kwargs)
                self._model = model.to(device).eval()
                self._tokenizer = tokenizer
        return self._model, self._tokenizer

    def _prompt(self, tokenizer: Any, messages: list[dict[str, str]]) -> str:
        template = None if getattr(tokenizer, "chat_template", None) else CHATML_TEMPLATE
        return tokenizer.apply_chat_template(messages, chat_template=template,
                                             add_generation_prompt=True, tokenize=False)

    def generate(self, requests: list[ChatRequest], temperature: float,
                 max_tokens: int) -> list[ChatResponse]:
        """Generate for ``requests`` in one padded batch (blocking; called in a thread)."""
        import torch

        model, tokenizer = self.load()
        start = time.perf_counter()
        texts = [self._prompt(tokenizer, r.messages) for r in requests]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        input_ids = enc["input_ids"].to(model.device)
        attention = enc["attention_mask"].to(model.device)
        stop_ids = _stop_ids(model, tokenizer)
        kwargs: dict[str, Any] = {"max_new_tokens": max_tokens,
                                  "pad_token_id": tokenizer.pad_token_id,
                                  "eos_token_id": sorted(stop_ids)}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
        else:
            kwargs.update(do_sample=False)
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        new_tokens = out[:, input_ids.shape[1]:].tolist()
        prompt_lengths = attention.sum(dim=1).tolist()
        elapsed = time.perf_counter() - start
        responses = []
        for ids, n_prompt in zip(new_tokens, prompt_lengths, strict=True):
            kept: list[int] = []
            for token in ids:
                if token in stop_ids:
                    break
                kept.append(token)
            used = min(len(ids), len(kept) + 1)  # the stop token was generated too
            text = tokenizer.decode(kept, skip_special_tokens=True)
            responses.append(ChatResponse(text, int(n_prompt), used, elapsed))
        return responses

    # -- batching ------------------------------------------------------------------------
    def _ensure_worker(self) -> asyncio.Queue[_Item]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop or self._worker is None \
                or self._worker.done():
            self._queue = asyncio.Queue()
            self._loop = loop
            self._worker = loop.create_task(self._work(self._queue), name="zhufu-hf-batcher")
        return self._queue

    async def _chat(self, request: ChatRequest) -> ChatResponse:
        queue = self._ensure_worker()
        future: asyncio.Future[ChatResponse] = asyncio.get_running_loop().create_future()
        queue.put_nowait((request, future))
        return await future

    async def _work(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            items = [await queue.get()]
            if queue.qsize() < self.batch_size - 1 and self.batch_wait_s > 0:
                await asyncio.sleep(self.batch_wait_s)
            while len(items) < self.batch_size and not queue.empty():
                items.append(queue.get_nowait())
            groups: dict[tuple[float, int], list[_Item]] = defaultdict(list)
            for request, future in items:
                if future.done():  # the caller gave up
                    continue
                temperature = self.temperature if request.temperature is None \
                    else request.temperature
                max_tokens = self.max_tokens if request.max_tokens is None \
                    else request.max_tokens
                groups[(temperature, max_tokens)].append((request, future))
            for (temperature, max_tokens), group in groups.items():
                await self._run_group(group, temperature, max_tokens)

    async def _run_group(self, group: list[_Item], temperature: float, max_tokens: int) -> None:
        self.batch_sizes.append(len(group))
        try:
            responses = await asyncio.to_thread(
                self.generate, [r for r, _ in group], temperature, max_tokens)
        except Exception as e:  # noqa: BLE001 - every waiting caller gets the failure
            for _, future in group:
                if not future.done():
                    error = LLMError(f"generation with {self.model_path} failed: {e}",
                                     type(e).__name__)
                    future.set_exception(error)
            return
        for (_, future), response in zip(group, responses, strict=True):
            if not future.done():
                future.set_result(response)

    async def aclose(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
            try:
                await worker
            except (asyncio.CancelledError, RuntimeError):
                pass
        self._queue = None


def _stop_ids(model: Any, tokenizer: Any) -> set[int]:
    """Token ids that end an answer: the model's and tokenizer's EOS, ``<|im_end|>``, pad."""
    ids: set[int] = set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    for token_id in (tokenizer.eos_token_id, tokenizer.pad_token_id,
                     tokenizer.convert_tokens_to_ids("<|im_end|>")):
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return ids
