"""Predicted peak memory and seconds per step of a configured run, from measured benchmarks.

``texkit train --dry-run`` prints these before anything is loaded, and a run whose predicted peak
memory exceeds the GPU stops before it loads weights. The model is fitted to the rows of the
committed benchmark records (``benchmarks/gpu/bench_training.py``; the fit is
``benchmarks/fit_step_model.py``, which writes ``texkit/data/step_model.json``):

    seconds(B) = max(floor, s0 + s1 * B) * (views / measured views) * (steps / measured steps)
    peak(B)    = m0 + m1 * B                          (per-view checkpointing on: flat in views)
    peak(B)    = m0 + m1 * B * (views / measured views)  (checkpointing off)

one fit per (model family, device kind, view checkpointing, compiled or eager denoising call). B is
``training.batch_size``. The fits were measured with UNet checkpointing on; with
``training.unet_checkpointing = false`` a full-size model keeps the activations it would recompute, for
every graph-carrying DDIM step of the view being backpropagated (of every view without view
checkpointing), and the step runs a little faster (`UNET_CHECKPOINTING_OFF`, measured once):

    peak(B)    += e * B * graph steps (* views without view checkpointing)
    seconds(B) *= f

The samples share every generator call (one launch, a bigger batch), so at
small B a step costs the host's time to issue its calls whatever B is (the floor) and past that the
GPU's work, which grows linearly with B (the line). A compiled run (generator option ``compile``
``auto`` or ``on``, on CUDA) also spends ``compile_seconds`` once, in its first step.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "StepPrediction",
    "RunPlan",
    "load_step_model",
    "predict_step",
    "largest_batch",
    "plan_run",
    "check_fits",
    "check_sizes",
    "check_duration",
    "device_memory",
    "format_duration",
    "MODEL_PATH",
]

MODEL_PATH = Path(__file__).resolve().parent / "data" / "step_model.json"
"""Where the fitted coefficients live (package data)."""

GPU_HEADROOM = 0.95
"""Fraction of the GPU's memory a run may plan to use (the rest: CUDA context, fragmentation)."""

TEXEL_BYTES = 9 * 4
"""Bytes per texel and sample the view loop holds at least: float32 colour and weight sums (4), the
largest view cosine (1), and the texture with its coverage (4) (`texkit.back_projection.TextureState`)."""

PIXEL_BYTES = 13 * 4
"""Bytes per rendered pixel, view and sample at least: float32 rgb (3), alpha, depth, normal (3), uv (2),
view cosine, and the int64 face id (2 floats' worth) (`texkit.types.RenderOutput`)."""

MAX_RUN_DAYS = 365.0
"""A run predicted to take longer than this is refused by ``--dry-run`` as a mistake (e.g. a stray zero)."""


@dataclass
class StepPrediction:
    """What one optimiser step of a configuration is predicted to cost.

    Attributes:
        seconds: wall time of one step (one batch of ``batch_size`` samples).
        peak_gib: peak allocated GPU memory in GiB (None where the fit has no memory data, e.g. CPU).
        samples_per_second: ``batch_size / seconds``.
        basis: which measured fit the prediction comes from (model family, device kind, checkpointing).
        compile_seconds: one-time compilation in the first step (0 for an eager denoising call).
        device_kind: ``"cuda"`` or ``"cpu"``, the kind of device the fit was measured on.
        measured_on: the device the fit was measured on, e.g. ``"NVIDIA H200"``.
    """

    seconds: float
    peak_gib: float | None
    samples_per_second: float
    basis: str
    compile_seconds: float = 0.0
    device_kind: str = ""
    measured_on: str = ""


UNET_CHECKPOINTING_OFF = "unet_checkpointing_off"
"""The step model's key for what UNet checkpointing off changes: ``e`` is its
``extra_peak_gib_per_sample_and_step``, ``f`` its ``seconds_factor`` (``benchmarks/fit_step_model.py``)."""


def load_step_model(path: Path | None = None) -> dict[str, Any]:
    """The fitted coefficients ``{"fits": [...], "source": ...}`` (see `texkit.planning`)."""
    return json.loads((path or MODEL_PATH).read_text(encoding="utf-8"))


def _family(generator: str) -> str:
    return "tiny" if generator == "tiny" else "sd15"


def _fit_for(model: dict[str, Any], family: str, device_kind: str, view_checkpointing: bool, compiled: bool) -> dict[str, Any] | None:
    """The fit measured in this setting; else the eager one of the same checkpointing; else the first eager one of the family (and device kind)."""
    for want_compiled in (compiled, False):
        for fit in model["fits"]:
            key = (fit["family"], fit["device_kind"], fit["view_checkpointing"], fit.get("compiled", False))
            if key == (family, device_kind, view_checkpointing, want_compiled):
                return fit
    same_family = [f for f in model["fits"] if f["family"] == family and f["device_kind"] == device_kind and not f.get("compiled", False)]
    return same_family[0] if same_family else None


