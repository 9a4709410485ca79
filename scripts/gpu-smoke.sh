#!/usr/bin/env bash
# Smoke test of the product on GPUs: `zhufu grpo` through torchrun on every visible GPU, bf16,
# judge + reward-model + rule rewards, LoRA, a checkpoint and a resume, registration in a local
# MLflow (sqlite), on a random Qwen2 of Qwen2.5-0.5B's shape saved to disk first. Then, each in
# its own try and skipped with a message when its package is missing: DeepSpeed ZeRO-3 and vLLM
# colocate. Ends with one JSON line (steps, s/step, tokens/s/GPU, peak GPU memory, MLflow runs
# and versions) and exits non-zero if anything failed. Sized for <= 6 minutes on one H100/H200.
#
#   bash scripts/gpu-smoke.sh                    # GPUs; installs wheelhouse/ first if present
#   bash scripts/gpu-smoke.sh --device cpu       # CI: one CPU rank, zhufu's tiny models
#
# A GPU host without network gets zhufu's missing dependencies from wheelhouse/ (built here by
# `make wheelhouse`, see scripts/build_wheelhouse.py): installed with pip's dependency
# resolution against the host's own packages, so a missing or too old package fails loudly.
# PYTHON picks the interpreter (default: .venv/bin/python when present, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=cuda
WORK=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    *) echo "usage: $0 [--device cuda|cpu] [--work DIR]" >&2; exit 2 ;;
  esac
done
[[ $DEVICE == cuda || $DEVICE == cpu ]] || { echo "--device must be cuda or cpu" >&2; exit 2; }
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
PYTHON=$(command -v "$PYTHON")
WORK=${WORK:-$(mktemp -d /tmp/zhufu-gpu-smoke.XXXXXX)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

pip() { "$PYTHON" -P -m pip "$@"; }  # -P: the repo root's operator/ must not shadow stdlib
if [[ -d wheelhouse ]]; then
  echo "== installing zhufu's dependencies from wheelhouse/ (no network)"
  pip install -q --no-index --find-links wheelhouse -r wheelhouse/requirements.txt
  for sdist in wheelhouse/deepspeed-*.tar.gz; do
    [[ -f $sdist ]] || continue  # DeepSpeed ships no wheel: built here against the host's torch
    DS_BUILD_OPS=0 pip install -q --no-index --find-links wheelhouse --no-build-isolation "$sdist"
  done
  # zhufu itself without resolution: its boto3 and full MLflow are replaced (see the builder).
  pip install -q --no-index --find-links wheelhouse --no-deps -e .
fi
BIN=$("$PYTHON" -P -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
[[ -x $BIN/zhufu && -x $BIN/torchrun ]] || { echo "no zhufu/torchrun in $BIN" >&2; exit 1; }

export ZHUFU_HOME=$WORK/home MLFLOW_TRACKING_URI=sqlite:///$WORK/mlflow.db
export HF_HUB_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 HF_HUB_DISABLE_TELEMETRY=1
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if [[ $DEVICE == cpu ]]; then
  export CUDA_VISIBLE_DEVICES=""
  GPUS=0; NPROC=1; SIZE=tiny; BASE_STEPS=2; TOTAL_STEPS=4; OPT_STEPS=2
else
  GPUS=$("$PYTHON" -P -c 'import torch; print(torch.cuda.device_count())')
  [[ $GPUS -ge 1 ]] || { echo "torch sees no GPU (use --device cpu)" >&2; exit 1; }
  NPROC=$GPUS; SIZE=0.5b; BASE_STEPS=4; TOTAL_STEPS=8; OPT_STEPS=3
  if command -v nvidia-smi > /dev/null; then  # peak memory as nvidia-smi sees it, every 0.5 s
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 \
      > "$WORK/gpu-memory.csv" &
    trap "kill $! 2> /dev/null" EXIT
  else
    echo "== no nvidia-smi: peak GPU memory will not be reported"
  fi
fi
echo "== work dir $WORK, $NPROC process(es), $SIZE model, python $PYTHON"

smoke() { "$PYTHON" -P scripts/gpu_smoke.py "$@"; }
grpo() {  # grpo NAME VARIANT STEPS SAVE_STEPS: one `zhufu grpo` through torchrun
  local name=$1 variant=$2 steps=$3 save=$4 config
  config=$(smoke config --name "$name" --work "$WORK" --device "$DEVICE" --steps "$steps" \
           --save-steps "$save" --variant "$variant")
  echo "== $name: zhufu grpo ($variant, $steps steps) -> $WORK/$name.log"
  ZHUFU_RESULT_FILE=$WORK/$name.result.json "$BIN/torchrun" --standalone \
    --nproc-per-node "$NPROC" "$BIN/zhufu" grpo --config "$config" > "$WORK/$name.log" 2>&1 \
    || { tail -n 40 "$WORK/$name.log" >&2; return 1; }
}
optional() {  # optional NAME MODULE: a configuration tried only where its package imports
  local name=$1 module=$2
  if ! "$PYTHON" -P -c "import $module" 2>/dev/null; then
    echo "== $name: skipped, python module '$module' is not installed"
    OPTIONAL+="$name=skipped,"
  elif grpo "$name" "$name" "$OPT_STEPS" "$OPT_STEPS"; then
    OPTIONAL+="$name=passed,"
  else
    echo "== $name: FAILED" >&2
    OPTIONAL+="$name=failed,"
  fi
}

smoke models --size "$SIZE" --out "$WORK/models"
grpo base base "$BASE_STEPS" "$BASE_STEPS"     # ends with a checkpoint at BASE_STEPS
grpo resume base "$TOTAL_STEPS" "$BASE_STEPS"  # same checkpoint dir: resumes from it
OPTIONAL=""
optional zero3 deepspeed
if [[ $DEVICE == cuda ]]; then
  optional vllm vllm
else
  echo "== vllm: skipped, vLLM colocate needs a GPU"
  OPTIONAL+="vllm=skipped,"
fi
smoke summary --work "$WORK" --gpus "$NPROC" --device "$DEVICE" --base-steps "$BASE_STEPS" \
  --total-steps "$TOTAL_STEPS" --optional "${OPTIONAL%,}"
