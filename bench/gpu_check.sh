#!/usr/bin/env bash
# One prepared check of every CUDA path, for a short GPU lease (issue 21): at most 8 minutes on one GPU.
#
#   bench/gpu_check.sh          # GPU: the CUDA-vs-CPU tests, then bench/gpu_timing.py (writes "GPU" in docs/benchmarks.md)
#   bench/gpu_check.sh --cpu    # the same steps on the CPU (CI, under 5 minutes): the CUDA tests are collected and
#                               # skip; the timing runs every preset with tiny models; docs/ is not touched
#
# Steps: (a) the device (nvidia-smi, torch); on a GPU also a check that the needed packages import and a build
# of gsplat's and nerfacc's CUDA extensions (both JIT-compiled on first use, in parallel here, MAX_JOBS = all
# cores); (b) python -m pytest tests/test_cuda_paths.py; (c) bench/gpu_timing.py [--cpu], given the time that is
# left, its rows in order: the SD 2.1-base presets, 4d-zeroscope, 4d-animatediff, SDXL, IF; (d) a summary. The
# exit status is 1 when any step failed. Presets that the time budget leaves out (the last) are "not timed" rows
# in the table, not failures.
#
# Environment:
#   PYTHON            the interpreter (default: .venv/bin/python if present, else python3; in GPU mode the first of
#                     the two whose torch sees CUDA)
#   WHEELS            GPU mode: a folder of wheels installed with pip --no-index --no-deps into a private folder first,
#                     for a machine that has torch but not this project's packages; default .gpu/whl when it holds
#                     wheels. For the lent H200 image (Python 3.12, torch, transformers, peft, pytest already there), about
#                     20 MB: `pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
#                     --platform manylinux2014_x86_64 -d .gpu/whl diffusers==0.42.1 importlib_metadata gsplat==1.5.3
#                     nerfacc==0.5.3 kornia==0.9.0 kornia_rs` (gsplat and nerfacc compile their CUDA code on first use)
#   GPU_CHECK_BUDGET  seconds for the whole script (default 480 on a GPU, 290 with --cpu)
#   OUT               when set, gpu-timing.md, gpu_check.log and docs/benchmarks.md are copied there at the end
set -u
START=$(date +%s)
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
MODE=gpu
case "${1:-}" in
  --cpu) MODE=cpu ;;
  "") ;;
  -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
  *) echo "usage: bench/gpu_check.sh [--cpu]" >&2; exit 2 ;;
esac
if [ "$MODE" = gpu ]; then BUDGET=${GPU_CHECK_BUDGET:-480}; else BUDGET=${GPU_CHECK_BUDGET:-290}; fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dreamer-gpu-check.XXXXXX")
LOG="$WORK/gpu_check.log"
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!

elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( BUDGET - $(date +%s) + START )); }
FAILED=()
step() {  # step NAME COMMAND...: run it, record a failure
  local name=$1; shift
  echo "== $name (at $(elapsed) s, $(left) s left)"
  "$@"
  local rc=$?
  if [ $rc -eq 0 ]; then echo "-- $name: ok ($(elapsed) s)"; else echo "-- $name: FAILED (exit $rc, $(elapsed) s)"; FAILED+=("$name"); fi
  return 0
}

# --- the interpreter
if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
else
  CANDIDATES=()
  [ -x .venv/bin/python ] && CANDIDATES+=(.venv/bin/python)
  CANDIDATES+=(python3)
  PY=${CANDIDATES[0]}
  if [ "$MODE" = gpu ]; then
    for c in "${CANDIDATES[@]}"; do
      if "$c" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then PY=$c; break; fi
    done
  fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
