#!/usr/bin/env bash
# One command on the GPU machine: install the carried wheels and texkit, then run the nvdiffrast
# parity tests and the GPU benchmarks, writing logs and JSON under $OUT.
#   carry: .whl (cp312 wheels, see docs/performance.md) and .assets (copy of ../shared/assets)
#   usage: [TRAINING_ARGS="--paths front_long"] bash benchmarks/gpu/run_on_device.sh [parity] [render] [generator] [training]
set -uo pipefail
source benchmarks/gpu/setup_device.sh || exit 1
steps=${*:-parity render generator}
for step in $steps; do
  case $step in
    parity) python3 -m pytest -q -p no:cacheprovider -s plugins/texkit-nvdiffrast/tests tests/render tests/texturing 2>&1 | tee "$OUT/parity.log" | tail -15 ;;
    render) python3 benchmarks/gpu/bench_render.py > "$OUT/render.json" 2> "$OUT/render.err"; tail -3 "$OUT/render.err"; cat "$OUT/render.json" ;;
    generator) python3 benchmarks/gpu/bench_generator.py > "$OUT/generator.json" 2> "$OUT/generator.err"; tail -3 "$OUT/generator.err"; cat "$OUT/generator.json" ;;
    training) python3 benchmarks/gpu/bench_training.py ${TRAINING_ARGS:-} > "$OUT/training.json" 2> "$OUT/training.err"; tail -3 "$OUT/training.err"; cat "$OUT/training.json" ;;
  esac
done
