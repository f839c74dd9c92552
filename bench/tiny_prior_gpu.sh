#!/usr/bin/env bash
# Train several tiny-prior candidates side by side on one offline CUDA machine, for a fixed wall time.
#
# The machine has python3 with torch but no package index and no hub: the repo travels with
# .gpu/whl (diffusers, trimesh, importlib_metadata wheels) and .gpu/minilm (the vocabulary subset of
# all-MiniLM-L6-v2 written by `python -m dreamer.priors.tiny.minilm_subset .gpu/minilm`). The wheels, for the
# machine's Python 3.12: `pip download --no-deps --only-binary=:all: --python-version 3.12 -d .gpu/whl
# diffusers==0.42.1 trimesh==5.2.0 importlib_metadata==8.7.0`; name `.gpu` in the run's carried paths.
# Each candidate first runs PROBE steps with all candidates at once, which measures its step rate
# under that sharing; then it is resumed to the step count that fills the time left before
# TRAIN_UNTIL seconds, with the usual cosine tail over its last 45 %. Resuming to a larger step count
# gives the same run as asking for that count from the start (the lr is constant until the tail;
# the checkpoint holds the generator), so each candidate's TRAINING.md command reproduces it.
# Results: $OUT/<name>.tar (the out folder without checkpoints), $OUT/log.txt, and on CUDA
# $OUT/cuda-tests.txt (the CUDA-only tests that need no compiled extension, run alongside).
#
# Usage (from the repo root): OUT=/tmp/gpu bench/tiny_prior_gpu.sh
#   TRAIN_UNTIL (default 470) seconds after the start when training must be done; PROBE (default 150);
#   DEVICE=cpu PROBE=6 LOG_EVERY=2 TRAIN_UNTIL=200 tries the whole script on a CPU machine.
set -u
START=$(date +%s)
OUT=${OUT:-/tmp/tiny-prior-gpu}
TRAIN_UNTIL=${TRAIN_UNTIL:-470}
PROBE=${PROBE:-150}
THREADS=${THREADS:-3}
DEVICE=${DEVICE:-cuda}
LOG_EVERY=${LOG_EVERY:-50}
RUNS=${RUNS:-/tmp/tiny-prior-runs}
mkdir -p "$OUT" "$RUNS"
exec > >(tee -a "$OUT/log.txt") 2>&1

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" DREAMER_MINILM="$PWD/.gpu/minilm" DREAMER_CACHE="${DREAMER_CACHE:-/tmp/dreamer-cache}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'cuda', torch.cuda.is_available())"

# name | batch size | config overrides (fixed at the start; not resumable)
CANDIDATES=(
  "xattn-b256|256|lr=5e-4"
  "pooled-b256|256|unet.pooled_text=true lr=5e-4"
  "xattn-b512|512|lr=6e-4"
  "pooled-b512|512|unet.pooled_text=true lr=6e-4"
)

echo "== view bank ($(($(date +%s) - START)) s)"
python3 -c "
import torch; torch.set_num_threads(16)
from dreamer.priors.tiny.data import TinyDataConfig
from dreamer.priors.tiny.views import load_or_build_bank
print('bank views:', len(load_or_build_bank(TinyDataConfig())))" || exit 1

echo "== probe: $PROBE steps each, all at once ($(($(date +%s) - START)) s)"
pids=()  # a plain `wait` would also wait for the log's tee
for c in "${CANDIDATES[@]}"; do
  IFS='|' read -r name batch overrides <<<"$c"
  # shellcheck disable=SC2086
  python3 -m dreamer prior train --out "$RUNS/$name" --steps "$PROBE" --batch-size "$batch" --device "$DEVICE" \
    --threads "$THREADS" --fresh --quiet log_every="$LOG_EVERY" $overrides >"$RUNS/$name.probe.log" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
for c in "${CANDIDATES[@]}"; do IFS='|' read -r name _ <<<"$c"; tail -n 2 "$RUNS/$name.probe.log"; done

LEFT=$((START + TRAIN_UNTIL - $(date +%s) - 25))  # 25 s: the resumed runs' set-up and final write
echo "== train: $LEFT s of steps each ($(($(date +%s) - START)) s)"
pids=()
for c in "${CANDIDATES[@]}"; do
  IFS='|' read -r name batch _ <<<"$c"
  # steps per second between the probe's first and last log records, 15 % kept in reserve for the sharing
  steps=$(python3 -c "
import json
h = [json.loads(l) for l in open('$RUNS/$name/loss.jsonl')]
rate = (h[-1]['step'] - h[0]['step']) / (h[-1]['elapsed'] - h[0]['elapsed'])
print(max($PROBE + 1, int(0.85 * rate * $LEFT) // 100 * 100))")
  decay=$((steps * 55 / 100))
  echo "$name: $steps steps, decay from $decay"
  python3 -m dreamer prior train --out "$RUNS/$name" --steps "$steps" --decay-from "$decay" --batch-size "$batch" \
    --device "$DEVICE" --threads "$THREADS" --quiet >"$RUNS/$name.train.log" 2>&1 &
  pids+=($!)
done
if [ "$DEVICE" = cuda ]; then  # the CUDA-only tests, alongside (the candidates leave the GPU mostly idle)
  python3 -m pytest -p no:cacheprovider tests/test_prior_stable_diffusion.py tests/test_nerf.py \
    -k "cuda_auto_dtype or (cuda_render_matches_cpu and torch)" -rA >"$OUT/cuda-tests.txt" 2>&1 &
  pids+=($!)
fi
wait "${pids[@]}"
echo "== done ($(($(date +%s) - START)) s)"
for c in "${CANDIDATES[@]}"; do
  IFS='|' read -r name _ <<<"$c"
  tail -n 3 "$RUNS/$name.train.log"
  cp "$RUNS/$name.probe.log" "$RUNS/$name.train.log" "$RUNS/$name/"
  tar -C "$RUNS" --exclude=checkpoints -cf "$OUT/$name.tar" "$name"
done
echo "== packed ($(($(date +%s) - START)) s)"
