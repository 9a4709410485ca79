"""One pydantic model per stage: the CLI, the pod command and the CRD schemas all read these.

No torch here (the operator imports this module). Every model forbids unknown fields, so a
typo is an error that names the field. Load with :func:`load_config`, which reads YAML and
applies ``key.sub=value`` overrides from the command line.

Field names: the Python attributes are ``snake_case``; each field also has a ``camelCase``
alias (:func:`field_alias`, the Kubernetes API convention: ``numGenerations``,
``llm.baseUrl``), which is what the CRD schemas, examples and docs use. A config may spell a
field either way (files written before v1alpha1's rename keep working), but not both at once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake

from zhufu.pipeline.errors import ConfigError

#: The embedded default: ``tiny`` means "the offline tiny Qwen2 built by zhufu.pipeline.models".
TINY = "tiny"
#: An S3 bucket name (AWS rules: 3–63 lowercase letters, digits, dots and hyphens).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def check_s3_uri(value: str) -> str:
    """``value`` unchanged unless it is an ``s3://`` URI without a valid bucket (ValueError).

    >>> check_s3_uri("s3://zhufu/runs")
    's3://zhufu/runs'
    >>> check_s3_uri("s3://")
    Traceback (most recent call last):
    ...
    ValueError: 's3://': an s3:// URI needs a bucket name (s3://BUCKET/PREFIX)
    """
    if value[:5].lower() == "s3://" and not value.startswith("s3://"):
        raise ValueError(f"{value!r}: write the scheme in lower case (s3://BUCKET/PREFIX)")
    if not value.startswith("s3://"):
        return value
    bucket = value[len("s3://"):].partition("/")[0]
    if not bucket:
        raise ValueError(f"{value!r}: an s3:// URI needs a bucket name (s3://BUCKET/PREFIX)")
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(f"{value!r}: {bucket!r} is not a valid bucket name (3-63 lowercase "
                         "letters, digits, dots and hyphens)")
    return value


#: Fields whose camelCase name is not the plain conversion (Kubernetes spells durations out).
_ALIASES = {"timeout_s": "timeoutSeconds"}


def field_alias(name: str) -> str:
    """The camelCase spelling of a config field.

    >>> field_alias("num_generations"), field_alias("timeout_s"), field_alias("nodeSelector")
    ('numGenerations', 'timeoutSeconds', 'nodeSelector')
    """
    return _ALIASES.get(name) or to_camel(name)


def field_name(key: str) -> str:
    """The snake_case attribute a config key names, whichever way it is spelt.

    >>> field_name("baseUrl"), field_name("base_url"), field_name("timeoutSeconds")
    ('base_url', 'base_url', 'timeout_s')
    """
    for name, alias in _ALIASES.items():
        if key == alias:
            return name
    return to_snake(key) if key[:1].islower() else key


class Strict(BaseModel):
    """Base of every config model: unknown fields refused, camelCase or snake_case accepted."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True,
                              alias_generator=field_alias, validate_by_name=True,
                              validate_by_alias=True)

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        """A field given twice, once per spelling, is refused by name (not as an extra)."""
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                alias = field.alias
                if isinstance(alias, str) and alias != name and name in data and alias in data:
                    raise ValueError(f"{alias} and {name} are the same field: give it once")
        return data

    @field_validator("*")
    @classmethod
    def _s3_uris(cls, value: Any) -> Any:
        """Every string field that holds an ``s3://`` URI must name a valid bucket."""
        return check_s3_uri(value) if isinstance(value, str) else value


