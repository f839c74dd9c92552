#!/usr/bin/env bash
# The GPU recipe of a multi-view tiny prior (MODEL: `tiny-mv`, the default, or `tiny-3d` through
# bench/tiny_3d_gpu.sh): train, then measure, in under 10 minutes on one GPU.
#
# Offline machine set-up as for bench/tiny_prior_gpu.sh: the repo travels with .gpu/whl (diffusers,
# trimesh, importlib_metadata wheels for the machine's Python) and .gpu/minilm (the vocabulary subset of
# all-MiniLM-L6-v2, `python -m dreamer.priors.tiny.minilm_subset .gpu/minilm`); name `.gpu` in the
# run's carried paths. Training starts as the model's CPU recipe does (tiny-mv from the shipped tiny
# weights, the recipe's init_from; tiny-3d from scratch), at batch
# BATCH (sets of 4 views × BATCH/4) and LR, with PROBE steps to measure the step rate, then resumed to
# the step count that ends by TRAIN_UNTIL seconds (cosine tail over the last 45 %). Then the
# set-consistency and camera-conditioning benches run against the result (not written to the docs:
# copy the printed tables by hand, naming the card).
# Results: $OUT/$MODEL.tar (the weights folder without checkpoints), $OUT/log.txt.
#
# Usage (from the repo root): OUT=/tmp/gpu bench/tiny_mv_gpu.sh
#   DEVICE=cpu PROBE=4 TRAIN_UNTIL=120 BATCH=8 SEEDS=1 tries the whole script on a CPU machine.
set -u
START=$(date +%s)
MODEL=${MODEL:-tiny-mv}
OUT=${OUT:-/tmp/$MODEL-gpu}
TRAIN_UNTIL=${TRAIN_UNTIL:-420}
PROBE=${PROBE:-100}
BATCH=${BATCH:-256}
LR=${LR:-4e-4}
DEVICE=${DEVICE:-cuda}
SEEDS=${SEEDS:-4}
RUN=${RUN:-/tmp/$MODEL-run}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1

. "$(dirname "$0")/gpu_offline_env.sh"

echo "== probe: $PROBE steps ($(($(date +%s) - START)) s)"
$PY -m dreamer prior train --model "$MODEL" --out "$RUN" --steps "$PROBE" --batch-size "$BATCH" --device "$DEVICE" \
  --fresh --quiet log_every=10 "lr=$LR" warmup_steps=20 decay_start=null || exit 1  # the probe: constant lr
LEFT=$((START + TRAIN_UNTIL - $(date +%s) - 20))
steps=$($PY -c "
import json
h = [json.loads(l) for l in open('$RUN/loss.jsonl')]
rate = (h[-1]['step'] - h[0]['step']) / max(h[-1]['elapsed'] - h[0]['elapsed'], 1e-6)
print(max($PROBE + 1, int(0.9 * rate * $LEFT)))")
decay=$((steps * 55 / 100))
echo "== train to $steps steps, decay from $decay ($(($(date +%s) - START)) s)"
$PY -m dreamer prior train --model "$MODEL" --out "$RUN" --steps "$steps" --decay-from "$decay" --batch-size "$BATCH" \
  --device "$DEVICE" --quiet || exit 1
tar -C "$(dirname "$RUN")" --exclude checkpoints -cf "$OUT/$MODEL.tar" "$(basename "$RUN")"

echo "== measure ($(($(date +%s) - START)) s)"
$PY bench/set_consistency.py --priors "$MODEL" tiny --seeds "$SEEDS" --weights "$RUN" --sheet "$OUT/sets.png"
$PY bench/camera_conditioning.py --priors "$MODEL" tiny reference --weights "$RUN" --draws 8
echo "== done ($(($(date +%s) - START)) s)"
