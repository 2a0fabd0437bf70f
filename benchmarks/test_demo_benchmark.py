"""Wall time of ``texkit demo`` (what ``make demo`` runs after installation), on the CPU.

Run with ``make bench`` or ``.venv/bin/python -m pytest benchmarks/test_demo_benchmark.py --benchmark-only``;
``.venv/bin/python benchmarks/test_demo_benchmark.py`` runs the same measurement once and writes
``benchmarks/results/demo_cpu.json``. The demo runs as a subprocess, so the time includes the
interpreter start and imports, as a user sees it. Besides the wall time the record keeps the
child's CPU time (user + system) and the load average before and after: on a shared machine the
wall time depends on the other work, the CPU time much less.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

RESULTS = Path(__file__).parent / "results" / "demo_cpu.json"
TEXKIT = Path(sys.executable).parent / "texkit"


def run_demo_once(out: Path) -> dict[str, float | int | str | list[float]]:
    """Run ``texkit demo --out OUT`` in a subprocess; returns wall and CPU seconds and the load."""
    load_before = list(os.getloadavg())
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([str(TEXKIT), "demo", "--out", str(out)], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "cores": os.cpu_count() or 0,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


@pytest.mark.slow
def test_demo_wall_time(benchmark, tmp_path):
    record = benchmark.pedantic(run_demo_once, args=(tmp_path / "demo",), rounds=1, iterations=1)
    benchmark.extra_info.update(record)
    assert (tmp_path / "demo" / "report.html").exists()


if __name__ == "__main__":
    folder = Path(tempfile.mkdtemp(prefix="texkit-demo-bench-"))
    try:
        result = run_demo_once(folder / "demo")
        metrics = [json.loads(line) for line in (folder / "demo" / "metrics.jsonl").read_text().splitlines() if line]
        result["steps"] = len(metrics)
        result["reward_first"] = round(metrics[0]["reward/total"], 4)
        result["reward_last"] = round(metrics[-1]["reward/total"], 4)
        if "--effect" in sys.argv:  # the visible before/after change, as tests/demo measures it
            sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "demo"))
            from test_demo_effect import demo_effect

            result["effect"] = {k: round(v, 4) for k, v in demo_effect(folder / "demo").items()}
        print(json.dumps(result, indent=2))
        if "--record" in sys.argv:
            RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
