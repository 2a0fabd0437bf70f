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
        p = predict_step(
            generator, fit["device_kind"], point["batch_size"], fit["views"], fit["steps"], fit["view_checkpointing"], compiled=fit["compiled"]
        )
        assert p.seconds == pytest.approx(point["seconds"], rel=0.15), (fit["device"], point)
        if point["peak_gib"] is not None:
            assert p.peak_gib == pytest.approx(point["peak_gib"], rel=0.15), (fit["device"], point)
        checked += 1
    assert checked >= 10


def test_measured_points_are_the_benchmark_rows():
    """The fit's points are exactly the benchmark's rows (nothing typed in by hand); a setting measured at one batch size is not fitted."""
    record = json.loads((REPO / RECORDS[0]).read_text())
    rows = {
        (r["view_checkpointing"], r.get("compile", "off") != "off", r["batch_size"]): r["seconds"]
        for r in record["results"]
        if "seconds" in r and r.get("vae_checkpointing", "on") == "on" and r["mesh"] == record["mesh"]
    }
    settings = {key[:2] for key in rows}
    fitted = {s for s in settings if len([k for k in rows if k[:2] == s]) >= 2}
    rows = {k: v for k, v in rows.items() if k[:2] in fitted}
    fits = [f for f in load_step_model()["fits"] if f["source"] == Path(RECORDS[0]).name]
    points = {(f["view_checkpointing"], f["compiled"], p["batch_size"]): p["seconds"] for f in fits for p in f["measured"]}
    assert points == rows
    assert (True, True) in fitted  # the compiled rows of the batch table


def test_a_compiled_run_is_predicted_from_the_compiled_rows_with_its_compile_time():
    eager = predict_step("stable-diffusion", "cuda", 16, 6, 10, True)
    compiled = predict_step("stable-diffusion", "cuda", 16, 6, 10, True, compiled=True)
    assert compiled.seconds < eager.seconds and "compiled" in compiled.basis and "eager" in eager.basis
    assert compiled.compile_seconds > 0 and eager.compile_seconds == 0
    # no compiled row without view checkpointing at two batch sizes: the eager fit answers
    fallback = predict_step("stable-diffusion", "cuda", 2, 6, 10, False, compiled=True)
    assert fallback.seconds == predict_step("stable-diffusion", "cuda", 2, 6, 10, False).seconds


def test_the_step_time_is_a_host_floor_then_a_line():
    import importlib.util

    spec = importlib.util.spec_from_file_location("fit_step_model", REPO / "benchmarks" / "fit_step_model.py")
    fit_step_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fit_step_model)
    floor, (s0, s1) = fit_step_model.floor_and_line([(1, 10.0), (2, 10.0), (4, 10.0), (8, 18.0), (16, 34.0)])
    assert floor == pytest.approx(10.0) and s0 == pytest.approx(2.0) and s1 == pytest.approx(2.0)
    floor, (s0, s1) = fit_step_model.floor_and_line([(1, 3.0), (2, 5.0), (4, 9.0)])  # a plain line: no floor
    assert floor == 0.0 and (s0, s1) == pytest.approx((1.0, 2.0))


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


def test_dry_run_lines_say_the_one_time_compile_cost():
    from texkit.planning import RunPlan

    compiled = predict_step("stable-diffusion", "cuda", 8, 6, 10, True, compiled=True)
    lines = RunPlan(compiled, "cuda:0 (NVIDIA H200, 139.8 GiB)", 139.8, 20).lines(8)
    assert any(line.startswith("plus about ") and "compiling the denoising call once" in line for line in lines)
    assert "compiled denoising call" in lines[-1]
    eager_lines = RunPlan(predict_step("stable-diffusion", "cuda", 8, 6, 10, True), "cuda:0", 139.8, 18).lines(8)
    assert not any("compiling" in line for line in eager_lines)
