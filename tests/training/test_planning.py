"""The step-cost model behind ``texkit train --dry-run``: it reproduces the committed measurements."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from texkit.planning import GPU_HEADROOM, largest_batch, load_step_model, predict_step

REPO = Path(__file__).resolve().parents[2]
RECORDS = ["benchmarks/results/training_h200.json", "benchmarks/results/training_cpu_tiny.json"]


def _measured_points():
    model = load_step_model()
    for fit in model["fits"]:
        generator = "tiny" if fit["family"] == "tiny" else "stable-diffusion"
        for point in fit["measured"]:
            yield fit, generator, point


@pytest.mark.parametrize("record", RECORDS)
def test_the_model_was_fitted_from_the_committed_records(record):
    sources = {fit["source"] for fit in load_step_model()["fits"]}
    assert Path(record).name in sources
    assert (REPO / record).exists()


def test_predictions_within_15_percent_of_every_measured_point():
    checked = 0
    for fit, generator, point in _measured_points():
        p = predict_step(generator, fit["device_kind"], point["batch_size"], fit["views"], fit["steps"], fit["view_checkpointing"])
        assert p.seconds == pytest.approx(point["seconds"], rel=0.15), (fit["device"], point)
        if point["peak_gib"] is not None:
            assert p.peak_gib == pytest.approx(point["peak_gib"], rel=0.15), (fit["device"], point)
        checked += 1
    assert checked >= 10


def test_measured_points_are_the_benchmark_rows():
    """The fit's points are exactly the benchmark's rows (nothing typed in by hand)."""
    record = json.loads((REPO / RECORDS[0]).read_text())
    rows = {(r["view_checkpointing"], r["batch_size"]): r["seconds"] for r in record["results"]
            if "seconds" in r and r.get("vae_checkpointing", "on") == "on" and r["mesh"] == record["mesh"]}
    fits = [f for f in load_step_model()["fits"] if f["source"] == Path(RECORDS[0]).name]
    points = {(f["view_checkpointing"], p["batch_size"]): p["seconds"] for f in fits for p in f["measured"]}
    assert points == rows


def test_largest_batch_that_fits():
    def at(batch):
        return predict_step("stable-diffusion", "cuda", batch, 6, 10, True)

    best = largest_batch(at, 80.0)
    assert at(best).peak_gib <= GPU_HEADROOM * 80.0 < at(best + 1).peak_gib
    assert best >= 8  # the target: batch 8 with view checkpointing fits an 80 GB H100


def test_dry_run_on_the_tiny_cpu_config_prints_a_prediction(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('device = "cpu"\n[generator]\nname = "tiny"\n[training]\nbatch_size = 2\n[rewards.curvature_color]\nweight = 1.0\n')
    proc = subprocess.run([sys.executable, "-m", "texkit.commands.cli", "train", str(config), "--dry-run"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "predicted" in proc.stdout and "s/step at batch_size 2" in proc.stdout
    assert not (tmp_path / "runs").exists()


def test_dry_run_reports_a_misspelt_generator_option_in_one_line(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('device = "cpu"\n[generator]\nname = "tiny"\n[generator.options]\nlora_rnak = 2\n[rewards.curvature_color]\n')
    proc = subprocess.run([sys.executable, "-m", "texkit.commands.cli", "train", str(config), "--dry-run"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "did you mean 'lora_rank'" in proc.stderr