class LLMConfig(Strict):
    """Which chat backend the agents and the LLM judge talk to."""

    backend: Literal["offline", "openai", "transformers"] = Field(
        "offline",
        description="offline = the deterministic principle analyser; openai = any "
        "OpenAI-compatible chat endpoint (vLLM, SGLang, hosted); transformers = in-process.",
    )
    model: str = Field("", description="Model name (openai) or local path (transformers).")
    base_url: str | None = Field(None, description="e.g. http://vllm:8000/v1 (openai backend).")
    api_key_env: str = Field("OPENAI_API_KEY", description="Env var holding the API key.")
    api_key_file: str | None = Field(None, description="Mounted secret file with the API key.")
    concurrency: int = Field(16, ge=1, le=1024, description="Calls in flight at most.")
    timeout_s: float = Field(60.0, gt=0, description="Per-call timeout in seconds.")
    max_retries: int = Field(4, ge=0, le=20, description="Retries on 429/5xx/timeouts.")
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(512, ge=1, le=32768)
    cache_dir: str | None = Field(None, description="On-disk response cache (None = off).")
    json_mode: bool = Field(False, description="Send response_format=json_object when a "
                            "request wants JSON (openai; many servers reject it).")
    batch_size: int = Field(8, ge=1, le=1024, description="Requests generated together "
                            "(transformers backend).")
    trace_rate: float = Field(0.0, ge=0, le=1, description="Share of curated candidates and "
                              "judged greetings logged as MLflow traces (0 = off).")

    @model_validator(mode="after")
    def _needs_model(self) -> LLMConfig:
        if self.backend == "openai" and not (self.model and self.base_url):
            raise ValueError("backend 'openai' needs both 'model' and 'baseUrl'")
        if self.backend == "openai" and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"baseUrl must start with http:// or https://, got "
                             f"{self.base_url!r}")
        if self.backend == "transformers" and not self.model:
            raise ValueError("backend 'transformers' needs 'model' (a local path)")
        return self


class LoRAConfig(Strict):
    r: int = Field(16, ge=1, le=512)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )

    def to_peft(self, task_type: str) -> Any:
        """The ``peft.LoraConfig`` for ``task_type`` (``CAUSAL_LM``, ``SEQ_CLS``); peft is
        imported here, when a stage trains with LoRA."""
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.target_modules), task_type=task_type)


class StageConfig(Strict):
    """Fields every stage shares."""

    experiment: str = Field("zhufu", min_length=1, description="MLflow experiment name.")
    output_dir: str = Field(".zhufu/outputs", description="Local folder or s3:// prefix.")
    seed: int = Field(0, ge=0)


class SFTConfig(StageConfig):
    base_model: str = Field(TINY, description="'tiny', a local path, an s3:// prefix, a "
                            "models:/ URI or a hub id.")
    data: str | None = Field(None, description="Alpaca JSON (path or s3://); None = starter set.")
    max_steps: int = Field(-1, ge=-1, description="-1 = run num_epochs.")
    num_epochs: float = Field(1.0, gt=0)
    learning_rate: float = Field(2e-5, gt=0)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of steps with a linear "
                                "warm-up (a model trained from random weights needs one).")
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(256, ge=16)
    padding_free: bool = Field(True, description="Concatenate a batch's examples instead of "
                               "padding them (position ids keep them apart); False = pad.")
    lora: LoRAConfig | None = None
    register_as: str = "zhufu-policy"
    alias: str = "sft"


_DENSE_NEEDS_MODEL = ("retrieval.kind 'dense' needs retrieval.model (a local "
                      "sentence-transformers folder)")