def predict_step(
    generator: str,
    device_kind: str,
    batch_size: int,
    views: int,
    steps: int,
    view_checkpointing: bool,
    model: dict[str, Any] | None = None,
    compiled: bool = False,
    unet_checkpointing: bool = True,
    graph_steps: int | None = None,
) -> StepPrediction | None:
    """Predict one step's seconds and peak memory; None when nothing comparable was measured.

    Args:
        generator: the generator's registered name (``tiny`` or a full-size SD 1.x one).
        device_kind: ``"cuda"`` or ``"cpu"``.
        batch_size: ``training.batch_size``.
        views: painting views per sample.
        steps: DDIM steps per view.
        view_checkpointing: ``training.view_checkpointing``.
        model: coefficients (default: `load_step_model`).
        compiled: the denoising call is compiled (falls back to the eager fit where no compiled one was measured).
        unet_checkpointing: ``training.unet_checkpointing`` (off: `UNET_CHECKPOINTING_OFF` is applied to a
            full-size model's GPU fit).
        graph_steps: DDIM steps per view that carry a graph (``training.truncation``); default ``steps``.
    """
    model = model or load_step_model()
    fit = _fit_for(model, _family(generator), device_kind, view_checkpointing, compiled)
    if fit is None:
        return None
    scale = views / fit["views"] * steps / fit["steps"]
    seconds = max(fit.get("floor_seconds", 0.0), fit["seconds"][0] + fit["seconds"][1] * batch_size) * scale
    peak = None
    if fit.get("peak_gib"):
        m0, m1 = fit["peak_gib"]
        per_sample = m1 if fit["view_checkpointing"] else m1 * views / fit["views"]
        peak = m0 + per_sample * batch_size
    how = "compiled" if fit.get("compiled", False) else "eager"
    basis = f"{fit['family']} on {fit['device']} ({fit['device_kind']}), view checkpointing {'on' if fit['view_checkpointing'] else 'off'}, {how} denoising call"
    effect = model.get(UNET_CHECKPOINTING_OFF)
    if not unet_checkpointing and effect and fit["family"] == "sd15" and peak is not None:
        held = min(steps, graph_steps if graph_steps is not None else steps) * (1 if view_checkpointing else views)
        peak += effect["extra_peak_gib_per_sample_and_step"] * batch_size * held
        seconds *= effect["seconds_factor"]
        basis += (
            f"; UNet checkpointing off: +{effect['extra_peak_gib_per_sample_and_step']:.2f} GiB per sample and graph step, "
            f"x{effect['seconds_factor']:.2f} time ({effect['device']}, batch {effect['batch_size']})"
        )
    return StepPrediction(seconds, peak, batch_size / seconds, basis, fit.get("compile_seconds", 0.0), fit["device_kind"], fit["device"])


def largest_batch(prediction_at: Any, memory_gib: float, limit: int = 256) -> int:
    """The largest B whose predicted peak fits ``GPU_HEADROOM * memory_gib`` (0 when even B = 1 does not).

    Args:
        prediction_at: ``prediction_at(B) -> StepPrediction``.
        memory_gib: the GPU's memory.
        limit: the largest B considered.
    """
    best = 0
    for batch in range(1, limit + 1):
        peak = prediction_at(batch).peak_gib
        if peak is None or peak > GPU_HEADROOM * memory_gib:
            break
        best = batch
    return best