# --cpu: one thread (tiny models; on shared cores two spinning threads ran the timing 5-15x slower)
[ "$MODE" = cpu ] && export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export DREAMER_CACHE="${DREAMER_CACHE:-$WORK/cache}"
if [ "$MODE" = gpu ]; then
  WHEELS=${WHEELS:-.gpu/whl}
  if compgen -G "$WHEELS/*.whl" >/dev/null; then
    echo "== installing the wheels in $WHEELS (no index, no dependencies) into $WORK/site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" "$WHEELS"/*.whl \
      || FAILED+=("wheels")
    export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  export MAX_JOBS=${MAX_JOBS:-$(nproc)}
fi
# a checkout without `pip install -e .` (a bare GPU machine): import the package from here
if ! "$PY" -c "import dreamer" >/dev/null 2>&1; then export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"; fi

# --- (a) the device
device_info() {
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || nvidia-smi
  else
    echo "nvidia-smi: not present"
  fi
  "$PY" -c "
import sys, torch
print('python', sys.version.split()[0], sys.executable)
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print('device', p.name, round(p.total_memory / 2**30), 'GiB')
elif '$MODE' == 'gpu':
    sys.exit('GPU mode but torch sees no CUDA device: run with --cpu, or set PYTHON to a CUDA build')
"
}
step "device" device_info

if [ "$MODE" = gpu ]; then
  preflight() {
    "$PY" -c "
import importlib, sys
missing = []
for name in ('diffusers', 'transformers', 'peft', 'gsplat', 'nerfacc', 'kornia', 'yaml', 'safetensors', 'pytest'):
    try:
        importlib.import_module(name)
    except Exception as exc:
        missing.append(f'{name} ({type(exc).__name__}: {exc})')
if missing:
    sys.exit('missing packages: ' + '; '.join(missing) + ' -- carry them as wheels (WHEELS=folder)')
print('packages: ok')
"
  }
  step "packages" preflight
  build_extensions() {  # both JIT builds at once; each is cached for the steps below
    local t=$(( $(left) - 180 ))
    [ $t -lt 60 ] && t=60
    timeout "$t" "$PY" -c "from gsplat.cuda._backend import _C; assert _C is not None, 'gsplat: no CUDA toolkit'; print('gsplat CUDA: ok')" &
    local g=$!
    timeout "$t" "$PY" -c "from nerfacc.cuda._backend import _C; assert _C is not None, 'nerfacc: no CUDA toolkit'; print('nerfacc CUDA: ok')" &
    local n=$!
    local rc=0
    wait $g || rc=1
    wait $n || rc=1
    return $rc
  }
  step "CUDA extensions (gsplat, nerfacc)" build_extensions
fi

# --- (b) the CUDA tests (on the CPU they are collected and skip)
run_tests() {
  local t=$(( $(left) - 60 ))
  [ $t -gt 240 ] && t=240
  [ $t -lt 60 ] && t=60
  timeout "$t" "$PY" -m pytest tests/test_cuda_paths.py -q -rs -p no:cacheprovider
}
step "CUDA tests (tests/test_cuda_paths.py)" run_tests

# --- (c) timing of every paper preset
run_timing() {
  local l
  l=$(left)
  local budget=$(( l - 15 ))
  [ $budget -lt 30 ] && budget=30
  local args=(--workdir "$WORK" --budget "$budget")
  [ "$MODE" = cpu ] && args+=(--cpu --reserve 5)
  timeout $(( l > 45 ? l : 45 )) "$PY" bench/gpu_timing.py "${args[@]}"  # the budget, never past it
}
step "timing (bench/gpu_timing.py)" run_timing

# --- (d) summary
rm -rf "$WORK/models" "$WORK/runs" "$WORK/site"
echo "== gpu_check ($MODE): $(elapsed) s of a $BUDGET s budget; log and table in $WORK"
if [ $(elapsed) -gt "$BUDGET" ]; then echo "gpu_check: over the $BUDGET s budget"; fi
STATUS=0
if [ ${#FAILED[@]} -gt 0 ]; then echo "gpu_check: FAILED: ${FAILED[*]}"; STATUS=1; else echo "gpu_check: all steps passed"; fi
exec 1>&- 2>&-  # close the pipe to tee and let it finish writing the log before it is copied
wait "$TEE_PID" 2>/dev/null
if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
  cp "$LOG" "$OUT/" 2>/dev/null
  cp "$WORK/gpu-timing.md" "$OUT/" 2>/dev/null
  [ "$MODE" = gpu ] && cp docs/benchmarks.md "$OUT/" 2>/dev/null
fi
exit $STATUS
