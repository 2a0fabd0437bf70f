"""Demo training step time vs intra-op thread count, on an idle CPU and under background load.

Each setting runs in a fresh process: build the demo run (``texkit demo``'s config: tiny generator,
128 px texture, 4 painting views, 3 DDIM steps), one warm-up step, then ``--steps`` timed steps of
``Trainer.train_step``. Background load is ``--busy`` processes spinning in pure Python (as other
jobs on a shared machine would). The machine's load average before each setting is recorded, since
a shared machine is never fully idle.

    python benchmarks/bench_threads.py --steps 3 --busy 3 \
        --out benchmarks/results/threads_cpu.json --plot docs/images/threads_cpu.png
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPIN = "while True:\n    pass\n"


def child(threads: int, steps: int) -> None:
    """Time demo steps with ``threads`` intra-op threads (0: torch's default); prints one JSON line."""
    import torch

    from texkit.commands.demo import demo_config
    from texkit.training import Trainer

    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(demo_config(Path(tmp), steps + 1), Path(tmp))
        start = time.perf_counter()
        trainer.train_step()  # warm-up
        print(json.dumps({"warmup_seconds": time.perf_counter() - start}), flush=True)
        for _ in range(steps):
            start = time.perf_counter()
            trainer.train_step()
            print(json.dumps({"threads": torch.get_num_threads(), "step": time.perf_counter() - start}), flush=True)


def run_setting(threads: int, steps: int, busy: int, limit: float) -> dict:
    """One setting in a fresh process, with ``busy`` spinning processes around it.

    A setting still running after ``limit`` seconds is stopped; the steps it finished are kept and
    ``timed_out`` says so (its median is then a lower bound).
    """
    import torch

    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(busy)]
    lines: list[dict] = []
    timed_out = False
    try:
        time.sleep(1.0 if busy else 0.0)
        load = os.getloadavg()[0]
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(threads), "--steps", str(steps)], stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + limit
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                proc.kill()
                break
            if sel.select(timeout=min(left, 5.0)):
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(json.loads(line))
        proc.wait()
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    times = [d["step"] for d in lines if "step" in d]
    warmup = next((d["warmup_seconds"] for d in lines if "warmup_seconds" in d), None)
    default = torch.get_num_threads()
    return {
        "threads": threads or default,
        "requested_threads": threads,
        "busy_processes": busy,
        "load_average_1min": round(load, 2),
        "warmup_seconds": warmup,
        "step_seconds": times,
        "median_seconds": statistics.median(times) if times else None,
        "timed_out": timed_out,
        "limit_seconds": limit,
    }


def plot(results: list[dict], path: Path) -> None:
    """Grouped bars: median step time per thread setting, idle vs under load."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted({r["threads"] for r in results})
    fig, ax = plt.subplots(figsize=(6, 3.4))
    width = 0.38
    for k, busy in enumerate(sorted({r["busy_processes"] for r in results})):
        values = [next((r["median_seconds"] or 0 for r in results if r["threads"] == t and r["busy_processes"] == busy), 0) for t in labels]
        xs = [i + (k - 0.5) * width for i in range(len(labels))]
        bars = ax.bar(xs, values, width, label=f"{busy} busy processes" if busy else "no added load")
        ax.bar_label(bars, fmt="%.1f s", fontsize=8)
    ax.set_xticks(range(len(labels)), [f"{t} thread{'s' if t > 1 else ''}" for t in labels])
    ax.set_ylabel("seconds per demo training step (median)")
    ax.set_title(f"texkit demo step on {os.cpu_count()} CPU cores")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--busy", type=int, default=3, help="spinning processes for the loaded runs")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="settings to time (0: torch's default)")
    parser.add_argument("--limit", type=float, default=600.0, help="seconds per setting before it is stopped")
    parser.add_argument("--loads", type=int, nargs="+", default=None, help="busy-process counts to run (default: 0 and --busy)")
    parser.add_argument("--merge", type=Path, nargs="*", default=[], help="earlier result files whose settings are kept")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.steps)
        return
    results = [r for path in args.merge for r in json.loads(path.read_text())["results"]]
    for busy in args.loads if args.loads is not None else (0, args.busy):
        for threads in args.threads:
            result = run_setting(threads, args.steps, busy, args.limit)
            print(json.dumps(result), flush=True)
            results.append(result)
    record = {"cpu_count": os.cpu_count(), "steps": args.steps, "results": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
