#!/usr/bin/env bash
# Issue 29's measurements on one GPU (each step fits one 10-minute device call), written under $OUT.
#   carry: .whl (cp312 wheels) and .assets (a copy of ../shared/assets), see benchmarks/gpu/README.md
#   usage: bash benchmarks/gpu/run_throughput.sh STEP
# STEP:
#   cache_and_b1       `texkit warmup` of the reference-equivalent config (batch 1) into an empty compile
#                      cache, `texkit train` of it (3 steps: first step vs steady), then the reference-
#                      equivalent benchmark: eager and compiled B=1 steps, FLOPs needed vs executed per
#                      view, a torch.profiler summary of the compiled step        (ran as call 1, commit c86d115)
#   cache_b1_generate  the cache check, the compiled B=1 step profiled, generate --samples 8
#                                                                                  (ran as call 2, commit a94ca83)
#   cache_short        the cache check with a 2-step train, then the compiled B=1 row (about 5 minutes)
#                                                                                  (ran as calls 3 and 4)
#   cache_fixed        after call 5 (benchmarks/gpu/debug_compile_cache.sh) found why call 3's second process
#                      compiled again (the FX-graph cache bypassed the checkpointed graph; and each pattern of
#                      inputs needing grad compiled its own graph): the cache check with a 3-step train and
#                      torch's cache log lines, then generate --samples 8 eager and compiled  (call 6)
#   largest_and_generate  LARGEST=11: the compiled step at the largest batch that fits, profiled; then
#                      textures per minute of `texkit generate --samples 8`, eager and compiled (not run yet)
#   profiles           LARGEST=11: the compiled step profiled at batch 1 and at the largest batch (op families,
#                      phases, busy time, host gaps), no generate; BATCHES=16 profiles batch 16 alone;
#                      MEMORY_FORMAT=channels_last profiles that layout                   (call 8: BATCHES=1,11)
#   layout             eager steps at batch ${LAYOUT_BATCH:-8}, convolution weights contiguous vs channels-last (+ cuDNN's
#                      algorithm search), same process, each layout warmed up (generator option memory_format)
#   layout_compiled    the same with compile on (channels-last also forces Inductor's channels-last layout; each
#                      layout compiles its own graph: about 4 minutes each at batch 8)
#   grads              compiled vs eager gradients on this GPU (benchmarks/gpu/check_compiled_grads.py; on the CPU,
#                      Inductor's layout optimisation gives a zero gradient through the tiny UNet's first up block);
#                      MEMORY_FORMAT=channels_last checks the layout Inductor is forced into then; FULL_SIZE=1 also
#                      checks the full-size UNet + ControlNet (fp32, UNet checkpointing on, a few minutes; GRADS_UNET_CKPT=off:
#                      with it off, the setting b1_levers times)   (call 9: grads)
#   PRECOMPILE=1 (any cache_* step): warmup and train with the generator option precompile (Dynamo's trace saved too)
#   cache_precompile   cache check (2-step train) with PRECOMPILE=1; SHORT=1 for a call with less than 600 s left
#   aot                the compiled training call saved whole with torch.compile(...).aot_compile and loaded by a
#                      second process (benchmarks/gpu/check_aot_compile.py): tiny model, then full-size fp16 (AOT_TINY_ONLY=1: tiny only)
#   graphed            hand-captured CUDA graphs per denoising step of a batch-1 view vs the compiled call
#                      (benchmarks/gpu/check_graphed_view.py, full-size fp16, time left in the call)
#   b1_levers          the compiled B=1 step with UNet checkpointing off, Inductor's Python wrapper vs its C++ wrapper
#                      (generator option cpp_wrapper); UNET_CKPT=on,off CPP=off: UNet checkpointing on vs off instead
#   cudagraphs         (calls 9 and 10, commit d11514b; the generator option cuda_graphs it ran was removed after them:
#                      CUDA Graph Trees failed under reentrant view checkpointing and could not replay the denoising
#                      loop's repeated calls before the backward pass, see docs/performance.md)
# benchmarks/gpu/collect_throughput.py reads the committed outputs (benchmarks/results/h100_2026-12-07_issue29).
set -uo pipefail
source benchmarks/gpu/setup_device.sh || exit 1
export TEXKIT_COMPILE_CACHE_DIR=/tmp/texkit-compile PYTHONUNBUFFERED=1
began=$(date +%s)
stamp() { echo "== $(( $(date +%s) - began )) s: $*"; }
stamp "setup done"
python3 benchmarks/gpu/bench_scaling.py --prepare /tmp/sd15 || exit 1
stamp "random full-size SD 1.5 + ControlNet saved to /tmp/sd15"
# cold `texkit warmup` of the reference-equivalent config, then `texkit train` of it on the same cache:
#   cache_check TRAIN_STEPS WARMUP_TIMEOUT TRAIN_TIMEOUT   (log in $OUT/cache.log, metrics and record copied)
cache_check() {
  rm -rf /tmp/runs/ref /tmp/texkit-compile  # a machine still warm from an earlier call keeps /tmp (seen: call 3 met call 2's run folder)
  python3 benchmarks/gpu/reference_equivalent.py --write-config /tmp/ref.toml --model /tmp/sd15 --out-dir /tmp/runs/ref || exit 1
  { stamp "texkit warmup (empty compile cache)"
    timeout "$2" texkit warmup /tmp/ref.toml ${PRECOMPILE:+--set generator.options.precompile=true}; echo "warmup exit $?"
    stamp "compile cache: $(du -sh /tmp/texkit-compile | cut -f1)"
    stamp "texkit train, $1 steps, same config"
    timeout "$3" texkit train /tmp/ref.toml --set training.steps="$1" ${PRECOMPILE:+--set generator.options.precompile=true}; echo "train exit $?"
    stamp "train done"; } > "$OUT/cache.log" 2>&1
  grep -E "^== |warmup:|exit|ready in|compile failed|Error" "$OUT/cache.log" | tail -14
  cp /tmp/runs/ref/metrics.jsonl "$OUT/train_metrics.jsonl" 2>/dev/null
  cp /tmp/runs/ref/versions.json "$OUT/train_versions.json" 2>/dev/null
  python3 -c "import json; [print('step', d['step'], round(d['step_seconds'], 2), 's') for d in map(json.loads, open('/tmp/runs/ref/metrics.jsonl'))]"
}

