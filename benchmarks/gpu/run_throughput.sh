#!/usr/bin/env bash
# Issue 29's measurements on one GPU, in two device calls (each under the 10-minute limit), written under $OUT.
#   carry: .whl (cp312 wheels) and .assets (a copy of ../shared/assets), see benchmarks/gpu/README.md
#   usage: bash benchmarks/gpu/run_throughput.sh cache_and_b1     # call 1
#          LARGEST=11 bash benchmarks/gpu/run_throughput.sh largest_and_generate   # call 2
#          bash benchmarks/gpu/run_throughput.sh cache_b1_generate   # one call: cache check, compiled B=1 profiled, generate
# call 1 (cache_and_b1): `texkit warmup` of the reference-equivalent config (batch 1) into an empty compile
#   cache, then `texkit train` of the same config (3 steps: first step vs steady step), then the
#   reference-equivalent benchmark: eager and compiled batch-1 steps, FLOPs needed vs executed per view,
#   and a torch.profiler summary of the compiled step.
# call 2 (largest_and_generate): the compiled step at the largest batch that fits (profiled), then
#   textures per minute of `texkit generate --samples 8`, eager and compiled.
set -uo pipefail
source benchmarks/gpu/setup_device.sh || exit 1
export TEXKIT_COMPILE_CACHE_DIR=/tmp/texkit-compile PYTHONUNBUFFERED=1
began=$(date +%s)
stamp() { echo "== $(( $(date +%s) - began )) s: $*"; }
stamp "setup done"
python3 benchmarks/gpu/bench_scaling.py --prepare /tmp/sd15 || exit 1
stamp "random full-size SD 1.5 + ControlNet saved to /tmp/sd15"
for step in "$@"; do
  case $step in
    cache_and_b1)
      rm -rf /tmp/runs/ref /tmp/texkit-compile  # a machine still warm from an earlier call keeps /tmp (seen: call 3 met call 2's run folder)
      python3 benchmarks/gpu/reference_equivalent.py --write-config /tmp/ref.toml --model /tmp/sd15 --out-dir /tmp/runs/ref || exit 1
      { stamp "texkit warmup (empty compile cache)"
        timeout 300 texkit warmup /tmp/ref.toml; echo "warmup exit $?"
        stamp "compile cache: $(du -sh /tmp/texkit-compile | cut -f1)"
        stamp "texkit train, 3 steps, same config"
        timeout 200 texkit train /tmp/ref.toml --set training.steps=3; echo "train exit $?"
        stamp "train done"; } > "$OUT/cache.log" 2>&1
      grep -v "^\s*$" "$OUT/cache.log" | grep -iv "warn" | tail -12
      cp /tmp/runs/ref/metrics.jsonl "$OUT/train_metrics.jsonl" 2>/dev/null
      cp /tmp/runs/ref/versions.json "$OUT/train_versions.json" 2>/dev/null
      python3 -c "import json; [print('step', d['step'], round(d['step_seconds'], 2), 's') for d in map(json.loads, open('/tmp/runs/ref/metrics.jsonl'))]"
      stamp "reference-equivalent benchmark: eager + compiled B=1, view FLOPs, profile"
      timeout 330 python3 benchmarks/gpu/reference_equivalent.py --model /tmp/sd15 --compile off,on --view-flops --profile-at on@1 \
        --budget-seconds 300 > "$OUT/reference.json" 2> "$OUT/reference.err"
      grep -E "per sample|view_flops|error" "$OUT/reference.err" | tail -8
      stamp "done" ;;
    cache_b1_generate)
      # the single-call version (device time was short): cold warmup, a 3-step train, the compiled B=1
      # step profiled (the eager B=1 row and the FLOPs per view come from cache_and_b1), generate --samples 8
      rm -rf /tmp/runs/ref /tmp/texkit-compile  # a machine still warm from an earlier call keeps /tmp (seen: call 3 met call 2's run folder)
      python3 benchmarks/gpu/reference_equivalent.py --write-config /tmp/ref.toml --model /tmp/sd15 --out-dir /tmp/runs/ref || exit 1
      { stamp "texkit warmup (empty compile cache)"
        timeout 240 texkit warmup /tmp/ref.toml; echo "warmup exit $?"
        stamp "compile cache: $(du -sh /tmp/texkit-compile | cut -f1)"
        stamp "texkit train, 3 steps, same config"
        timeout 170 texkit train /tmp/ref.toml --set training.steps=3; echo "train exit $?"
        stamp "train done"; } > "$OUT/cache.log" 2>&1
      grep -E "^== |warmup:|exit|ready in|compile failed|Error" "$OUT/cache.log" | tail -14
      cp /tmp/runs/ref/metrics.jsonl "$OUT/train_metrics.jsonl" 2>/dev/null
      cp /tmp/runs/ref/versions.json "$OUT/train_versions.json" 2>/dev/null
      python3 -c "import json; [print('step', d['step'], round(d['step_seconds'], 2), 's') for d in map(json.loads, open('/tmp/runs/ref/metrics.jsonl'))]"
      stamp "compiled B=1 step, profiled"
      timeout 130 python3 benchmarks/gpu/reference_equivalent.py --model /tmp/sd15 --compile on --profile-at on@1 \
        --budget-seconds 120 > "$OUT/reference.json" 2> "$OUT/reference.err"
      grep -E "per sample|ready in|compile failed" "$OUT/reference.err" | tail -4
      stamp "generate --samples 8: eager, then compiled"
      timeout $(( 400 - ($(date +%s) - began) )) python3 benchmarks/gpu/bench_generate.py /tmp/ref.toml --samples 8 --compile off,on --repeats 1 \
        > "$OUT/generate.json" 2> "$OUT/generate.err"
      grep -E '^\{"compile' "$OUT/generate.err" | cut -c1-300
      stamp "done" ;;
    cache_short)
      # what fits 5 minutes: cold warmup, a 2-step train of the same config (first step vs steady), then
      # the compiled B=1 benchmark row (a third process on the cache) and its profile, if time is left
      rm -rf /tmp/runs/ref /tmp/texkit-compile  # a machine still warm from an earlier call keeps /tmp (seen: call 3 met call 2's run folder)
      python3 benchmarks/gpu/reference_equivalent.py --write-config /tmp/ref.toml --model /tmp/sd15 --out-dir /tmp/runs/ref || exit 1
      { stamp "texkit warmup (empty compile cache)"
        timeout 200 texkit warmup /tmp/ref.toml; echo "warmup exit $?"
        stamp "compile cache: $(du -sh /tmp/texkit-compile | cut -f1)"
        stamp "texkit train, 2 steps, same config"
        timeout 120 texkit train /tmp/ref.toml --set training.steps=2; echo "train exit $?"
        stamp "train done"; } > "$OUT/cache.log" 2>&1
      grep -E "^== |warmup:|exit|ready in|compile failed|Error" "$OUT/cache.log" | tail -14
      cp /tmp/runs/ref/metrics.jsonl "$OUT/train_metrics.jsonl" 2>/dev/null
      cp /tmp/runs/ref/versions.json "$OUT/train_versions.json" 2>/dev/null
      python3 -c "import json; [print('step', d['step'], round(d['step_seconds'], 2), 's') for d in map(json.loads, open('/tmp/runs/ref/metrics.jsonl'))]"
      stamp "compiled B=1 benchmark row, profiled"
      timeout $(( 275 - ($(date +%s) - began) )) python3 benchmarks/gpu/reference_equivalent.py --model /tmp/sd15 --compile on --profile-at on@1 \
        --budget-seconds 120 > "$OUT/reference.json" 2> "$OUT/reference.err"
      grep -E "per sample|ready in|compile failed" "$OUT/reference.err" | tail -4
      stamp "done" ;;
    largest_and_generate)
      largest=${LARGEST:-11}
      stamp "compiled step at batch $largest"
      timeout 380 python3 benchmarks/gpu/reference_equivalent.py --model /tmp/sd15 --compile on --batch-size "$largest" --view-flops \
        --profile-at "on@$largest" --budget-seconds 360 > "$OUT/largest.json" 2> "$OUT/largest.err"
      grep -E "per sample|view_flops|error" "$OUT/largest.err" | tail -5
      python3 benchmarks/gpu/reference_equivalent.py --write-config /tmp/ref.toml --model /tmp/sd15 --out-dir /tmp/runs/gen || exit 1
      stamp "generate --samples 8: eager, compiled"
      timeout 200 python3 benchmarks/gpu/bench_generate.py /tmp/ref.toml --samples 8 --compile off,on --repeats 1 > "$OUT/generate.json" 2> "$OUT/generate.err"
      grep -E '^\{"compile' "$OUT/generate.err"
      stamp "done" ;;
  esac
done
