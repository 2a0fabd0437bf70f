"""The measured tables in the docs match the committed benchmark records they cite."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _table_rows(markdown: str, header_start: str) -> list[list[str]]:
    """Cells of the rows of the first table whose header line starts with ``header_start``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_scaling_table_matches_scaling_h200x2_json():
    record = json.loads((ROOT / "benchmarks/results/scaling_h200x2.json").read_text())
    rows = _table_rows((ROOT / "docs/guide/scaling-out.md").read_text(), "| GPUs | batch per GPU")
    expected = {(e["gpus"], e["batch_size_per_gpu"]): e for e in record["table"]}
    assert len(rows) == len(expected) == 4
    for gpus, batch, seconds, samples, efficiency, peak in rows:
        entry = expected[(int(gpus), int(batch))]
        assert float(seconds) == round(entry["step_seconds"], 1)
        assert float(samples) == round(entry["samples_per_s"], 3)
        assert float(efficiency) == entry["efficiency"]
        assert float(peak) == round(entry["peak_gib_per_gpu"], 1)
    assert record["devices"] == ["NVIDIA H200", "NVIDIA H200"]
    assert {r["world_size"] for r in record["runs"]} == {1, 2}


def test_batched_step_table_matches_training_h200_json():
    record = json.loads((ROOT / "benchmarks/results/training_h200.json").read_text())
    rows = _table_rows((ROOT / "docs/performance.md").read_text(), "| denoising call | view checkpointing | B |")
    measured = {
        ("compiled" if r.get("compile", "off") != "off" else "eager", "on" if r["view_checkpointing"] else "off", r["batch_size"]): r
        for r in record["results"]
        if r.get("mesh") == "cow.obj" and "seconds" in r
    }
    assert len(rows) == len(measured) == 13
    baseline = measured[("eager", "on", 1)]
    for call, ckpt, batch, seconds, samples, ratio, peak, flops, tflops, fraction, compile_seconds, _ in rows:
        r = measured[(call, ckpt, int(batch))]
        assert float(seconds) == round(r["seconds"], 1)
        assert float(samples) == round(r["samples_per_second"], 3)
        assert float(ratio.strip("*x")) == round(r["samples_per_second"] / baseline["samples_per_second"], 1)
        assert float(peak) == round(r["peak_allocated_gib"], 1)
        assert int(re.sub(r"\D", "", flops)) == round(r["flops"] / 1e12)
        assert float(tflops) == round(r["tflops_per_second"], 1)
        assert float(fraction.strip("*% ")) == round(100 * r["fraction_of_dense_peak"], 1)
        assert compile_seconds == (f"{r['compile_seconds']:.0f}" if call == "compiled" else "-")


def test_batched_step_targets_hold_in_one_run():
    """Issue 13's targets, against eager batch 1 of the same command (run 3a: table_gpu0/table_gpu1)."""
    record = json.loads((ROOT / "benchmarks/results/training_h200.json").read_text())
    run = [r for r in record["results"] if r.get("source", "").startswith("table_gpu") and "seconds" in r]
    baseline = next(r for r in run if r["compile"] == "off" and r["view_checkpointing"] and r["batch_size"] == 1)
    best = max(run, key=lambda r: r["samples_per_second"])
    assert best["samples_per_second"] >= 8 * baseline["samples_per_second"]
    assert best["fraction_of_dense_peak"] >= 0.25
    b8 = [r for r in record["results"] if r["view_checkpointing"] and r["batch_size"] == 8 and r.get("mesh") == "cow.obj"]
    assert b8 and all(r["peak_allocated_gib"] < 80 for r in b8)