for step in "$@"; do
  case $step in
    cache_and_b1)
      cache_check 3 300 200
      stamp "reference-equivalent benchmark: eager + compiled B=1, view FLOPs, profile"
      timeout 330 python3 benchmarks/gpu/reference_equivalent.py --model /tmp/sd15 --compile off,on --view-flops --profile-at on@1 \
        --budget-seconds 300 > "$OUT/reference.json" 2> "$OUT/reference.err"
      grep -E "per sample|view_flops|error" "$OUT/reference.err" | tail -8
      stamp "done" ;;
    cache_b1_generate)
      # one call: the cache check, the compiled B=1 step profiled (the eager B=1 row and the FLOPs per
      # view come from cache_and_b1), generate --samples 8
      cache_check 3 240 170
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
      # what fits 5 minutes: the cache check with a 2-step train (first step vs steady), then the compiled
      # B=1 benchmark row (a third process on the cache) and its profile, if time is left
      cache_check 2 200 120
      stamp "compiled B=1 benchmark row, profiled"
      timeout $(( 275 - ($(date +%s) - began) )) python3 benchmarks/gpu/reference_equivalent.py --model /tmp/sd15 --compile on --profile-at on@1 \
        --budget-seconds 120 > "$OUT/reference.json" 2> "$OUT/reference.err"
      grep -E "per sample|ready in|compile failed" "$OUT/reference.err" | tail -4
      stamp "done" ;;
    cache_fixed)
      export TORCH_LOGS="torch._functorch._aot_autograd.autograd_cache,torch._inductor.codecache,recompiles"
      cache_check 3 200 170
      grep -aE "cache (hit|miss)|Bypassing|Recompiling|triggered by" "$OUT/cache.log" | sed "s/^.*\] //" | cut -c1-160 | sort | uniq -c | sort -rn | head -12
      unset TORCH_LOGS
      python3 benchmarks/gpu/reference_equivalent.py --write-config /tmp/ref.toml --model /tmp/sd15 --out-dir /tmp/runs/gen || exit 1
      stamp "generate --samples 8: eager, compiled"
      timeout $(( 540 - ($(date +%s) - began) )) python3 benchmarks/gpu/bench_generate.py /tmp/ref.toml --samples 8 --compile off,on --repeats 1 > "$OUT/generate.json" 2> "$OUT/generate.err"
      grep -E '^\{"compile' "$OUT/generate.err" | cut -c1-300
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
    profiles)
      batches=${BATCHES:-1,${LARGEST:-11}}
      stamp "compiled steps at batch $batches, each profiled"
      timeout $(( 570 - ($(date +%s) - began) )) python3 benchmarks/gpu/reference_equivalent.py --model /tmp/sd15 --compile on --batch-size "$batches" --memory-format "${MEMORY_FORMAT:-contiguous}" \
        --view-flops --profile-at "$(echo "$batches" | sed 's/\([0-9]*\)/on@\1/g')" --budget-seconds $(( 550 - ($(date +%s) - began) )) > "$OUT/profiles.json" 2> "$OUT/profiles.err"
      grep -E "per sample|ready in|compile failed|error" "$OUT/profiles.err" | tail -6
      stamp "done" ;;
    grads)
      stamp "compiled vs eager gradients (tiny model, fp32, memory_format ${MEMORY_FORMAT:-contiguous})"
      timeout 240 python3 benchmarks/gpu/check_compiled_grads.py --device cuda --memory-format "${MEMORY_FORMAT:-contiguous}" > "$OUT/grads.jsonl" 2> "$OUT/grads.err"
      [ -n "${FULL_SIZE:-}" ] && timeout 360 python3 benchmarks/gpu/check_compiled_grads.py --device cuda --model /tmp/sd15 --checkpointing "${GRADS_UNET_CKPT:-on}" \
        --memory-format "${MEMORY_FORMAT:-contiguous}" >> "$OUT/grads.jsonl" 2>> "$OUT/grads.err"
      cat "$OUT/grads.jsonl"; grep -E "Error" "$OUT/grads.err" | tail -3
      stamp "done" ;;
    cache_precompile)
      # the cache check with the generator option precompile: warmup saves the whole training call (Dynamo's
      # trace included), the 2-step train loads it; the first step against the steady one
      export PRECOMPILE=1
      if [ -n "${SHORT:-}" ]; then cache_check 2 220 140; else cache_check 2 300 200; fi
      grep -aE "precompile|whole call|ready in" "$OUT/cache.log" | cut -c1-400 | head -8
      stamp "done" ;;
    aot)
      stamp "aot_compile: tiny model, save then load in a new process"
      timeout 200 python3 benchmarks/gpu/check_aot_compile.py save --artifact /tmp/aot_tiny.bin > "$OUT/aot.jsonl" 2> "$OUT/aot.err"
      timeout 100 python3 benchmarks/gpu/check_aot_compile.py load --artifact /tmp/aot_tiny.bin >> "$OUT/aot.jsonl" 2>> "$OUT/aot.err"
      if [ -z "${AOT_TINY_ONLY:-}" ] && grep -q '"load_seconds"' "$OUT/aot.jsonl" && ! grep -q '"error"' "$OUT/aot.jsonl"; then
        stamp "aot_compile: full-size, save then load"
        timeout 280 python3 benchmarks/gpu/check_aot_compile.py save --model /tmp/sd15 --artifact /tmp/aot_full.bin >> "$OUT/aot.jsonl" 2>> "$OUT/aot.err"
        timeout 90 python3 benchmarks/gpu/check_aot_compile.py load --model /tmp/sd15 --artifact /tmp/aot_full.bin >> "$OUT/aot.jsonl" 2>> "$OUT/aot.err"
      fi
      cut -c1-700 "$OUT/aot.jsonl"; grep -E "Error" "$OUT/aot.err" | tail -3
      stamp "done" ;;
    graphed)
      stamp "one batch-1 view: compiled, compiled + reentrant view checkpointing, graphed per step"
      timeout $(( 585 - ($(date +%s) - began) )) python3 benchmarks/gpu/check_graphed_view.py --model /tmp/sd15 --repeats 2 \
        --memory-format "${MEMORY_FORMAT:-contiguous}" > "$OUT/graphed.jsonl" 2> "$OUT/graphed.err"
      cut -c1-600 "$OUT/graphed.jsonl"; grep -E "Error" "$OUT/graphed.err" | tail -3
      stamp "done" ;;
    b1_levers)
      # the compiled batch-1 reference-equivalent step with UNet checkpointing off (per-view checkpointing stays on:
      # one recomputed UNet + ControlNet pass fewer per denoising call), with Inductor's Python wrapper and then its
      # C++ wrapper (generator option cpp_wrapper, which torch cannot use with UNet checkpointing on);
      # UNET_CKPT=on,off CPP=off compares the checkpointing alone
      stamp "compiled B=1: UNet checkpointing ${UNET_CKPT:-off}, cpp_wrapper ${CPP:-off,on}"
      timeout $(( 585 - ($(date +%s) - began) )) python3 benchmarks/gpu/reference_equivalent.py --model /tmp/sd15 --compile on --batch-size 1 \
        --unet-checkpointing "${UNET_CKPT:-off}" --cpp-wrapper "${CPP:-off,on}" --flop-batch-sizes 0 \
        --budget-seconds $(( 565 - ($(date +%s) - began) )) > "$OUT/b1_levers.json" 2> "$OUT/b1_levers.err"
      grep -aE "per sample|ready in|cpp_wrapper failed|error" "$OUT/b1_levers.err" | cut -c1-300 | tail -8
      stamp "done" ;;
    layout|layout_compiled)
      batch=${LAYOUT_BATCH:-8}
      mode=off; [ "$step" = layout_compiled ] && mode=on
      stamp "steps at batch $batch (compile $mode): memory_format contiguous, then channels_last"
      timeout $(( 570 - ($(date +%s) - began) )) python3 benchmarks/gpu/reference_equivalent.py --model /tmp/sd15 --compile "$mode" --batch-size "$batch" \
        --memory-format contiguous,channels_last --flop-batch-sizes 0 --budget-seconds $(( 550 - ($(date +%s) - began) )) > "$OUT/$step.json" 2> "$OUT/$step.err"
      grep -E "per sample|ready in|error" "$OUT/$step.err" | tail -6
      stamp "done" ;;
  esac
done