class RetrievalConfig(Strict):
    kind: Literal["bm25", "dense", "none"] = "bm25"
    top_k: int = Field(3, ge=1, le=50)
    model: str | None = Field(None, validate_default=True,
                              description="sentence-transformers path (dense only).")

    @field_validator("model")
    @classmethod
    def _dense_needs_model(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") == "dense" and not value:
            raise ValueError(_DENSE_NEEDS_MODEL)
        return value

    @model_validator(mode="after")
    def _dense_has_model(self) -> RetrievalConfig:
        """The same rule when ``kind`` is assigned after construction."""
        if self.kind == "dense" and not self.model:
            raise ValueError(_DENSE_NEEDS_MODEL)
        return self


class DebateConfig(Strict):
    enabled: bool = True
    rounds: int = Field(1, ge=1, le=5)


class CurateConfig(StageConfig):
    queries: str | None = Field(None, description="Query txt / prompt parquet; None = starter.")
    max_queries: int | None = Field(None, ge=1)
    policy: str | None = Field(None, description="Policy to sample candidates from.")
    samples_per_query: int = Field(4, ge=1, le=64)
    sample_temperature: float = Field(1.0, gt=0, le=2, description="Policy sampling temperature.")
    sample_max_tokens: int = Field(128, ge=8, le=4096, description="Policy sample length cap.")
    responses: str | None = Field(None, description="Given candidates (labelled JSONL).")
    exemplars: str | None = Field(None, description="Good greetings; None = starter set.")
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    debate: DebateConfig = Field(default_factory=DebateConfig)
    judge: bool = True
    reflect: bool = True
    dev_labels: str | None = Field(None, description="Labelled JSONL to measure agreement.")
    llm: LLMConfig = Field(default_factory=LLMConfig)
    shards: int = Field(1, ge=1, le=256, description="Split the queries over this many "
                        "shards by a stable hash of the query, each curated into its own part "
                        "(<outputDir>/shard-<i>/, its own journal); in a CurationJob one pod "
                        "per shard (an Indexed Job).")
    reward_model: RewardModelConfig | None = Field(
        None, description="Then train and register a reward model on the curated pairs "
        "(its 'data' is set to them): a CurationJob's whole work.")

    @model_validator(mode="after")
    def _decides(self) -> CurateConfig:
        if not self.judge and not self.debate.enabled:
            raise ValueError("judge: false needs debate.enabled: true (the debate tally then "
                             "decides); with both off nothing gives a verdict")
        return self


class CharEncoderConfig(Strict):
    """Shape of the fresh BERT-style encoder used when ``baseModel: char``."""

    hidden_size: int = Field(128, ge=16, le=2048)
    num_layers: int = Field(2, ge=1, le=48)
    num_heads: int = Field(4, ge=1, le=64)
    dropout: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide(self) -> CharEncoderConfig:
        if self.hidden_size % self.num_heads:
            raise ValueError("charEncoder: hiddenSize must be a multiple of numHeads")
        return self


class RewardModelConfig(StageConfig):
    data: str | None = Field(None, description="ShareGPT preference JSON; None = curated.")
    base_model: str = Field(
        TINY, description="'tiny', 'char' (a fresh encoder over the characters of the "
        "training split, shaped by char_encoder), a local path or a models:/ URI.")
    char_encoder: CharEncoderConfig = Field(default_factory=CharEncoderConfig)
    eval_fraction: float = Field(0.1, gt=0, lt=1)
    num_epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1)
    learning_rate: float = Field(5e-5, gt=0)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    batch_size: int = Field(16, ge=1)
    max_length: int = Field(192, ge=16)
    lora: LoRAConfig | None = None
    degenerate_negatives: float = Field(
        0.0, ge=0, le=10, description="Extra training pairs per training pair: the chosen text "
        "against a degenerate corruption of itself (punctuation soup, repetition, shuffled, cut "
        "off, echoed query…, see pipeline/judge/degenerate.py; half the 'written twice' ones "
        "double the rejected text instead). Held-out pairs are untouched.")
    register_as: str = "zhufu-reward"
    alias: str | None = Field("candidate", description="Alias set on the new version.")

    @model_validator(mode="after")
    def _lora_needs_pretrained(self) -> RewardModelConfig:
        if self.lora is not None and self.base_model == "char":
            raise ValueError("lora adapts a pretrained model; baseModel 'char' trains a fresh "
                             "encoder from scratch: drop lora or pick another baseModel")
        return self


