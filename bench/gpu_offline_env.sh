# Sourced by the GPU recipes (bench/tiny_mv_gpu.sh, bench/amortized_gpu.sh): the offline machine's set-up.
# When the repo travels with .gpu/whl (wheels for the machine's Python) and .gpu/minilm (the text
# encoder's vocabulary subset), install the wheels beside the machine's torch and point dreamer at them.
# Sets PY (the Python to run, default python3) and prints the card.
if [ -d .gpu/whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD" DREAMER_MINILM="$PWD/.gpu/minilm"
fi
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
