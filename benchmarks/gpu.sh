#!/usr/bin/env bash
# The benchmark table on a CUDA machine, plus a bf16 matmul peak and BERT-large-sized step times.
#   On a lent GPU machine (from the repo root):  bash benchmarks/gpu.sh
#   Here, on CPU, to test its logic:             bash benchmarks/gpu.sh --dry-run
# Nothing can be downloaded there: missing Python packages travel as wheels in .whl/ (see the device
# tool's README); they are installed into /tmp/site before the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 LNFT_PROGRESS=0 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

if [ "${1:-}" = "--dry-run" ]; then
  shift
  PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
  "$PY" benchmarks/masked_run.py --device cpu --samples 16
  exec "$PY" benchmarks/run.py --tiny --device cpu --gpu-extras --dry-run --skip reports "$@"
fi

if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/masked_run.py --device cuda  # masks applied on the GPU (issue 9)
python3 benchmarks/run.py --device cuda --gpu-extras --skip reports ${OUT:+--json "$OUT/bench-gpu.json"} "$@"