class JudgeTrainConfig(StageConfig):
    queries: str | None = Field(None, description="Queries for adversarial rounds.")
    labelled: str | None = Field(None, description="Labelled JSONL or pairs; None = starter.")
    pairs: str | None = Field(None, description="Extra preference pairs (ShareGPT JSON) added "
                              "as labelled rows: chosen = 1, rejected = 0.")
    dev: str | None = Field(None, description="Held-out labelled data; None = split.")
    dev_fraction: float = Field(0.15, gt=0, lt=1, description="Dev split (best-round pick).")
    test_fraction: float = Field(0.2, ge=0, lt=1, description="Test split, never trained on "
                                 "nor used to pick a round (reported only).")
    rounds: int = Field(5, ge=0, le=100)
    batch_size: int = Field(32, ge=1)
    max_rules: int = Field(10, ge=1, le=100)
    adversarial: bool = Field(True, description="Generator on (off = known examples only).")
    reflector: bool = True
    steps_per_round: int = Field(100, ge=0, description="Optimiser gradient steps per round.")
    learning_rate: float = Field(0.03, gt=0)
    max_reflections: int = Field(1000, ge=0, description="Reflections per round at most.")
    start: Literal["default", "hand-set"] = Field(
        "default", description="Start from the shipped default judge, or from the hand-set "
        "analyser weights (how examples/judge.yaml builds the default judge itself).")
    mine_from: Literal["all", "labelled", "none"] = Field(
        "all", description="Texts phrase rules may be mined from: every training row, only the "
        "'labelled' rows and the project's own test sets (not 'pairs': use this when the pairs' "
        "text must not ship inside the judge), or none.")
    tune_sets: bool = Field(False, description="Also train on the project's own good "
                            "greetings (starter set) and the tune split of the judge's own test "
                            "sets (principle pairs, degenerate answers).")
    own_weight: float = Field(1.0, gt=0, description="Sample weight of the project's own rows "
                              "('labelled', starter greetings, tune sets) against 'pairs' rows.")
    anchor: float = Field(1.0, ge=0, description="How strongly each round's optimiser pulls "
                          "every weight back towards its value at the start of the round (a "
                          "trust region: larger keeps a judge trained on little data close "
                          "to the one it started from).")
    length_cap: float | None = Field(None, gt=0, description="Largest |weight| of any length "
                                     "feature: how far length alone may move a dimension "
                                     "score (None = unbounded).")
    llm: LLMConfig = Field(default_factory=LLMConfig)
    register_as: str = "zhufu-judge"


RewardName = Literal["judge", "rm", "format", "length", "repetition", "variety"]


class RewardSpec(Strict):
    name: RewardName = Field(description="judge / rm: a judge or reward model (model); "
                             "format, length, repetition, variety: rules in [0, 1] "
                             "(zhufu.pipeline.rewards; variety: against one closing line "
                             "pasted onto answers for many queries).")
    weight: float = Field(1.0, ge=0)
    model: str | None = Field(None, description="judge / rm: path or models:/ URI.")
    guard: bool | None = Field(None, description="rm: score text that is not a greeting (the "
                               "judge's degeneracy signals) below every greeting of its batch "
                               "(unset = on); false = the model's raw score "
                               "(docs/reward-model.md).")


def vllm_root_url(url: str) -> str:
    """``url`` without trailing slashes and ``/v1``; it must be ``http(s)://HOST[:PORT]...``.

    >>> vllm_root_url("http://vllm.zhufu.svc:8000/v1")
    'http://vllm.zhufu.svc:8000'
    >>> vllm_root_url("vllm:8000")
    Traceback (most recent call last):
    ...
    ValueError: 'vllm:8000': expected http://HOST:PORT (the vLLM server's root URL)
    """
    root = url.strip().rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")].rstrip("/")
    scheme, sep, rest = root.partition("://")
    if not sep or scheme not in ("http", "https") or not rest.split("/")[0]:
        raise ValueError(f"{url!r}: expected http://HOST:PORT (the vLLM server's root URL)")
    return root