@dataclass
class RunPlan:
    """The prediction for a configured run on this machine.

    Attributes:
        prediction: the step's predicted cost (None: nothing comparable was measured).
        device: the device the run would use, e.g. ``"cuda:0 (NVIDIA H200, 139.8 GiB)"``.
        memory_gib: the GPU's total memory (None on the CPU).
        largest_batch: the largest ``training.batch_size`` whose predicted peak fits (None on the CPU).
    """

    prediction: StepPrediction | None
    device: str
    memory_gib: float | None
    largest_batch: int | None

    def total_seconds(self, steps: int) -> float | None:
        """Predicted time of ``steps`` training steps: steps x seconds per step, plus the one-time compile
        (None when nothing comparable was measured). Loading weights and the before/after previews are not counted."""
        if self.prediction is None:
            return None
        return steps * self.prediction.seconds + self.prediction.compile_seconds

    def fits(self) -> bool:
        """False when the predicted peak exceeds the GPU's usable memory."""
        if self.prediction is None or self.prediction.peak_gib is None or self.memory_gib is None:
            return True
        return self.prediction.peak_gib <= GPU_HEADROOM * self.memory_gib

    def lines(self, batch_size: int, steps: int | None = None) -> list[str]:
        """What ``texkit train --dry-run`` prints (with ``steps``: also the predicted time of the whole run)."""
        if self.prediction is None:
            return [f"device {self.device}: no measured configuration to predict from (see docs/performance.md)"]
        p = self.prediction
        out = [f"device {self.device}", f"predicted {p.seconds:.1f} s/step at batch_size {batch_size} ({p.samples_per_second:.3f} samples/s)"]
        if steps is not None:
            total = self.total_seconds(steps) or 0.0
            shown = f"{total / 3600:.2f} h" + (f" = {format_duration(total)}" if total >= 2 * 86400 else "")
            how = f"{steps} x {p.seconds:.1f} s" + (f" + {p.compile_seconds:.0f} s compiling" if p.compile_seconds else "")
            kind = "GPU time" if p.device_kind == "cuda" else "time"
            out.append(f"predicted {kind} for {steps} steps: {shown} ({how}; loading and previews not counted)")
        if p.compile_seconds:
            out.append(f"plus about {p.compile_seconds:.0f} s compiling the denoising call once, in the first step")
        if p.peak_gib is not None:
            out.append(f"predicted peak GPU memory {p.peak_gib:.1f} GiB" + (f" of {self.memory_gib:.1f} GiB" if self.memory_gib else ""))
        if self.largest_batch is not None:
            out.append(f"largest batch_size that fits: {self.largest_batch}")
        out.append(f"from measurements of {p.basis}")
        return out


def plan_run(config: Any, device: Any = None) -> RunPlan:
    """Predict the cost of ``config``'s training step on ``device`` (default: the config's) before loading anything.

    Args:
        config: a `texkit.config.RunConfig`.
        device: a ``torch.device``; default: the config's ``device`` resolved here.

    Raises:
        UnknownNameError, ConfigError: the generator or one of its options does not exist.
    """
    import torch

    from texkit.config import camera_angles
    from texkit.devices import resolve_device
    from texkit.registry import get_registry

    device = device or resolve_device(config.device)
    # validating reports a misspelt generator or option here too, in one line, before anything loads
    options = get_registry().validate("generators", config.generator.name, config.generator.options)
    steps = int(getattr(options, "steps", 10))
    views = len(camera_angles(config.cameras.paint)[0])
    training = config.training
    model = load_step_model()  # read once: largest_batch asks for many batch sizes
    kind = device.type
    if kind == "cpu" and config.device == "auto" and predict_step(config.generator.name, "cpu", 1, views, steps, training.view_checkpointing, model) is None:
        kind = "cuda"  # no GPU here and nothing measured on the CPU for this model: predict the GPU the run is meant for
    # a generator option named `compile` (auto/on/off) compiles its denoising call for training on CUDA
    compiled = kind == "cuda" and getattr(options, "compile", "off") in ("auto", "on")

    graph_steps = steps if training.truncation == "all" else int(training.truncation)

    def at(batch: int) -> StepPrediction | None:
        return predict_step(
            config.generator.name, kind, batch, views, steps, training.view_checkpointing, model, compiled, training.unet_checkpointing, graph_steps
        )

    memory = None
    name = str(device)
    if device.type == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(device)
        memory = props.total_memory / 2**30
        name = f"{device} ({props.name}, {memory:.1f} GiB)"
    prediction = at(training.batch_size)
    if kind != device.type and prediction is not None:
        name = f"{device} (no GPU visible here; predicted for a CUDA GPU from measurements on {prediction.measured_on})"
    largest = largest_batch(at, memory) if memory is not None and prediction is not None and prediction.peak_gib is not None else None
    return RunPlan(prediction, name, memory, largest)


def check_fits(config: Any, device: Any) -> None:
    """Stop a run whose texture or render buffers cannot fit (`check_sizes`, any device) or, on CUDA,
    whose predicted peak memory exceeds the GPU, before any weights are loaded.

    Raises:
        ConfigError: a texture or render size that cannot fit.
        DeviceError: one line with the prediction and the largest batch size that fits.
    """
    from texkit.errors import DeviceError

    check_sizes(config, device)
    if getattr(device, "type", "cpu") != "cuda":
        return
    plan = plan_run(config, device)
    if not plan.fits():
        raise DeviceError(
            f"this run needs about {plan.prediction.peak_gib:.0f} GiB of GPU memory but {plan.device} has {plan.memory_gib:.0f} GiB; "
            f"set training.batch_size to {plan.largest_batch or 1} or less" + "".join(
                f", or turn on training.{name}" for name in ("view_checkpointing", "unet_checkpointing") if not getattr(config.training, name)
            )
        )


