#!/usr/bin/env bash
# The one device session that made the project's weights and GPU numbers (see README):
# trains lab-psnr-x4, lab-gan-x4 and a 23-block paper-recipe PSNR model (scripts/gpu_train.sh),
# scores the 23-block model on Set5/Set14 on the GPU (its weights are too large to bring
# back), times the precision variants (scripts/gpu_precision.py), and packs everything
# into $OUT/results.tar (the device tool returns at most 8 files).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
FINAL=${OUT:-/tmp/esrgan-lab-session}
RES=${RES:-/tmp/esrgan-lab-results}
RUNS=${RUNS:-/tmp/esrgan-lab-runs}
export ESRGAN_LAB_DATA=${ESRGAN_LAB_DATA:-$PWD/.data/datasets}
rm -rf "$RES"; mkdir -p "$RES" "$FINAL"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee "$RES/gpu.txt"

OUT="$RES" RUNS="$RUNS" DEVICE="$DEVICE" bash scripts/gpu_train.sh > "$RES/train.stdout" 2>&1
echo "gpu_train.sh exit $?"; grep -E "^=== |Set5 Y-PSNR|Error|error" "$RES/train.stdout" | tail -20

PAPER_W="$RUNS/paper_psnr/net_g.safetensors"
if [ -f "$PAPER_W" ]; then
  timeout 120 $PY -m esrgan_lab evaluate --model "$PAPER_W" --dataset Set5 --dataset Set14 \
    --device "$DEVICE" --no-niqe --no-progress --json "$RES/paper_psnr_eval.json" > "$RES/paper_psnr_eval.txt" 2>&1
  echo "paper eval exit $?"; grep -iE "mean|error" "$RES/paper_psnr_eval.txt" | tail -4
fi
# pack now, so a precision run cut short by the time limit loses nothing else
tar cf "$FINAL/results.tar" -C "$RES" .
timeout "${PRECISION_S:-80}" $PY scripts/gpu_precision.py --json "$FINAL/gpu_precision.json" \
  ${PRECISION_ARGS:-} > "$FINAL/gpu_precision.txt" 2>&1
echo "gpu_precision exit $?"; tail -30 "$FINAL/gpu_precision.txt"
ls -la "$FINAL"
