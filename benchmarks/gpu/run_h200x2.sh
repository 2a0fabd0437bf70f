#!/usr/bin/env bash
# The GPU runs of 2026-11-30 (second session) on the device kind nvidia-h200-x2, one command per part:
#   carry: .whl and .assets (see setup_device.sh)
#   usage: bash benchmarks/gpu/run_h200x2.sh check|scaling|training|rabbit|next|compile|table|fill
# Results: benchmarks/results/multi_gpu_check_h200x2.json, scaling_h200x2.json (bench_scaling.py --merge),
# training_h200.json (bench_training.py --merge of the training and rabbit outputs).
set -uo pipefail
source benchmarks/gpu/setup_device.sh || exit 1
case ${1:-} in
  check)  # 2-GPU lockstep and a 1-GPU checkpoint resumed on 2 GPUs (tiny generator, NCCL)
    python3 benchmarks/gpu/check_multi_gpu.py --out /tmp/mg > "$OUT/multi_gpu_check.json" 2> "$OUT/multi_gpu_check.err"; echo "check rc $?" ;;
  scaling)  # 1 then 2 processes, batch 1 and 8 per GPU, method settings, same saved model
    python3 benchmarks/gpu/bench_scaling.py --prepare /tmp/sd15 || exit 1
    for n in 1 2; do
      python3 -m torch.distributed.run --nproc-per-node $n benchmarks/gpu/bench_scaling.py --model /tmp/sd15 --batch-size 1,8 --warmup 1 --steps 2 > "$OUT/scaling_$n.json" 2> "$OUT/scaling_$n.err"
    done
    python3 benchmarks/gpu/bench_scaling.py --merge "$OUT/scaling_1.json" "$OUT/scaling_2.json" > "$OUT/scaling_h200x2.json" ;;
  training)  # the batch table: both GPUs at once, one configuration set each
    CUDA_VISIBLE_DEVICES=0 python3 benchmarks/gpu/bench_training.py --paths front_short --view-checkpointing on --batch-size-on 1,2,4 --flop-batch-sizes 1,2 > "$OUT/t_gpu0.json" 2> "$OUT/t_gpu0.err" &
    CUDA_VISIBLE_DEVICES=1 python3 benchmarks/gpu/bench_training.py --paths front_short --view-checkpointing on,off --batch-size-on 8,16 --batch-size-off 1,2 --flop-batch-sizes 1,2,8 > "$OUT/t_gpu1.json" 2> "$OUT/t_gpu1.err"
    wait ;;
  rabbit)  # batch 1 on the reference's mesh: merged LoRA on/off x VAE checkpointing on/off, then the default alone
    python3 benchmarks/gpu/bench_training.py --paths front_short --view-checkpointing on --batch-size 1 --merge-lora off,on --vae-checkpointing on,off --mesh ../shared/assets/rabbit.obj --flop-batch-sizes 0 > "$OUT/rabbit_b1.json" 2> "$OUT/rabbit_b1.err"
    python3 benchmarks/gpu/bench_training.py --paths front_short --view-checkpointing on --batch-size 1 --mesh ../shared/assets/rabbit.obj --flop-batch-sizes 0 > "$OUT/rabbit_alone.json" 2> "$OUT/rabbit_alone.err" ;;
  next)  # not run yet (device time ran out): UNet checkpointing off under view checkpointing, and compile without it
    CUDA_VISIBLE_DEVICES=0 python3 benchmarks/gpu/bench_training.py --paths front_short --view-checkpointing on --batch-size 1,8 --unet-checkpointing on,off --flop-batch-sizes 0 > "$OUT/unet_ckpt.json" 2> "$OUT/unet_ckpt.err" &
    CUDA_VISIBLE_DEVICES=1 timeout 540 python3 benchmarks/gpu/bench_training.py --paths front_short --view-checkpointing on --batch-size 1 --unet-checkpointing off --compile on --flop-batch-sizes 0 > "$OUT/compile.json" 2> "$OUT/compile.err"
    wait ;;
  compile)  # third session: the compiled denoising call (no graph breaks since MergedLoRA.drop_stale) at the large batches
    CUDA_VISIBLE_DEVICES=0 timeout 570 python3 benchmarks/gpu/bench_training.py --paths front_short --view-checkpointing on --batch-size 8 --compile on --flop-batch-sizes 0 > "$OUT/compile_b8.json" 2> "$OUT/compile_b8.err" &
    CUDA_VISIBLE_DEVICES=1 timeout 570 python3 benchmarks/gpu/bench_training.py --paths front_short --view-checkpointing on --batch-size 16 --compile on --flop-batch-sizes 0 > "$OUT/compile_b16.json" 2> "$OUT/compile_b16.err"
    wait ;;
  table)  # third session: the batch table in one run, eager batch 1 as the baseline and the compiled call at the large batches
    CUDA_VISIBLE_DEVICES=0 timeout 580 python3 benchmarks/gpu/bench_training.py --paths front_short --view-checkpointing on --batch-size 1,8 --compile off,on --flop-batch-sizes 1,8 --budget-seconds 560 > "$OUT/table_gpu0.json" 2> "$OUT/table_gpu0.err" &
    CUDA_VISIBLE_DEVICES=1 timeout 580 python3 benchmarks/gpu/bench_training.py --paths front_short --view-checkpointing on --batch-size 16,18 --compile on --flop-batch-sizes 0 --budget-seconds 560 > "$OUT/table_gpu1.json" 2> "$OUT/table_gpu1.err"
    wait ;;
  fill)  # third session, after `table` ran out of time before its compiled B = 8 row: the other compiled rows
    CUDA_VISIBLE_DEVICES=0 timeout 530 python3 benchmarks/gpu/bench_training.py --paths front_short --view-checkpointing on --batch-size 8,4 --compile on --flop-batch-sizes 0 --budget-seconds 520 > "$OUT/fill_gpu0.json" 2> "$OUT/fill_gpu0.err" &
    ( CUDA_VISIBLE_DEVICES=1 timeout 300 python3 benchmarks/gpu/bench_training.py --paths front_short --view-checkpointing off --batch-size 1,2 --compile on --flop-batch-sizes 0 --budget-seconds 290 > "$OUT/fill_gpu1.json" 2> "$OUT/fill_gpu1.err"
      CUDA_VISIBLE_DEVICES=1 timeout 220 python3 benchmarks/gpu/bench_training.py --paths front_short --view-checkpointing on --batch-size 1 --compile on --mesh ../shared/assets/rabbit.obj --flop-batch-sizes 0 --budget-seconds 210 > "$OUT/fill_rabbit.json" 2> "$OUT/fill_rabbit.err" )
    wait ;;
  *) echo "usage: $0 check|scaling|training|rabbit|next|compile|table|fill"; exit 2 ;;
esac