def test_issue29_tables_match_throughput_h100_json():
    """docs/performance.md's round-3 tables quote benchmarks/results/throughput_h100.json, which is
    what collect_throughput.py reads from the committed outputs of the device calls."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("collect_throughput", ROOT / "benchmarks/gpu/collect_throughput.py")
    collector = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(collector)
    record = json.loads((ROOT / "benchmarks/results/throughput_h100.json").read_text())
    assert record == json.loads(json.dumps(collector.collect()))
    doc = (ROOT / "docs/performance.md").read_text()
    rows = {label: value for label, value in _table_rows(doc, "| measurement (H100, batch 1, reference-equivalent) |")}
    e, f, c = record["eager_b1"], record["flops_per_painted_view"], record["compile_b1_cold"]
    assert rows["eager step, attention tuned per shape"] == f"{e['seconds']:.1f} s"
    assert rows["eager step, peak allocated"] == f"{e['peak_allocated_gib']:.1f} GiB"
    assert rows["FLOPs executed per step (view + UNet + VAE recomputation included)"] == f"{f['step_executed'] / 1e12:.0f} T"
    assert rows["FLOPs needed per step (forward + backward, nothing recomputed)"] == f"{f['step_needed'] / 1e12:.0f} T"
    assert rows["executed / needed"] == f"{f['executed_over_needed']:.2f}"
    assert rows["first compile of the training call, forward graph (empty cache)"] == f"{c['forward_graph_seconds']:.1f} s"
    assert rows["`texkit warmup` step into an empty cache (forward and backward compiled)"] == f"{c['warmup_step_seconds']:.1f} s"
    assert f["step_executed"] > f["step_needed"]
    attention = _table_rows(doc, "| attention shape (B x heads x query x key x head dim) |")
    assert len(attention) == len(record["attention_choices"]) > 0
    for (shape, forward, training, ratio), a in zip(attention, record["attention_choices"]):
        assert shape == f"{a['batch']} x {a['heads']} x {a['query_length']} x {a['key_length']} x {a['head_dim']}"
        assert (forward, training) == (a["forward_kernel"], a["training_kernel"])
        assert ratio == f"{a['training_speedup_over_torch_choice']:.2f}x"
    assert record["device"] == "NVIDIA H100 80GB HBM3"
    for a in record["attention_choices"]:  # torch's own choice is a candidate: a tuned shape is never slower
        assert a["training_speedup_over_torch_choice"] >= 1.0
    compiled = {label: value for label, value in _table_rows(doc, "| measurement (H100, compiled, reference-equivalent, call 6) |")}
    cache, generate = record["compile_cache_h100"], record["generate_samples_8"]
    assert compiled["`texkit warmup` into an empty cache: forward graph"] == f"{cache['cold_forward_graph_seconds']:.1f} s"
    assert compiled["second process (`texkit train`): graphs loaded from the cache"] == f"{cache['second_process_graphs_loaded']} in {cache['second_process_load_seconds']:.1f} s"
    assert compiled["compiled step, batch 1, steady (steps 2-3 of that run)"] == f"{cache['steady_step_seconds']:.1f} s"
    assert compiled["first step of that run / steady step"] == f"{cache['first_over_steady']:.2f}"
    assert compiled["`texkit generate --samples 8`, eager"] == f"{generate['off']['textures_per_minute']:.1f} textures/min"
    label = f"`texkit generate --samples 8`, compiled (after its {generate['on']['compile_seconds_so_far']:.0f} s compile)"
    assert compiled[label] == f"{generate['on']['textures_per_minute']:.1f} textures/min"
    assert cache["second_process_graphs_loaded"] >= 1 and record["compiled_b1_step_seconds"] == cache["steady_step_seconds"]
    profiled = {label: value for label, value in _table_rows(doc, "| measurement (H100, compiled, batch 1, profiled, call 8) |")}
    p = record["compiled_b1_profile"]
    fam, phase, cold = p["by_family"], p["by_phase"], p["cold_compile"]
    assert profiled["step (benchmark row, not profiled)"] == f"{p['step_seconds']:.1f} s"
    assert profiled["GPU kernel time per step"] == f"{p['kernel_seconds']:.2f} s"
    assert profiled["kernel launches per step"] == str(p["kernel_launches"])
    assert profiled["cuDNN layout transposes (NCHW <-> NHWC)"] == f"{fam['layout_copy']:.2f} s ({100 * p['layout_copy_share']:.0f} % of kernel time)"
    for label, family in [("convolutions", "convolution"), ("matrix products", "gemm"), ("attention", "attention"), ("normalisation", "normalization")]:
        assert profiled[label] == f"{fam[family]:.2f} s"
    assert profiled["denoiser (UNet + ControlNet) / VAE decode + encode"] == f"{phase['denoiser']:.2f} s / {phase['vae_decode'] + phase['vae_encode']:.2f} s"
    assert profiled["cold compile of the training call: Dynamo tracing / compiling / the rest"] == (
        f"{cold['tracing_seconds']:.1f} s / {cold['compiling_seconds']:.1f} s / {cold['rest_seconds']:.1f} s"
    )
    assert abs(sum(fam.values()) - p["kernel_seconds"]) < 0.01 * p["kernel_seconds"]  # the annotation ranges are out
    later = {label: value for label, value in _table_rows(doc, "| measurement (H100, calls 9-11) |")}
    b8, b1 = record["layout_compiled_b8"], record["layout_eager_b1"]
    nchw, nhwc = b8["contiguous"], b8["channels_last"]
    assert later["compiled step, batch 8, contiguous (call 10)"] == f"{nchw['seconds']:.2f} s, {nchw['peak_allocated_gib']:.1f} GiB"
    assert later["compiled step, batch 8, channels-last, same process (call 10)"] == f"{nhwc['seconds']:.2f} s, {nhwc['peak_allocated_gib']:.1f} GiB"
    assert later["samples/s at batch 8: contiguous / channels-last"] == f"{8 / nchw['seconds']:.3f} / {8 / nhwc['seconds']:.3f}"
    executed, needed = (f[key] * 8 / nhwc["seconds"] / 989e12 for key in ("step_executed", "step_needed"))
    assert later["executed FLOPs at batch 8, channels-last: share of 989 TFLOP/s (on needed FLOPs)"] == f"{100 * executed:.1f} % ({100 * needed:.1f} %)"
    assert later["eager step, batch 1: contiguous / channels-last, same process (call 11)"] == (
        f"{b1['contiguous']['seconds']:.2f} s / {b1['channels_last']['seconds']:.2f} s"
    )
    levers = {label: value for label, value in _table_rows(doc, "| measurement (H100, calls 12-14) |")}
    u = record["unet_checkpointing_b1"]
    for label, row in [
        ("compiled step, batch 1, UNet checkpointing off, first row of its process (call 13)", u["off_alone"]),
        ("compiled step, batch 1, UNet checkpointing on, first row of its process (call 14)", u["on_first"]),
        ("compiled step, batch 1, UNet checkpointing off, second row of the same process (call 14)", u["off_second"]),
        ("compiled step, batch 1, UNet checkpointing off, alone in its process, another machine (call 15)", u["same_machine_off"]),
        ("compiled step, batch 1, UNet checkpointing on, alone in its process, call 15's machine (call 16)", u["same_machine_on"]),
    ]:
        assert levers[label] == f"{row['seconds']:.2f} s, {row['peak_allocated_gib']:.1f} GiB"
    assert levers["checkpointing off over on, one machine (calls 15 and 16)"] == f"{u['same_machine_speedup']:.2f}x faster"
    assert (u["same_machine_off"]["unet_checkpointing"], u["same_machine_on"]["unet_checkpointing"]) == ("off", "on")
    assert (u["off_alone"]["unet_checkpointing"], u["on_first"]["unet_checkpointing"], u["off_second"]["unet_checkpointing"]) == ("off", "on", "off")
    aot = record["precompile_on_device"]
    assert levers["`aot_compile` in the device's torch (call 12)"] == f"{'yes' if aot['has_aot_compile'] else 'no'} (torch {aot['torch']})"
    up_block, call = record["compiled_gradients_h100"]["checks"]
    assert later["compiled vs eager gradients, tiny UNet's first up block (largest difference / largest gradient)"] == f"{up_block['relative_difference']:.1e}"
    assert later["compiled vs eager adapter gradients, tiny denoising call (same measure)"] == f"{call['relative_difference']:.1e}"
    assert nchw["batch_size"] == nhwc["batch_size"] == 8 and nchw["compile"] == nhwc["compile"] == "on"
    assert up_block["relative_difference"] < 1e-3 and abs(call["directional_compiled"] / call["directional_finite_differences"] - 1) < 0.01
