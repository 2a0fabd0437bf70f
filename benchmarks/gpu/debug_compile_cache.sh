#!/usr/bin/env bash
# Why a second process misses the compile cache on the GPU (issue 29, call 5): the tiny model on CUDA
# with compile = "on", `texkit warmup` twice and `texkit train` once on one cache folder, with torch's
# cache-key logs (AOTAutograd and FX-graph cache) in $OUT/{warmup1,warmup2,train}.log.
#   carry: .whl and .assets (see benchmarks/gpu/README.md)
set -uo pipefail
source benchmarks/gpu/setup_device.sh || exit 1
export TEXKIT_COMPILE_CACHE_DIR=/tmp/texkit-compile-tiny PYTHONUNBUFFERED=1
rm -rf /tmp/texkit-compile-tiny /tmp/runs/tiny
cat > /tmp/tiny.toml <<'TOML'
device = "cuda"
[mesh]
path = "demo"
[prompts]
text = ["a glazed ceramic gourd"]
[generator]
name = "tiny"
[generator.options]
steps = 3
compile = "on"
[cameras.paint]
elevation = [-20, -20]
azimuth = [0, 180]
[cameras.reward]
elevation = [-20, -20]
azimuth = [90, -90]
[texture]
size = 128
render_size = 128
[rewards.curvature_color]
weight = 1.0
[output]
dir = "/tmp/runs/tiny"
TOML
export TORCH_LOGS="+torch._functorch._aot_autograd.autograd_cache,+torch._inductor.codecache"
for name in warmup1 warmup2; do
  timeout 150 texkit warmup /tmp/tiny.toml > "$OUT/$name.log" 2>&1; echo "$name exit $?"
  grep -E "^warmup:|ready in" "$OUT/$name.log"
done
timeout 150 texkit train /tmp/tiny.toml --set training.steps=2 > "$OUT/train.log" 2>&1; echo "train exit $?"
grep -E "ready in" "$OUT/train.log"
for f in warmup1 warmup2 train; do grep -ciE "cache (hit|miss|bypass)" "$OUT/$f.log"; done
grep -hiE "bypass|cache miss|cache hit" "$OUT"/*.log | cut -c1-300 | sort | uniq -c | head -30
