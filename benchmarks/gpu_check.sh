#!/usr/bin/env bash
# The GPU checks of the paper path, in one command (about 8 minutes on one H100/H200):
#   1. the paper-path rehearsal (tests/pipeline/test_paper_rehearsal.py) on CUDA with bf16;
#   2. BALI steps of a BERT-base-shaped model (random init, 110M parameters, length 128, k = 3,
#      per-device batch 32) against MLM-only steps of the same batches (benchmarks/train_step.py);
#   3. if deepspeed imports: the rehearsal's training under configs/accelerate/deepspeed_zero2.yaml,
#      then its export.
# Prints every result and appends them to benchmarks/gpu.md (and $OUT/gpu.md when $OUT is set).
# Python packages the machine lacks can be installed from wheels in .whl/ (see benchmarks/README.md).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python3}
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
REPORT=$(mktemp)
{
  echo "## GPU check, $(date -u +%Y-%m-%d) ($($PY -c 'import torch; print(torch.cuda.get_device_name(0))' 2>/dev/null || echo 'no GPU'))"
  echo
} >"$REPORT"

echo "== 1. rehearsal on CUDA, bf16"
start=$(date +%s)
BALI_REHEARSAL_PROCESSES=1 BALI_REHEARSAL_MIXED_PRECISION=bf16 \
  $PY -m pytest -q -x tests/pipeline/test_paper_rehearsal.py 2>&1 | tail -5
status=${PIPESTATUS[0]}
echo "- rehearsal on CUDA (bf16, 1 process): exit $status, $(($(date +%s) - start)) s" >>"$REPORT"

echo "== 2. BALI vs MLM-only steps, BERT-base shape, bf16"
MODEL_DIR=$(mktemp -d)
$PY - "$MODEL_DIR" <<'PYEOF'
import sys
from transformers import BertConfig, BertModel
from bali.lm import load_tokenizer
tokenizer = load_tokenizer("builtin")  # BERT's uncased word-piece vocabulary (30,522)
BertModel(BertConfig(vocab_size=len(tokenizer))).save_pretrained(sys.argv[1])
tokenizer.save_pretrained(sys.argv[1])
PYEOF
step_json=$($PY benchmarks/train_step.py --model "$MODEL_DIR" --device cuda --bf16 --batch-size 32 \
  --length 128 --neighbours 3 --steps 30 --warmup 5)
echo "$step_json"
{
  echo "- BERT-base shape, per-device batch 32, length 128, k = 3, bf16 autocast:"
  echo '  ```json'
  echo "$step_json" | sed 's/^/  /'
  echo '  ```'
} >>"$REPORT"

echo "== 3. DeepSpeed ZeRO-2 training and export"
if $PY -c "import deepspeed" 2>/dev/null; then
  start=$(date +%s)
  BALI_REHEARSAL_PROCESSES=1 BALI_REHEARSAL_MIXED_PRECISION=bf16 \
    BALI_REHEARSAL_ACCELERATE_CONFIG=configs/accelerate/deepspeed_zero2.yaml \
    $PY -m pytest -q -x tests/pipeline/test_paper_rehearsal.py 2>&1 | tail -5
  status=${PIPESTATUS[0]}
  echo "- rehearsal under DeepSpeed ZeRO-2 (train + export + eval): exit $status, $(($(date +%s) - start)) s" >>"$REPORT"
else
  echo "deepspeed is not installed: skipped"
  echo "- DeepSpeed: not installed on this machine, skipped" >>"$REPORT"
fi

echo >>"$REPORT"
cat "$REPORT"
cat "$REPORT" >>benchmarks/gpu.md
[ -n "${OUT:-}" ] && cp benchmarks/gpu.md "$OUT/gpu.md"
exit 0
