"""The pre-flight memory check on a faked CUDA device: a run predicted not to fit stops, in one line,
before any weights load; the headroom limit and the largest batch are known answers of the fit."""

from __future__ import annotations

import pytest
import torch

from texkit.config import parse_config
from texkit.errors import DeviceError
from texkit.planning import GPU_HEADROOM, RunPlan, StepPrediction, check_fits, load_step_model, plan_run, predict_step

GIB = 2**30



def _sd15(batch_size: int, view_checkpointing: bool = True, **training):
    return parse_config(
        {
            "generator": {"name": "stable-diffusion", "options": {"compile": "off"}},
            "cameras": {"paint": "front_short"},
            "training": {"batch_size": batch_size, "view_checkpointing": view_checkpointing, **training},
            "rewards": {"curvature_color": {}},
        }
    )


def _fit():
    return next(f for f in load_step_model()["fits"] if (f["family"], f["device_kind"], f["view_checkpointing"], f.get("compiled", False)) == ("sd15", "cuda", True, False))


def test_a_run_that_does_not_fit_the_gpu_stops_in_one_line(fake_gpu):
    device = fake_gpu(24.0)
    m0, m1 = _fit()["peak_gib"]
    largest = int((GPU_HEADROOM * 24.0 - m0) // m1)
    with pytest.raises(DeviceError) as info:
        check_fits(_sd15(8), device)
    message = str(info.value)
    assert "\n" not in message
    assert f"needs about {m0 + 8 * m1:.0f} GiB" in message and "cuda:0 (Fake GPU, 24.0 GiB) has 24 GiB" in message
    assert f"set training.batch_size to {largest} or less" in message and largest >= 1


def test_a_run_that_fits_passes_and_the_plan_names_the_device(fake_gpu):
    device = fake_gpu(80.0)
    check_fits(_sd15(8), device)  # 8 x sd15 with view checkpointing fits an 80 GiB card
    plan = plan_run(_sd15(8), device)
    m0, m1 = _fit()["peak_gib"]
    assert plan.device == "cuda:0 (Fake GPU, 80.0 GiB)" and plan.memory_gib == 80.0
    assert plan.prediction.peak_gib == pytest.approx(m0 + 8 * m1)
    assert plan.largest_batch == int((GPU_HEADROOM * 80.0 - m0) // m1)
    assert plan.fits()


def test_without_view_checkpointing_memory_grows_with_the_views(fake_gpu):
    device = fake_gpu(80.0)
    plan = plan_run(_sd15(2, view_checkpointing=False), device)
    fit = next(f for f in load_step_model()["fits"] if (f["family"], f["device_kind"], f["view_checkpointing"]) == ("sd15", "cuda", False))
    m0, m1 = fit["peak_gib"]
    assert plan.prediction.peak_gib == pytest.approx(m0 + m1 * 2 * 6 / fit["views"])


def test_the_cpu_is_never_checked(monkeypatch):
    monkeypatch.setattr("texkit.planning.plan_run", lambda *a, **k: pytest.fail("planned a CPU run"))
    check_fits(_sd15(64), torch.device("cpu"))


def test_the_headroom_limit_itself_fits():
    prediction = StepPrediction(seconds=1.0, peak_gib=9.5, samples_per_second=1.0, basis="test")
    assert GPU_HEADROOM == 0.95
    assert RunPlan(prediction, "cuda:0", 10.0, 1).fits()
    over = StepPrediction(seconds=1.0, peak_gib=9.5 + 1e-6, samples_per_second=1.0, basis="test")
    assert not RunPlan(over, "cuda:0", 10.0, 1).fits()
    assert RunPlan(over, "cpu", None, None).fits() and RunPlan(None, "cuda:0", 10.0, None).fits()
    no_memory = StepPrediction(seconds=1.0, peak_gib=None, samples_per_second=1.0, basis="test")
    assert RunPlan(no_memory, "cuda:0", 10.0, None).fits()


def test_the_largest_batch_stops_at_the_first_that_does_not_fit():
    peaks = {1: 2.0, 2: 5.0, 3: 9.5, 4: 9.6, 5: 1.0}

    def at(batch):
        return StepPrediction(1.0, peaks.get(batch, 100.0), 1.0, "test")

    assert [largest_batch_of(at, m) for m in (1.0, 2.2, 10.0)] == [0, 1, 3]
    assert largest_batch_of(lambda b: StepPrediction(1.0, None, 1.0, "test"), 10.0) == 0


def largest_batch_of(at, memory):
    from texkit.planning import largest_batch

    return largest_batch(at, memory, limit=8)


def test_predictions_scale_with_views_and_steps_and_take_the_host_floor():
    fit = _fit()
    base = predict_step("stable-diffusion", "cuda", 1, fit["views"], fit["steps"], True)
    s0, s1 = fit["seconds"]
    assert base.seconds == pytest.approx(max(fit["floor_seconds"], s0 + s1))
    assert base.samples_per_second == pytest.approx(1 / base.seconds)
    double = predict_step("stable-diffusion", "cuda", 1, 2 * fit["views"], 2 * fit["steps"], True)
    assert double.seconds == pytest.approx(4 * base.seconds)
    big = predict_step("stable-diffusion", "cuda", 64, fit["views"], fit["steps"], True)
    assert big.seconds == pytest.approx(s0 + 64 * s1) and big.peak_gib == pytest.approx(fit["peak_gib"][0] + 64 * fit["peak_gib"][1])
    assert "sd15" in base.basis and "view checkpointing on" in base.basis and "eager" in base.basis
    assert predict_step("tiny", "cuda", 1, 6, 2, True) is None  # nothing comparable measured
    tiny = predict_step("tiny", "cpu", 2, 6, 2, True)
    assert tiny.peak_gib is None and tiny.compile_seconds == 0.0


def test_dry_run_lines_on_a_plan_without_prediction_and_on_the_cpu():
    assert RunPlan(None, "cpu", None, None).lines(1) == ["device cpu: no measured configuration to predict from (see docs/performance.md)"]
    cpu = RunPlan(predict_step("tiny", "cpu", 2, 6, 2, True), "cpu", None, None).lines(2)
    assert cpu[0] == "device cpu" and cpu[1].startswith("predicted ") and "at batch_size 2" in cpu[1]
    assert not any("GPU memory" in line or "largest" in line for line in cpu)


@pytest.mark.parametrize("compile, compiled", [("auto", True), ("on", True), ("off", False)])
def test_a_compiled_generator_is_planned_from_the_compiled_fit(fake_gpu, compile, compiled):
    config = _sd15(8)
    config.generator.options = {"compile": compile}
    plan = plan_run(config, fake_gpu(80.0))
    fit = next(f for f in load_step_model()["fits"] if (f["family"], f["device_kind"], f["view_checkpointing"], f.get("compiled", False)) == ("sd15", "cuda", True, compiled))
    assert plan.prediction.peak_gib == pytest.approx(fit["peak_gib"][0] + 8 * fit["peak_gib"][1])
    assert plan.prediction.compile_seconds == fit.get("compile_seconds", 0.0) and ("compiled" in plan.prediction.basis) == compiled


def test_cuda_asked_for_without_a_visible_gpu_is_planned_without_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    plan = plan_run(_sd15(8), torch.device("cuda:0"))
    assert plan.memory_gib is None and plan.largest_batch is None and plan.device == "cuda:0"
    assert plan.prediction.peak_gib is not None and plan.fits()


def test_dry_run_lines_name_the_gpu_memory_when_known(fake_gpu):
    plan = plan_run(_sd15(8), fake_gpu(80.0))
    lines = plan.lines(8)
    assert f"predicted peak GPU memory {plan.prediction.peak_gib:.1f} GiB of 80.0 GiB" in lines
    assert f"largest batch_size that fits: {plan.largest_batch}" in lines
    unknown = RunPlan(plan.prediction, "cuda:0", None, None).lines(8)
    assert f"predicted peak GPU memory {plan.prediction.peak_gib:.1f} GiB" in unknown


def _fit_record(**extra):
    base = {"family": "sd15", "device_kind": "cuda", "device": "Test GPU", "view_checkpointing": True, "views": 6, "steps": 10, "seconds": [1.0, 2.0], "peak_gib": [3.0, 4.0]}
    return {**base, **extra}


def test_a_fit_without_the_newer_keys_is_an_eager_fit_without_floor():
    """Records written before compiled fits and the host floor existed read as eager, floor 0."""
    model = {"fits": [_fit_record()]}
    p = predict_step("stable-diffusion", "cuda", 1, 6, 10, True, model=model)
    assert p.seconds == pytest.approx(3.0) and p.compile_seconds == 0.0 and "eager" in p.basis
    assert predict_step("stable-diffusion", "cuda", 1, 6, 10, True, model=model, compiled=True).seconds == pytest.approx(3.0)
    assert StepPrediction(1.0, None, 1.0, "x").compile_seconds == 0.0


def test_a_compiled_fit_is_never_the_fallback_of_another_setting():
    model = {"fits": [_fit_record(compiled=True, view_checkpointing=False, compile_seconds=60.0)]}
    assert predict_step("stable-diffusion", "cuda", 1, 6, 10, True, model=model) is None  # eager asked, only compiled measured
    hit = predict_step("stable-diffusion", "cuda", 1, 6, 10, False, model=model, compiled=True)
    assert hit.compile_seconds == 60.0 and "compiled" in hit.basis


def test_a_fit_without_a_floor_predicts_steps_under_a_second():
    model = {"fits": [_fit_record(seconds=[0.1, 0.05])]}
    assert predict_step("stable-diffusion", "cuda", 2, 6, 10, True, model=model).seconds == pytest.approx(0.2)


def test_the_fit_of_the_asked_checkpointing_is_chosen_among_records_without_the_compiled_key():
    model = {"fits": [_fit_record(view_checkpointing=False, seconds=[1.0, 0.0]), _fit_record(view_checkpointing=True, seconds=[2.0, 0.0])]}
    assert predict_step("stable-diffusion", "cuda", 1, 6, 10, True, model=model).seconds == pytest.approx(2.0)
    assert predict_step("stable-diffusion", "cuda", 1, 6, 10, False, model=model).seconds == pytest.approx(1.0)


def test_without_a_fit_of_the_asked_checkpointing_the_first_eager_fit_of_the_family_is_used():
    model = {"fits": [_fit_record(view_checkpointing=False, seconds=[1.0, 0.0]), _fit_record(view_checkpointing=False, device="Other GPU", seconds=[5.0, 0.0])]}
    hit = predict_step("stable-diffusion", "cuda", 1, 6, 10, True, model=model)
    assert hit.seconds == pytest.approx(1.0) and hit.measured_on == "Test GPU" and "view checkpointing off" in hit.basis


@pytest.mark.parametrize("view_checkpointing, peak", [(True, 3.0 + 4.0 * 2), (False, 3.0 + 4.0 * 12 / 6 * 2)])
def test_peak_memory_per_sample_grows_with_the_views_only_without_checkpointing(view_checkpointing, peak):
    """Fit measured at 6 views: peak = m0 + m1 B with view checkpointing (one view's activations at a
    time), m0 + m1 (views / 6) B without; here 12 views, B = 2."""
    model = {"fits": [_fit_record(view_checkpointing=view_checkpointing)]}
    assert predict_step("stable-diffusion", "cuda", 2, 12, 10, view_checkpointing, model=model).peak_gib == pytest.approx(peak)


def test_the_largest_batch_considered_is_256_by_default():
    from texkit.planning import largest_batch

    def small(batch):
        return StepPrediction(1.0, 0.001 * batch, 1.0, "test")

    assert largest_batch(small, 80.0) == 256
    assert largest_batch(small, 80.0, limit=3) == 3


def test_a_generator_without_a_steps_option_is_planned_for_ten_denoising_steps(fake_gpu, monkeypatch):
    import types

    from texkit.registry import get_registry

    monkeypatch.setattr(get_registry(), "validate", lambda kind, name, options: types.SimpleNamespace(compile="off"))
    config = _sd15(2)
    plan = plan_run(config, fake_gpu(80.0))
    from texkit.config import camera_angles

    views = len(camera_angles(config.cameras.paint)[0])
    want = predict_step("stable-diffusion", "cuda", 2, views, 10, True)
    assert plan.prediction.seconds == pytest.approx(want.seconds, rel=1e-12)
    assert predict_step("stable-diffusion", "cuda", 2, views, 11, True).seconds != pytest.approx(want.seconds, rel=1e-6)


def test_a_cpu_run_counts_ram_even_where_a_gpu_is_visible(fake_gpu):
    from texkit.planning import device_memory

    fake_gpu(80.0)
    total, description = device_memory(torch.device("cpu"))
    assert description.startswith("the cpu has") and total != 80.0 * GIB
    assert device_memory(torch.device("cuda:0")) == (80.0 * GIB, "cuda:0 has 80.0 GiB")


def test_the_whole_runs_time_is_steps_times_the_step_plus_the_compile():
    with_compile = StepPrediction(2.0, None, 0.5, "test", compile_seconds=30.0, device_kind="cpu")
    assert RunPlan(with_compile, "cpu", None, None).total_seconds(10) == 50.0
    assert RunPlan(None, "cpu", None, None).total_seconds(10) is None


@pytest.mark.parametrize(
    "seconds, compile_seconds, kind, steps, line",
    [
        (2.0, 30.0, "cpu", 10, "predicted time for 10 steps: 0.01 h (10 x 2.0 s + 30 s compiling; loading and previews not counted)"),
        (180.0, 0.0, "cuda", 1000, "predicted GPU time for 1000 steps: 50.00 h = 2.08 days (1000 x 180.0 s; loading and previews not counted)"),
        (172.8, 0.0, "cuda", 1000, "predicted GPU time for 1000 steps: 48.00 h = 2 days (1000 x 172.8 s; loading and previews not counted)"),
        (172.7, 0.0, "cuda", 1000, "predicted GPU time for 1000 steps: 47.97 h (1000 x 172.7 s; loading and previews not counted)"),
    ],
)
def test_dry_run_line_of_the_whole_runs_time(seconds, compile_seconds, kind, steps, line):
    """Hours with two decimals; from two days on also in days (format_duration); GPU time on CUDA."""
    p = StepPrediction(seconds, None, 1 / seconds, "test", compile_seconds=compile_seconds, device_kind=kind)
    assert line in RunPlan(p, kind, None, None).lines(1, steps)


def _auto(generator: str, device: str = "auto"):
    config = _sd15(1)
    config.generator.name = generator
    config.generator.options = {"steps": 2} if generator == "tiny" else {"compile": "off"}
    config.device = device
    return config


def test_on_a_machine_without_a_gpu_an_auto_run_is_planned_for_the_gpu_it_is_meant_for(monkeypatch):
    """device = "auto" with nothing measured on the CPU for the model (SD 1.5): predicted for a CUDA GPU,
    and the device line says so; the tiny model (measured on the CPU) and an explicit "cpu" stay on the CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = torch.device("cpu")
    sd_auto = plan_run(_auto("stable-diffusion"), cpu)
    assert sd_auto.prediction is not None and sd_auto.prediction.device_kind == "cuda"
    assert sd_auto.device == f"cpu (no GPU visible here; predicted for a CUDA GPU from measurements on {sd_auto.prediction.measured_on})"
    tiny_auto = plan_run(_auto("tiny"), cpu)
    assert tiny_auto.prediction is not None and tiny_auto.prediction.device_kind == "cpu" and tiny_auto.device == "cpu"
    tiny_cpu = plan_run(_auto("tiny", "cpu"), cpu)
    assert tiny_cpu.prediction is not None and tiny_cpu.prediction.device_kind == "cpu"
    assert plan_run(_auto("stable-diffusion", "cpu"), cpu).prediction is None  # asked for the CPU: nothing measured there


def test_unet_checkpointing_off_adds_the_measured_activations_per_sample_and_graph_step(fake_gpu):
    """H100 calls 15-16: off kept 13.6 GiB more at batch 1 over 10 graph-carrying steps, and ran 0.88x the time."""
    device = fake_gpu(80.0)
    effect = load_step_model()["unet_checkpointing_off"]
    on, off = plan_run(_sd15(2), device), plan_run(_sd15(2, unet_checkpointing=False), device)
    extra = effect["extra_peak_gib_per_sample_and_step"]
    assert extra * effect["steps"] == pytest.approx(13.56, abs=0.01) and 0.8 < effect["seconds_factor"] < 1.0
    assert off.prediction.peak_gib == pytest.approx(on.prediction.peak_gib + extra * 2 * 10)
    assert off.prediction.seconds == pytest.approx(on.prediction.seconds * effect["seconds_factor"])
    assert "UNet checkpointing off" in off.prediction.basis and "UNet checkpointing off" not in on.prediction.basis
    truncated = plan_run(_sd15(2, unet_checkpointing=False, truncation=3), device)  # only 3 steps keep a graph
    assert truncated.prediction.peak_gib == pytest.approx(on.prediction.peak_gib + extra * 2 * 3)
    no_views = plan_run(_sd15(1, view_checkpointing=False, unet_checkpointing=False), device)  # every view's graphs at once
    assert no_views.prediction.peak_gib == pytest.approx(plan_run(_sd15(1, view_checkpointing=False), device).prediction.peak_gib + extra * 6 * 10)
    assert off.largest_batch < on.largest_batch


def test_a_run_that_fits_only_with_unet_checkpointing_says_so(fake_gpu):
    device = fake_gpu(80.0)
    check_fits(_sd15(4), device)
    with pytest.raises(DeviceError) as info:
        check_fits(_sd15(4, unet_checkpointing=False), device)
    message = str(info.value)
    largest = plan_run(_sd15(4, unet_checkpointing=False), device).largest_batch
    assert message.endswith(f"set training.batch_size to {largest} or less, or turn on training.unet_checkpointing") and "\n" not in message
