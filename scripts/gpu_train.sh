#!/usr/bin/env bash
# Train on one rented GPU (H100) within a fixed time budget, for the lead's device run.
#
#   1. lab-psnr-x4  : the lab RRDBNet (32 feat, 3 blocks, gc 16), PSNR stage,  ~150 s
#   2. lab-gan-x4   : ESRGAN GAN stage from (1) (VGG D, RaGAN, perceptual),  ~120 s
#   3. paper-psnr-x4: the paper's 23-block RRDBNet, PSNR recipe (batch 16, 128 px),  ~200 s
#
# Data: BSD68 + SunHays80 for training, Set5 for validation, read from
# $ESRGAN_LAB_DATA (default $PWD/.data/datasets, carried along by the device tool).
#
# What comes back in $OUT (the device tool returns at most 8 files <= 16 MiB, 2 folders
# deep), exactly 8 files:
#   lab_psnr/{net_g.safetensors,log.csv,metrics.json}
#   lab_gan/{net_g.safetensors,log.csv,metrics.json}
#   paper_psnr/{log.csv,metrics.json}
# The 23-block model's weights are NOT returned: 67 MB in fp32 and still 33 MB in fp16
# (exported as fp16 in $RUNS/paper_psnr/), over the 16 MiB per-file limit.
#
# Environment knobs:
#   BUDGET_SCALE  multiply every time budget (default 1; e.g. 0.02 for a local test)
#   LAB_PSNR_S, LAB_GAN_S, PAPER_S  per-stage training seconds (default 150, 120, 200)
#   DEVICE        cuda (default) or cpu
#   LOCAL_TEST=1  CPU smoke of this script: batch 2, 1 worker, 2-block "paper" model
#   PYTHON        interpreter (default python3)
#   RUNS          where full runs go (default /tmp/esrgan-lab-runs)
#   OUT           where results are copied (default $RUNS/out)
# Wheels: if ./.whl holds wheels (e.g. safetensors), they are installed into /tmp/site.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
export ESRGAN_LAB_DATA=${ESRGAN_LAB_DATA:-$PWD/.data/datasets}
SCALE=${BUDGET_SCALE:-1}
DEVICE=${DEVICE:-cuda}
RUNS=${RUNS:-/tmp/esrgan-lab-runs}
OUT=${OUT:-$RUNS/out}
mkdir -p "$RUNS" "$OUT"

# The training path imports: torch, numpy, yaml, safetensors, tqdm, cv2 (image files).
$PY - <<'PYEOF' || { echo "missing packages: pass them as wheels in .whl/"; exit 1; }
import importlib, sys
import esrgan_lab, torch
missing = [m for m in ("numpy", "yaml", "safetensors", "tqdm", "cv2") if importlib.util.find_spec(m) is None]
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
if missing:
    print("missing:", missing); sys.exit(1)
PYEOF
for d in BSD68 SunHays80 Set5; do
  [ -d "$ESRGAN_LAB_DATA/$d" ] || { echo "dataset $d missing under $ESRGAN_LAB_DATA"; exit 1; }
done

minutes() { $PY -c "print(round($1 * $SCALE / 60, 4))"; }
COMMON=(--set "runtime.device=$DEVICE" --set logging.progress=false)
PAPER=()
if [ "${LOCAL_TEST:-0}" = 1 ]; then
  COMMON+=(--set data.batch_size=2 --set data.num_workers=1 --set runtime.amp=none)
  PAPER+=(--set model.num_block=2)
fi

train() {  # name, then esrgan-lab train arguments
  local name=$1; shift
  echo "=== $name: $*"
  local t0=$SECONDS
  $PY -m esrgan_lab train "$@" "${COMMON[@]}" 2>&1 | tee "$RUNS/$name.stdout"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $((SECONDS - t0)) s"
  return "$rc"
}

collect() {  # name, files...
  local name=$1; shift
  mkdir -p "$OUT/$name"
  for f in "$@"; do
    [ -f "$RUNS/$name/$f" ] && cp "$RUNS/$name/$f" "$OUT/$name/$f"
  done
}

rm -rf "$RUNS/lab_psnr" "$RUNS/lab_gan" "$RUNS/paper_psnr"

train lab_psnr --config configs/gpu_lab.yaml --out "$RUNS/lab_psnr" \
  --set "psnr.max_minutes=$(minutes ${LAB_PSNR_S:-150})"
collect lab_psnr net_g.safetensors log.csv metrics.json
cp "$RUNS/lab_psnr/psnr/log.csv" "$OUT/lab_psnr/log.csv" 2>/dev/null

if [ -f "$RUNS/lab_psnr/net_g.safetensors" ]; then
  train lab_gan --config configs/gpu_lab_gan.yaml --out "$RUNS/lab_gan" \
    --set "gan.pretrained_g=$RUNS/lab_psnr/net_g.safetensors" \
    --set "gan.max_minutes=$(minutes ${LAB_GAN_S:-120})"
  collect lab_gan net_g.safetensors metrics.json
  cp "$RUNS/lab_gan/gan/log.csv" "$OUT/lab_gan/log.csv" 2>/dev/null
fi

# The paper's recipe (configs/paper_psnr.yaml) on the lab data, for a fixed budget: no EMA
# (too few steps for decay 0.999 to matter), fp16 export, Set5 validation every 1000 iters.
train paper_psnr --config configs/paper_psnr.yaml --out "$RUNS/paper_psnr" \
  --set "data.train=[BSD68, SunHays80]" --set data.num_workers=8 \
  --set psnr.ema_decay=null --set "psnr.max_minutes=$(minutes ${PAPER_S:-200})" \
  --set logging.val_every=1000 --set logging.save_every=100000 \
  --set logging.export_dtype=float16 "${PAPER[@]}"
collect paper_psnr metrics.json
cp "$RUNS/paper_psnr/psnr/log.csv" "$OUT/paper_psnr/log.csv" 2>/dev/null

echo "=== results"
for name in lab_psnr lab_gan paper_psnr; do
  f="$OUT/$name/metrics.json"
  [ -f "$f" ] && $PY - "$f" "$name" <<'PYEOF'
import json, sys
m = json.load(open(sys.argv[1]))
for stage, s in m.items():
    print(f"{sys.argv[2]}/{stage}: {s['iterations']} it in {s['train_seconds_this_run']} s "
          f"({s['iters_per_second']} it/s, batch {s['global_batch']}, {s['device']}, amp {s['amp']}), "
          f"Set5 Y-PSNR {s['val_psnr_y']}")
PYEOF
done
find "$OUT" -type f -printf '%p %s\n'