def format_duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.4 h``, ``2.1 days``, ``3.0 years``."""
    for unit, size in (("years", 365.0 * 86400), ("days", 86400.0), ("h", 3600.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}" if seconds / size < 1e6 else f"{seconds / size:.1e} {unit}"
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def device_memory(device: Any) -> tuple[float, str]:
    """``(bytes, description)`` of the memory a run on ``device`` can use: the GPU's, or the CPU's RAM
    (capped by the process's address-space limit, ``ulimit -v``, when one is set)."""
    import torch

    if getattr(device, "type", "cpu") == "cuda" and torch.cuda.is_available():
        total = float(torch.cuda.get_device_properties(device).total_memory)
        return total, f"{device} has {total / 2**30:.1f} GiB"
    total = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) if hasattr(os, "sysconf") else math.inf
    how = "of RAM"
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY and soft < total:
            total, how = float(soft), "under its address-space limit (ulimit -v)"
    except (ImportError, OSError, ValueError):
        pass
    return total, f"the cpu has {total / 2**30:.1f} GiB {how}"


def _largest_side(per_side_squared: float, budget: float) -> int:
    """The largest power of two ``n >= 16`` with ``n * n * per_side_squared <= budget`` (16 when none is)."""
    side = 16
    while (side * 2) ** 2 * per_side_squared <= budget:
        side *= 2
    return side


def check_sizes(config: Any, device: Any, batch: int = 1) -> None:
    """Refuse a texture or render size whose own buffers alone exceed the device's memory.

    A lower bound only (`TEXEL_BYTES` per texel, `PIXEL_BYTES` per reward-view pixel, times ``batch``
    samples): a size refused here cannot run on ``device`` whatever else happens, e.g.
    ``texture.size = 1000000`` (33 TiB for the texture alone). Nothing is allocated.

    Raises:
        ConfigError: one line with the size, what it needs, what the device has, and the largest
            power-of-two size whose buffers take at most half of it.
    """
    from texkit.config import camera_angles
    from texkit.errors import ConfigError

    memory, has = device_memory(device)
    tex = config.texture
    views = len(camera_angles(config.cameras.reward)[0])
    buffers = (  # (key, side, bytes per texel or pixel of one sample, what they hold)
        ("texture.size", tex.size, TEXEL_BYTES, f"the texture alone ({TEXEL_BYTES} bytes per texel"),
        ("texture.render_size", tex.render_size, PIXEL_BYTES * views, f"its {views} reward render(s) alone ({PIXEL_BYTES} bytes per pixel and view"),
    )
    for key, side, per_unit, what in buffers:
        per_sample = float(side) ** 2 * per_unit
        if per_sample * batch <= memory:
            continue
        need = f"needs at least {per_sample * batch / 2**30:,.0f} GiB for {what} x {batch} sample(s)) but {has}"
        if batch > 1 and per_sample <= memory / 2:  # one sample fits: the batch is what is too big
            raise ConfigError(f"{key} {side} at training.batch_size {batch} {need}; set training.batch_size to {int(memory / 2 // per_sample)} or less")
        raise ConfigError(f"{key} {side} {need}; set {key} to {_largest_side(per_unit, memory / 2)} or less")


def check_duration(plan: RunPlan, config: Any) -> None:
    """Refuse a run predicted to take longer than `MAX_RUN_DAYS` (one training step, or all of them).

    Raises:
        ConfigError: one line with the predicted time and the setting to lower.
    """
    from texkit.config import camera_angles
    from texkit.errors import ConfigError

    if plan.prediction is None:
        return
    seconds = plan.prediction.seconds
    steps = config.training.steps
    limit = MAX_RUN_DAYS * 86400
    if seconds > limit:
        denoising = config.generator.options.get("steps", "the default number of")
        views = len(camera_angles(config.cameras.paint)[0])
        raise ConfigError(
            f"one training step is predicted to take {format_duration(seconds)} ({denoising} denoising steps per view x {views} view(s) "
            f"x training.batch_size {config.training.batch_size}); set generator.options.steps, the painting views or the batch size lower"
        )
    if seconds * steps > limit:
        most = int(limit // seconds)
        raise ConfigError(
            f"training.steps {steps} is predicted to take {format_duration(seconds * steps)} at {seconds:.1f} s/step; "
            f"set training.steps to {most} or less (about {MAX_RUN_DAYS:.0f} days)"
        )
