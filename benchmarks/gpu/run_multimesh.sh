#!/usr/bin/env bash
# Issue 27's GPU measurement in one device call: samples/s of a 4-mesh collection run vs the one-mesh
# run at the same batch, one mesh per batch vs mixed-mesh batches (benchmarks/gpu/bench_multimesh.py).
#
# Prepared here (all git-ignored, under .whl/ of the worktree):
#   .whl/*.whl      cp312 wheels of what the device lacks (diffusers, trimesh, pydantic, pydantic-core,
#                   annotated-types, typing-inspection, typing-extensions, importlib-metadata, xatlas)
#                   and wheels of texkit and the plugins it needs, built from this tree:
#                   .venv/bin/python -m pip wheel --no-deps --no-build-isolation -w .whl . plugins/texkit-diffusers \
#                       plugins/texkit-torch-render plugins/texkit-rewards-geometry
#   .whl/assets/    a copy of ../shared/assets (cow, rabbit, balloon)
# From the lead's checkout (the device copies it), with the worktree's folders carried:
#   run(command="cd .wt/multimesh && bash benchmarks/gpu/run_multimesh.sh", carry=[".wt/multimesh/.whl", ".wt/multimesh/benchmarks"])
# Writes $OUT/multimesh.json after every measurement (a cut-off call keeps what was measured), $OUT/multimesh.log.
set -uo pipefail
began=$(date +%s)
export PYTHONUNBUFFERED=1 OUT=${OUT:-/tmp/texkit-out}
mkdir -p "$OUT"
rm -rf /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH TEXKIT_ASSETS=$PWD/.whl/assets
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.csv"
echo "== $(( $(date +%s) - began )) s: installed"
timeout ${BENCH_TIMEOUT:-430} python3 benchmarks/gpu/bench_multimesh.py --batch-sizes "${BATCHES:-4,8}" --mixed-batches "${MIXED:-4}" \
  --steps 4 --paint-views 2 --texture-size 512 --budget-seconds "${BUDGET:-400}" --out "$OUT/multimesh.json" 2>&1 \
  | grep -v "^ " | tee "$OUT/multimesh.log" | tail -40
echo "== $(( $(date +%s) - began )) s: done"
