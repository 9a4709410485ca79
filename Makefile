# Zhufu — one CPU machine, no cluster: `make run` runs the loop, `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
# pip via its own script, never `python -m pip`: `-m` puts the repo root on sys.path, where
# the operator/ folder would shadow the standard library's operator module.
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# The trainer image's DeepSpeed, for the ZeRO-3 test on CPU (DS_BUILD_OPS=0: no compiled ops;
# it ships only an sdist, built against the installed torch).
DEEPSPEED_VERSION := $(shell sed -n 's/^ARG DEEPSPEED_VERSION=//p' images/trainer/Dockerfile)

# Nothing but loopback: no library telemetry, no model hub (zhufu sets these too on import).
export MLFLOW_DISABLE_TELEMETRY = true
export DO_NOT_TRACK = 1
export HF_HUB_DISABLE_TELEMETRY = 1
export HF_HUB_OFFLINE = 1

.PHONY: install run test test-all test-slow-ci test-distributed test-registry e2e lint images wheelhouse clean

install: $(STAMP)

# CPU torch first (from local disk), then everything else pinned by constraints.txt so pip
# can never swap in a CUDA build. qwen-agent is installed without dependencies: we only read
# the Qwen2.5 BPE ranks file (qwen.tiktoken) it carries.
$(STAMP): pyproject.toml setup.py constraints.txt scripts/install_tools.py
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[train,operator,dev]'
	$(PIP) install -q --no-deps qwen-agent==0.0.34
	DS_BUILD_OPS=0 $(PIP) install -q --no-build-isolation -c constraints.txt deepspeed==$(DEEPSPEED_VERSION)
	$(PY) scripts/install_tools.py $(VENV)
	touch $(STAMP)

run: install
	$(VENV)/bin/zhufu run

test: install
	$(VENV)/bin/pytest

# The rank-safety tests: sft, train-rm and grpo on 2 ranks under torchrun (CPU, gloo); GRPO
# under ZeRO-3 on 2 ranks; a 2-node GRPO group that loses a node and restarts.
test-distributed: install
	$(VENV)/bin/pytest -m distributed

test-all: install
	$(VENV)/bin/pytest -m "slow or not slow"

# The slow tests .ci/run runs as well (minutes each): the GPU smoke script on CPU, and
# GRPO killed and rerun (resumed mid-way; rerun after its final checkpoint).
test-slow-ci: install
	$(VENV)/bin/pytest -m slow tests/scripts tests/pipeline/train/test_grpo.py

# The trainer image's version pins against the registry's metadata (asks PyPI through pip).
test-registry: install
	$(VENV)/bin/pytest -m registry

# The cluster path end to end (minutes): S3, MLflow, the API emulator, the chart's operator and
# a kubelet running each Job's pods as local processes; JudgeTraining, CurationJob and a
# two-node GRPORun applied with the real kubectl, with the faults (operator restart mid-run,
# both GRPO pods killed after a checkpoint). The last line is the JSON summary.
E2E_FLAGS ?= --faults
e2e: install
	$(PY) -P tests/e2e/run_e2e.py $(E2E_FLAGS)

lint: install
	$(VENV)/bin/ruff check .

# Wheels a GPU host without network needs for scripts/gpu-smoke.sh (not committed; 55 MiB).
wheelhouse: install
	$(PY) -P scripts/build_wheelhouse.py --out wheelhouse

# Needs a Docker engine (none on the development machines): builds both images.
IMAGE_REPO ?= ghcr.io/zhufu-dev
IMAGE_TAG ?= 0.1.0
images:
	docker build -f images/trainer/Dockerfile -t $(IMAGE_REPO)/zhufu-trainer:$(IMAGE_TAG) .
	docker build -f images/operator/Dockerfile -t $(IMAGE_REPO)/zhufu-operator:$(IMAGE_TAG) .

clean:
	rm -rf $(VENV) .zhufu .pytest_cache