class GRPOConfig(StageConfig):
    policy: str = Field("models:/zhufu-policy@sft", description="The policy to train: 'tiny', "
                        "a local path, an s3:// prefix, a models:/ URI or a hub id; with sft "
                        "set, the base model SFT starts from (unless sft.base_model is set).")
    sft: SFTConfig | None = Field(
        None, description="Run SFT first (same Job) and train its model with GRPO: "
        "registers zhufu-policy@sft, then @grpo. Its output_dir and experiment default to "
        "this run's.")
    prompts: str | None = Field(None, description="verl parquet / query txt; None = starter.")
    rewards: list[RewardSpec] = Field(
        default_factory=lambda: [RewardSpec(name="judge"), RewardSpec(name="format", weight=0.5)],
        min_length=1,
    )
    preset: Literal["tiny", "paper"] | None = None
    num_generations: int = Field(4, ge=2)
    batch_size: int = Field(8, ge=1, description="Global batch of completions per step (the "
                            "paper's meaning): each of the WORLD_SIZE processes takes an equal "
                            "share, so it must divide evenly.")
    learning_rate: float = Field(1e-5, gt=0)
    beta: float = Field(0.001, ge=0, description="KL coefficient.")
    max_prompt_length: int = Field(256, ge=8)
    max_completion_length: int = Field(64, ge=8)
    max_steps: int = Field(20, ge=1)
    save_steps: int = Field(10, ge=1)
    checkpoint_dir: str | None = Field(None, description="Local dir or s3:// prefix.")
    resume: Literal["auto", "never"] = "auto"
    lora: LoRAConfig | None = None
    deepspeed: Literal["none", "zero2", "zero3"] = "none"
    vllm: Literal["none", "colocate", "server"] = "none"
    vllm_server_url: str | None = Field(
        None, description="Root URL of a `trl vllm-serve` server (http://HOST:8000); TRL adds "
        "/v1/... itself, so a trailing /v1 is dropped.")
    register_as: str = "zhufu-policy"
    alias: str = "grpo"

    @field_validator("vllm_server_url")
    @classmethod
    def _vllm_root(cls, value: str | None) -> str | None:
        """The server's root URL: TRL appends ``/v1/...`` and its own routes to it.

        >>> GRPOConfig(vllm="server", vllm_server_url="http://vllm:8000/v1/").vllm_server_url
        'http://vllm:8000'
        """
        return None if value is None else vllm_root_url(value)

    @model_validator(mode="after")
    def _check(self) -> GRPOConfig:
        if sum(r.weight for r in self.rewards) <= 0:
            raise ValueError("rewards: weights sum to 0; at least one reward needs weight > 0")
        if self.batch_size % self.num_generations:
            raise ValueError("batchSize must be a multiple of numGenerations")
        if self.vllm == "server" and not self.vllm_server_url:
            raise ValueError("vllm 'server' needs vllmServerUrl")
        if (self.sft is not None and "base_model" not in self.sft.model_fields_set
                and "policy" in self.model_fields_set):
            self.sft = self.sft.model_copy(update={"base_model": self.policy})
            self.sft.model_fields_set.add("base_model")
        return self


C = TypeVar("C", bound=BaseModel)


def format_validation_error(err: ValidationError, source: str = "config") -> str:
    lines = [f"{source}: {err.error_count()} invalid field(s)"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(root)"
        lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=value`` to nested dicts; the value is parsed as YAML (``3``, ``[1]``)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {assignment!r}: expected KEY=VALUE, e.g. llm.concurrency=32")
    *parents, leaf = key.strip().split(".")
    node = data
    for part in parents:
        child = node.setdefault(_spelt_as_given(node, part), {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {assignment!r}: {part!r} is not a section")
        node = child
    node[_spelt_as_given(node, leaf)] = yaml.safe_load(raw)


def _spelt_as_given(node: dict[str, Any], key: str) -> str:
    """``key`` as ``node`` already spells it (``maxSteps`` for ``max_steps``), else ``key``:
    an override replaces a field the file set in the other spelling instead of adding it
    twice."""
    for existing in node:
        if existing != key and field_name(existing) == field_name(key):
            return existing
    return key


def load_config(cls: type[C], path: str | Path | None = None, overrides: list[str] = ()) -> C:
    """Read YAML (optional), apply overrides, validate; raise :class:`ConfigError` naming fields."""
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(f"{path}: no such config file") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping of fields")
        data = loaded or {}
    for assignment in overrides:
        apply_override(data, assignment)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from e


CurateConfig.model_rebuild()  # resolve the forward reference to RewardModelConfig
