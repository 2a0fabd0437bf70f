"""A second process's first compiled training call, with and without the generator option ``precompile``.

Each run is its own process, as two ``texkit train`` runs are: it builds the generator (compile on),
makes one training call of the denoising call (batch 2 latents with gradients, the adapter merged) and
its backward, then a second call, and prints one JSON line: the first call's seconds split as the
generator reports them (tracing / compiling or loading / the rest, and for ``precompile`` the load of
the whole call), and the second call's seconds. ``--runs 2`` per setting, one compile cache folder per
setting: the first process compiles (cold), the second finds the cache (warm).

    python benchmarks/precompile_first_call.py --model /tmp/sd15 --out benchmarks/results/precompile_cpu.jsonl
    (bench_scaling.py --prepare /tmp/sd15 writes the random full-size SD 1.5 + ControlNet it uses)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ONE_RUN = r"""
import json, sys, time, torch, texkit
model, precompile = sys.argv[1], sys.argv[2] == "on"
device = "cuda" if torch.cuda.is_available() else "cpu"
common = {"compile": "on", "checkpointing": True, "device": device, "precompile": precompile}
if model == "tiny":
    gen = texkit.get_registry().make_generator("tiny", **common)
else:
    gen = texkit.get_registry().make_generator("stable-diffusion", model=model, controlnet=f"{model}/controlnet",
                                               dtype="fp16" if device == "cuda" else "fp32", **common)
g = torch.Generator().manual_seed(0)
size = gen.resolution // gen.vae_scale_factor
latents = torch.randn(2, gen.unet.config.in_channels, size, size, generator=g).to(device, gen.dtype).requires_grad_(True)
condition = torch.rand(2, gen.controlnet.config.conditioning_channels, gen.resolution, gen.resolution, generator=g).to(device, gen.dtype)
embeds = torch.randn(2, 77, gen.unet.config.cross_attention_dim, generator=g).to(device, gen.dtype)
seconds = []
for _ in range(2):
    gen.merged_lora.refresh()
    start = time.perf_counter()
    out = gen.denoiser(latents, torch.tensor(500, device=device), embeds, condition, 1.0)
    out.float().square().mean().backward()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds.append(time.perf_counter() - start)
print(json.dumps({"first_call_seconds": seconds[0], "second_call_seconds": seconds[1], "first_calls": gen.denoiser.first_calls,
                  "compile_cache": gen.denoiser.describe_cache(), "torch": torch.__version__, "device": device}))
"""


def run_once(model: str, precompile: bool, cache: Path) -> dict:
    env = {**os.environ, "TEXKIT_COMPILE_CACHE_DIR": str(cache)}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    env.pop("TEXKIT_COMPILE_CACHE", None)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", ONE_RUN, model, "on" if precompile else "off"], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1][:300] if done.stderr.strip() else f"exit {done.returncode}"}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["process_seconds"] = time.perf_counter() - start
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="a saved model folder (bench_scaling.py --prepare) or 'tiny'")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--settings", default="off,on", help="precompile settings to measure, comma-separated")
    parser.add_argument("--out", type=Path, default=None, help="append the JSON lines here too")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for setting in args.settings.split(","):
            cache = Path(tmp) / f"cache-{setting}"
            for run in range(args.runs):
                row = {"model": args.model, "precompile": setting, "run": run + 1, "cache": "cold" if run == 0 else "warm", **run_once(args.model, setting == "on", cache)}
                line = json.dumps(row)
                print(line, flush=True)
                if args.out is not None:
                    with args.out.open("a") as f:
                        f.write(line + "\n")


if __name__ == "__main__":
    main()
