#!/usr/bin/env bash
# The GPU recipe of the lifted `tiny-3d` prior (issue 27): bench/tiny_mv_gpu.sh with MODEL=tiny-3d, trained
# from scratch as its CPU recipe is, at a larger batch and the CPU recipe's lr (1e-3; the loss is x̂0 MSE
# of a rendered volume, which took the CPU recipe's lr without instability at batch 32).
# Usage (from the repo root): OUT=/tmp/gpu bench/tiny_3d_gpu.sh
#   DEVICE=cpu PROBE=4 TRAIN_UNTIL=150 BATCH=8 SEEDS=1 tries the whole script on a CPU machine.
MODEL=tiny-3d LR=${LR:-1e-3} BATCH=${BATCH:-128} exec "$(dirname "$0")/tiny_mv_gpu.sh"
