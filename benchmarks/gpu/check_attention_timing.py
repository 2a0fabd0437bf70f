"""The attention tuner's timings on this GPU for SD 1.5's shapes at 512 px (issue 29, call 7).

Call 6 (`run_throughput.sh cache_fixed`) recorded the tuned kernel of every shape as 0.56-1.01x the
speed of PyTorch's own choice, which cannot be right when PyTorch's choice is one of the candidates:
the timing paid the kernel-selection context's host cost per call for forced kernels only. This
prints, per shape, the timings of `time_attention_kernels` as it now measures (blocks of calls
inside one context, candidates taking turns) and the chosen kernel's speed against PyTorch's own.

    python benchmarks/gpu/check_attention_timing.py > attention_timing.json
"""

from __future__ import annotations

import json
import sys

import torch
from texkit_diffusers.attention_tuning import SDPA_KERNELS, TORCH_DEFAULT, AttentionTable, time_attention_kernels

#: (query length, key length, head dim) of SD 1.5's attention at 512 px (64x64 latents), 8 heads.
SD15_SHAPES = [(4096, 4096, 40), (4096, 77, 40), (1024, 1024, 80), (1024, 77, 80), (256, 256, 160), (256, 77, 160), (64, 64, 160), (64, 77, 160)]


def main() -> None:
    device = torch.device("cuda")
    table = AttentionTable(device)
    rows = []
    for batch in (2, 16):
        for q_len, kv_len, head_dim in SD15_SHAPES:
            key = (batch, 8, q_len, kv_len, head_dim, "float16")
            table.timings[key] = timed = time_attention_kernels(key, device, SDPA_KERNELS)
            chosen = table.choice(key, training=True)
            default = timed[TORCH_DEFAULT]["train_ms"]
            row = {"shape": list(key[:5]), "timings": timed, "training_choice": chosen, "forward_choice": table.choice(key, training=False),
                   "chosen_speed_over_torch_choice": default / timed[chosen]["train_ms"]}
            rows.append(row)
            print(f"{key}: training {chosen} {row['chosen_speed_over_torch_choice']:.2f}x torch's own", file=sys.stderr, flush=True)
    json.dump({"device": torch.cuda.get_device_name(device), "torch": torch.__version__, "rows": rows}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
