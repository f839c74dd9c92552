#!/usr/bin/env bash
# The GPU recipe of the amortised generator (issue 28): one generator for the tiny prior's 158 trained
# colour × shape pairs, trained with ASD at a larger size than the 2-core runs, then evaluated on its
# own prompts, the 18 held-out pairs and paraphrases (bench/amortized_arms.py --evaluate).
#
# Sized for about 8 minutes on one H100 (STEPS × BATCH renders; the step rate is printed in the log, so
# a first run tells what STEPS fits); GPUS=N trains on N GPUs with torchrun (nccl, DDP; BATCH is the
# global batch, a multiple of N). A timeout keeps the last checkpoint: run again with RESUME=1.
# Offline machine set-up as for bench/tiny_prior_gpu.sh (.gpu/whl and .gpu/minilm carried along).
# Results: $OUT/generator.tar (generator.pt + metrics.jsonl), $OUT/eval.json, $OUT/log.txt.
#
# Usage (from the repo root): OUT=/tmp/gen-gpu bench/amortized_gpu.sh
#   DEVICE=cpu STEPS=4 BATCH=2 EVAL=2 tries the whole script on a CPU machine.
set -u
OUT=${OUT:-/tmp/amortized-gpu}
RUN=${RUN:-/tmp/amortized-gpu-run}
DEVICE=${DEVICE:-cuda}
GPUS=${GPUS:-1}
STEPS=${STEPS:-3000}
BATCH=${BATCH:-32}
GUIDANCE=${GUIDANCE:-asd}
EVAL=${EVAL:-32}
RESUME=${RESUME:-0}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1

. "$(dirname "$0")/gpu_offline_env.sh"

# Larger than the 2-core defaults: 64² planes of 16 features, wider convs and decoder, 64 px renders.
SIZE=(generator.plane_resolution=64 generator.seed_resolution=8 generator.channels=64 generator.plane_features=16
      generator.mlp_hidden=64 generator.mapping_width=256 resolution=64)
[ "$DEVICE" = cpu ] && SIZE=(resolution=32)
ARGS=(--out "$RUN" --guidance "$GUIDANCE" --prompts vocabulary --steps "$STEPS" "device=$DEVICE"
      "train.batch_size=$BATCH" train.log_every=20 train.checkpoint_every=200 regularizers.sparsity=100 "${SIZE[@]}")
[ "$RESUME" = 1 ] && ARGS=(--resume "${ARGS[@]}")
START=$(date +%s)
if [ "$GPUS" -gt 1 ]; then
  $PY -m torch.distributed.run --standalone --nproc_per_node="$GPUS" -m dreamer.amortized.train "${ARGS[@]}" --quiet || exit 1
else
  $PY -m dreamer amortized train "${ARGS[@]}" --quiet || exit 1
fi
SECONDS_TRAINED=$(($(date +%s) - START))
echo "== trained $STEPS steps × $BATCH prompts in $SECONDS_TRAINED s ($(awk "BEGIN {print $STEPS / ($SECONDS_TRAINED + 0.001)}") steps/s)"
tail -n 1 "$RUN/metrics.jsonl"

echo "== evaluate"
$PY bench/amortized_arms.py --evaluate "$RUN" --eval-prompts "$EVAL" --device "$DEVICE" || exit 1
cp "$RUN/eval.json" "$OUT/eval.json"
tar -cf "$OUT/generator.tar" -C "$RUN" generator.pt metrics.jsonl
echo "== done in $(($(date +%s) - START)) s"
