#!/usr/bin/env bash
# GPU smoke test (one GPU, < 8 minutes, no network): GRPO for 20 steps in bf16 on a randomly
# initialised Qwen2 of Qwen2.5-0.5B's shape with the real Qwen2.5 tokenizer; prints step time
# and tokens/s. Needs a Python with CUDA torch + transformers; installs the wheels carried
# in wheels/ (trl, and qwen-agent for the tokenizer's BPE ranks) without touching torch.
#   bash scripts/gpu-smoke.sh            # from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ -d wheels ]]; then
  "$PY" -m pip install -q --no-deps --no-index wheels/*.whl
fi
"$PY" -m pip install -q --no-deps --no-build-isolation -e . 2>/dev/null || true
export ZHUFU_HOME=${ZHUFU_HOME:-/tmp/zhufu-gpu-smoke} HF_HUB_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true
exec "$PY" -P scripts/gpu_smoke.py "$@"
