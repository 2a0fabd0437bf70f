"""Time, peak memory and FLOPs of one full fine-tuning step of the method (texkit.training.Trainer).

The step is the trainer's own ``train_step``: draw a prompt and seeds, paint the texture view by view
(render -> depth-aware inpainting ControlNet + SD 1.5, 10 DDIM steps, CFG 7.5 -> back-project into a
1024 px UV texture), render the reward views, reward = curvature_color + symmetry (geometry rewards
that need no weights), backward through every denoising step of every view into the LoRA weights and
the learnable painting-camera angles, AdamW step.

The generator is the registry's ``stable-diffusion`` factory reading a diffusers-format folder into
which full-size SD 1.5 + ControlNet components with *random* weights were saved first
(``full_size_components`` of ``bench_generator.py``: same FLOPs and memory as the real model).
Configurations: painting path ``front_short`` (6 views) and ``front_long`` (12 views), each with
per-view gradient checkpointing (``training.view_checkpointing``) on and off; the reward path is
``tilted_short`` (6 views); UNet/ControlNet checkpointing stays on (the method's reference setting).

Per configuration: one timed step (CUDA-synchronised wall clock; the first configuration gets an
untimed warm-up step before it) with its peak memory (``torch.cuda.max_memory_allocated``), then a
step under :class:`GlobalFlopCounter` (torch's FLOP formulas, ``torch.utils.flop_counter``, for the
matmul/conv/attention ops the step executes, recomputation included; unlike ``FlopCounterMode`` it keeps no
per-module bookkeeping, whose backward hooks hold every module output alive and ran an 80 GB GPU out of
memory). Achieved fraction of peak = FLOPs / seconds / the GPU's dense
fp16/bf16 tensor-core peak (:data:`DENSE_PEAK_TFLOPS`). A configuration that runs out of GPU memory
is recorded as such; one that would overrun ``--budget-seconds`` is skipped and says so.

    python benchmarks/gpu/bench_training.py            # on a CUDA machine (prints one JSON object)
    python benchmarks/gpu/bench_training.py --tiny     # CPU smoke test: tiny model, small sizes
    python benchmarks/gpu/bench_training.py --paths front_long > b.json     # one path per call
    python benchmarks/gpu/bench_training.py --merge a.json b.json           # one record from both
    python benchmarks/gpu/bench_training.py --paths front_short --batch-size 1,2,4,8,16 --view-checkpointing on

With ``--batch-size`` each configuration is measured at every batch size (``training.batch_size``
switched on the built trainer: B samples share every generator call). FLOPs are counted at the
first two batch sizes of a configuration and extrapolated linearly in B for the others (a step's
FLOPs are affine in B: everything but the shared render geometry scales with the samples); rows
say which (``flops_extrapolated``). After an out-of-memory error the larger batch sizes of that
configuration are skipped.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generator import full_size_components  # noqa: E402

#: Dense (no sparsity) fp16/bf16 tensor-core peak in TFLOP/s, by a substring of the device name.
#: H100 SXM: 989 (NVIDIA H100 datasheet); H200 is the same GH100 chip at the same clocks; H100 PCIe: 756.
DENSE_PEAK_TFLOPS: list[tuple[str, float]] = [
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("A100", 312.0),
]

#: (painting path, reward path) pairs measured, each with view checkpointing on and off.
PATHS = [("front_short", "tilted_short"), ("front_long", "tilted_short")]


class GlobalFlopCounter(TorchDispatchMode):
    """Count the FLOPs of every op run inside the context, as one total (no per-module breakdown).

    It applies the FLOP formulas that ``torch.utils.flop_counter.FlopCounterMode`` uses (the module-level
    ``flop_registry``: mm, addmm, bmm, baddbmm, convolution and its backward, the SDPA kernels and their
    backwards), counting 2 FLOPs per multiply-add. ``FlopCounterMode`` also tracks which module each op
    belongs to, through backward hooks that keep a reference to every module's output tensors until the
    context ends; on a training step with activation checkpointing that retains all activations. This
    counter keeps nothing, so the step runs in the memory it normally needs.

    Attributes:
        total: FLOPs counted so far.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        formula = flop_registry.get(getattr(func, "_overloadpacket", None))
        if formula is None:
            # a composite op without a formula may decompose into ops that have one (as FlopCounterMode does)
            with self:
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        out = func(*args, **kwargs)
        if formula is not None:
            self.total += int(formula(*args, **kwargs, out_val=out))
        return out


def dense_peak_tflops(device_name: str) -> float | None:
    """The dense fp16/bf16 peak (TFLOP/s) of a GPU by name, or None when it is not in the table."""
    for key, peak in DENSE_PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return peak
    return None


def save_components(components: dict[str, Any], folder: Path) -> tuple[str, str]:
    """Write components in the diffusers folder layout the ``stable-diffusion`` factory reads.

    Args:
        components: unet, controlnet, vae, text_encoder, tokenizer, scheduler.
        folder: target; gets unet/, vae/, text_encoder/, tokenizer/, scheduler/ and controlnet/.

    Returns:
        (model folder, controlnet folder) as strings for ``generator.options``.
    """
    for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler", "controlnet"):
        components[name].save_pretrained(folder / name)
    return str(folder), str(folder / "controlnet")


def choose_renderer(preferred: str, device: torch.device) -> tuple[str, str]:
    """``preferred`` if it builds and renders a small mesh on ``device``, else ``torch``; with the reason."""
    if preferred == "torch":
        return "torch", "asked for"
    import texkit
    from texkit.cameras import Cameras
    from texkit.geometry.primitives import load_mesh

    try:
        renderer = texkit.get_registry().make_renderer(preferred)
        mesh = load_mesh("sphere").to(device)
        texture = torch.rand(16, 16, 3, device=device)
        renderer.render(mesh, texture, Cameras.orbit(1, device=device), 32)
        return preferred, "ok"
    except Exception as err:  # missing extension, no CUDA, build failure: fall back and say why
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return "torch", f"{preferred} failed ({type(err).__name__}: {first[:200]})"


def run_config(
    data: dict[str, Any],
    paint_path: str,
    reward_path: str,
    precision: str,
    renderer: str,
    paint_views: int | None = None,
) -> dict[str, Any]:
    """A RunConfig dict for one painting path (view checkpointing is switched on the built trainer).

    ``paint_views`` keeps only the first views of the painting path (e.g. 1 for a cheap profile).
    """
    from texkit.cameras import CAMERA_PRESETS

    cfg = json.loads(json.dumps(data))
    for which, name in (("paint", paint_path), ("reward", reward_path)):
        # explicit float lists: Session.build makes int tensors of the integer presets, which cannot learn
        elevation, azimuth = CAMERA_PRESETS[name]
        if which == "paint" and paint_views:
            elevation, azimuth = elevation[:paint_views], azimuth[:paint_views]
        cfg["cameras"][which] = {"elevation": [float(e) for e in elevation], "azimuth": [float(a) for a in azimuth]}
    cfg["training"]["mixed_precision"] = precision
    cfg["renderer"] = {"name": renderer}
    return cfg


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def timed_step(trainer: Any, count_flops: bool) -> dict[str, Any]:
    """One ``trainer.train_step()``: seconds, peak memory, loss; FLOPs when ``count_flops``."""
    device = trainer.session.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    if count_flops:
        counter = GlobalFlopCounter()
        with counter:
            metrics = trainer.train_step()
    else:
        metrics = trainer.train_step()
    _sync(device)
    out: dict[str, Any] = {
        "seconds": time.perf_counter() - start,
        "loss": metrics["loss"],
        "loss_finite": math.isfinite(metrics["loss"]),
        "grad_norm": metrics.get("grad_norm"),
        "skipped": metrics.get("skipped"),
    }
    if device.type == "cuda":
        out["peak_allocated_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        out["peak_reserved_gib"] = torch.cuda.max_memory_reserved(device) / 2**30
    if count_flops:
        out["flops"] = counter.total
    return out


def profile_step(trainer: Any, rows: int = 25) -> dict[str, Any]:
    """One ``train_step`` under ``torch.profiler``: where the time goes.

    Args:
        trainer: the built trainer (warmed up).
        rows: how many ops to list, by self device time (CUDA) or self CPU time.

    Returns:
        dict: ``wall_seconds`` of the profiled step, ``device_busy_seconds`` (sum of the self time of
        every device kernel; far below the wall time means the GPU waits on the host), ``op_calls``
        (aten op calls on the host), ``top_ops`` (name, calls, self device ms, self CPU ms) and
        ``summary`` (`profile_summary.summarize`: kernel time by op family and by phase, busy time
        as the union of kernel intervals, host gaps). The profiler's own table goes to stderr.
    """
    from profile_summary import annotate_phases, summarize
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    device = trainer.session.device
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    _sync(device)
    start = time.perf_counter()
    with annotate_phases(trainer), profile(activities=activities) as prof:
        trainer.train_step()
        _sync(device)
    wall = time.perf_counter() - start
    averages = prof.key_averages()
    sort_key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(averages.table(sort_by=sort_key, row_limit=rows), file=sys.stderr)
    ranked = sorted(averages, key=lambda e: getattr(e, sort_key), reverse=True)[:rows]
    return {
        "wall_seconds": wall,
        # kernels only: an aten op's self device time repeats the time of the kernels it launched
        "device_busy_seconds": sum(
            e.self_device_time_total for e in averages if e.device_type == DeviceType.CUDA and not e.is_user_annotation
        )
        / 1e6,
        "op_calls": sum(e.count for e in averages if e.key.startswith("aten::")),
        "top_ops": [
            {
                "name": e.key,
                "calls": e.count,
                "self_device_ms": e.self_device_time_total / 1e3,
                "self_cpu_ms": e.self_cpu_time_total / 1e3,
            }
            for e in ranked
        ],
        "summary": summarize(prof, wall),
    }


def count_view_flops(trainer: Any, batch_size: int, checkpointing: bool, vae_checkpointing: str, unet_checkpointing: str) -> dict[str, float]:
    """FLOPs of one painted view per sample, as executed (with these recomputation settings) and as needed.

    Runs two FLOP-counted steps with only the first painting camera (eager: the counting dispatch
    mode does not see compiled kernels): one with the given checkpointing settings (executed FLOPs)
    and one with view, UNet/ControlNet and VAE checkpointing all off (needed: forward + backward,
    nothing recomputed). A step's FLOPs are views x samples x these per-view numbers (FLOPs are
    linear in views and in the batch; the reward render and rewards add no matrix products).

    Returns:
        ``{"executed_per_view", "needed_per_view", "ratio"}`` (FLOPs per painted view and sample).
    """
    generator = trainer.session.generator
    angles = trainer.session.angles
    saved = {k: angles[k] for k in ("paint_elevation", "paint_azimuth")}
    compile_mode = generator.denoiser.compile_mode
    config = trainer.config.training
    before = (config.view_checkpointing, config.batch_size, generator.checkpointing)
    vae = generator.vae
    try:
        for k, v in saved.items():
            angles[k] = v.detach()[:1].clone().requires_grad_(v.requires_grad)
        generator.set_compile("off")
        config.batch_size = batch_size
        out: dict[str, float] = {}
        for label, view, unet, vae_on in (("executed", checkpointing, unet_checkpointing == "on", vae_checkpointing == "on"), ("needed", False, False, False)):
            config.view_checkpointing = view
            generator.set_checkpointing(unet)
            vae.enable_gradient_checkpointing() if vae_on else vae.disable_gradient_checkpointing()
            counted = timed_step(trainer, count_flops=True)
            out[f"{label}_per_view"] = counted["flops"] / batch_size
            _free(trainer.session.device)
        out["ratio"] = out["executed_per_view"] / out["needed_per_view"]
        return out
    finally:
        angles.update(saved)
        config.view_checkpointing, config.batch_size = before[0], before[1]
        generator.set_checkpointing(before[2])
        vae.enable_gradient_checkpointing() if vae_checkpointing == "on" else vae.disable_gradient_checkpointing()
        generator.set_compile(compile_mode)
        trainer.optimizer.zero_grad(set_to_none=True)


def attention_records(generator: Any) -> list[dict[str, Any]]:
    """The tuned attention table of ``generator`` (every shape seen, each kernel's timings), or []."""
    try:
        from texkit_diffusers.attention_tuning import attention_table
    except ImportError:
        return []
    table = attention_table(generator.unet) if hasattr(generator, "unet") else None
    return table.as_records() if table is not None else []


def measure(trainer: Any, checkpointing: bool, warmup: bool, count_flops: Any, batch_size: int = 1) -> dict[str, Any]:
    """Warm-up step (when ``warmup``), timed step, then a FLOP-counted step (when ``count_flops()`` says so).

    Args:
        trainer: the built trainer.
        checkpointing: ``training.view_checkpointing`` for these steps.
        warmup: run one untimed step first (kernel selection, allocator growth, extension builds).
        count_flops: called with the timed step's seconds; True runs the FLOP-counted step.
        batch_size: ``training.batch_size`` for these steps.

    Returns:
        The result row; an out-of-memory error ends the configuration and is recorded with its stage.
    """
    trainer.config.training.view_checkpointing = checkpointing
    trainer.config.training.batch_size = batch_size
    row: dict[str, Any] = {"view_checkpointing": checkpointing, "batch_size": batch_size}
    stage = "warm-up step"
    try:
        if warmup:  # its loss and gradient norm compare settings before any optimizer step (first row of a process)
            first = timed_step(trainer, count_flops=False)
            row.update({"warmup_seconds": first["seconds"], "warmup_loss": first["loss"], "warmup_grad_norm": first["grad_norm"]})
        stage = "timed step"
        row.update({k: v for k, v in timed_step(trainer, count_flops=False).items() if v is not None})
        if count_flops(row["seconds"]):
            stage = "flop-count step"
            counted = timed_step(trainer, count_flops=True)
            row["flops"] = counted["flops"]
            row["flop_step_seconds"] = counted["seconds"]
    except torch.OutOfMemoryError as err:
        row["error"] = f"out of memory in the {stage}: {str(err).strip().splitlines()[0][:240]}"
        if trainer.session.device.type == "cuda":
            row["peak_allocated_gib_at_error"] = torch.cuda.max_memory_allocated(trainer.session.device) / 2**30
        trainer.optimizer.zero_grad(set_to_none=True)
    _free(trainer.session.device)
    return row


def set_memory_format(generator: Any, choice: str) -> str:
    """Put the built generator's UNet, ControlNet and VAE in layout ``choice`` (option ``memory_format``)."""
    generator.set_memory_format(choice)
    return generator.memory_format


def set_merge_lora(generator: Any, on: bool) -> None:
    """Switch the generator's merged-LoRA forward (option ``merge_lora``) on the built generator."""
    from texkit_diffusers.lora import MergedLoRA

    if generator.merged_lora is not None:
        generator.merged_lora.clear()
    generator.merged_lora = MergedLoRA(generator.unet) if on else None


def set_compile(generator: Any, mode: str) -> float:
    """Switch the generator's compile option on the built generator; returns its compile seconds so far.

    The compiled function is kept while the mode stays the same (its compiled shapes stay cached), so
    the compile seconds of a configuration are the difference to the returned value.
    """
    if getattr(generator, "denoiser", None) is None:
        return 0.0
    generator.set_compile(mode)
    return generator.denoiser.compile_seconds


def versions() -> dict[str, str]:
    """Versions of the packages the step runs on."""
    out = {"python": platform.python_version(), "torch": torch.__version__, "cuda": str(torch.version.cuda)}
    for dist in (
        "diffusers",
        "transformers",
        "peft",
        "diffrp-nvdiffrast",
        "texkit",
        "texkit-diffusers",
        "texkit-nvdiffrast",
        "texkit-rewards-geometry",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def base_config(
    model_dir: str, controlnet_dir: str, resolution: int, steps: int, texture_size: int, attention: str, mesh: str, device: str, out: str
) -> dict[str, Any]:
    """The benchmark's run config (before `run_config` sets the cameras, precision and renderer).

    Generator ``stable-diffusion`` from ``model_dir``/``controlnet_dir``, CFG 7.5, ``steps`` DDIM steps,
    learnable painting cameras, rewards curvature_color + symmetry, truncation all, UNet checkpointing on.
    ``compile`` is ``off`` here: the benchmark switches it per configuration on the built generator.
    """
    options: dict[str, Any] = {
        "model": model_dir,
        "controlnet": controlnet_dir,
        "resolution": resolution,
        "steps": steps,
        "guidance_scale": 7.5,
        "attention": attention,
        "compile": "off",  # switched per configuration on the built generator (set_compile)
    }
    return {
        "mesh": {"path": mesh},
        "prompts": {"text": ["a cow with brown and white patches", "a cow made of polished marble"]},
        "generator": {"name": "stable-diffusion", "options": options},
        "cameras": {"learn": ["paint"]},
        "texture": {"size": texture_size, "render_size": resolution},
        "rewards": {"curvature_color": {"weight": 1.0}, "symmetry": {"weight": 1.0}},
        "training": {"steps": 2, "truncation": "all", "unet_checkpointing": True, "before_after": False},
        "output": {"dir": out},
        "device": device,
    }


def default_mesh() -> str:
    """cow.obj of the shared assets (beside the repository, or the carried .assets), else the demo mesh."""
    root = Path(__file__).resolve().parents[2]
    for candidate in (root.parent / "shared" / "assets" / "cow.obj", root / ".assets" / "cow.obj"):
        if candidate.exists():
            return str(candidate)
    return "demo"


def read_records(names: list[str]) -> list[dict[str, Any]]:
    """The records in ``names`` for `merge_records`, each row tagged with the file it came from (``source``).

    A file that is not one JSON object is read as the stderr log of a run stopped before it printed
    its record (a device's time limit): its result rows (the JSON lines the script prints as it goes)
    become a record with the header of the first complete record, and a note says so.
    """
    records, partial = [], []
    for name in names:
        text = Path(name).read_text()
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            rows = [json.loads(line) for line in text.splitlines() if line.startswith("{") and '"paint_path"' in line]
            partial.append((Path(name).name, rows))
            continue
        for r in record["results"]:
            r.setdefault("source", Path(name).name)
        records.append(record)
    if partial and not records:
        raise SystemExit("--merge: a log alone has no record header; pass at least one complete JSON record")
    for name, rows in partial:
        header = {k: v for k, v in records[0].items() if k not in ("results", "notes", "runs")}
        for r in rows:
            r.setdefault("source", name)
        note = f"rows of {name} were read from its log: the process was stopped at the time limit before printing its record"
        records.append({**header, "results": rows, "notes": [note], "setup_seconds": 0.0, "total_seconds": 0.0})
    return records


def merge_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One record from several runs on the same device (e.g. one painting path per call of a time-limited machine).

    Args:
        records: JSON records printed by this script, in order; later rows replace earlier rows of the
            same (painting path, view checkpointing).

    Returns:
        The first record with the union of the result rows, the notes of all and the summed seconds.

    Raises:
        ValueError: when the records come from different devices or model configurations.
    """
    merged = json.loads(json.dumps(records[0]))
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["paint_path"], r["view_checkpointing"], r.get("batch_size", 1), r.get("compile", "off"), r.get("vae_checkpointing", "on"), r.get("mesh", merged.get("mesh")), r.get("merge_lora", "off"), r.get("unet_checkpointing", "on"))

    for r in merged["results"]:
        r.setdefault("mesh", merged.get("mesh"))
    rows = {key(r): r for r in merged["results"]}
    for record in records[1:]:
        for field in ("device", "config", "diffusion_resolution", "texture_size", "ddim_steps"):
            if record[field] != merged[field]:
                raise ValueError(f"cannot merge runs with different {field}: {record[field]!r} != {merged[field]!r}")
        for r in record["results"]:
            r.setdefault("mesh", record.get("mesh"))
        rows.update({key(r): r for r in record["results"]})
        merged["notes"] += [n for n in record["notes"] if n not in merged["notes"]]
        merged["total_seconds"] += record["total_seconds"]
        merged["setup_seconds"] += record["setup_seconds"]
    merged["results"] = list(rows.values())

    def flop_key(r: dict[str, Any]) -> tuple[Any, ...]:
        """Rows whose steps do the same arithmetic: compiling fuses kernels but computes the same products."""
        return (r["paint_path"], r["view_checkpointing"], r["mesh"], r.get("vae_checkpointing", "on"), r.get("unet_checkpointing", "on"))

    counted: dict[tuple[Any, ...], list[tuple[int, float]]] = {}
    for r in merged["results"]:
        if "flops" in r and not r.get("flops_extrapolated"):
            counted.setdefault(flop_key(r), []).append((r.get("batch_size", 1), r["flops"]))
    peak = merged.get("dense_fp16_peak_tflops")
    for r in merged["results"]:
        points = sorted(counted.get(flop_key(r), []))
        if "seconds" in r and "flops" not in r and len(points) >= 2:
            (b0, f0), (b1, f1) = points[0], points[-1]
            r["flops"] = f0 + (f1 - f0) * (r.get("batch_size", 1) - b0) / (b1 - b0)
            r["flops_extrapolated"] = True
    for r in merged["results"]:  # rows read from logs lack the derived numbers
        if "seconds" in r:
            r["samples_per_second"] = r.get("batch_size", 1) / r["seconds"]
            if "flops" in r:
                r["tflops_per_second"] = r["flops"] / r["seconds"] / 1e12
                if peak:
                    r["fraction_of_dense_peak"] = r["tflops_per_second"] / peak
    merged["runs"] = len(records)
    return merged


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark (or ``--merge`` earlier records), print and return its JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        help="print one record merged from these JSON files (or stderr logs of runs stopped before printing); runs nothing",
    )
    parser.add_argument("--notes-file", default=None, help="with --merge: add each line of this file to the record's notes")
    parser.add_argument("--tiny", action="store_true", help="tiny random model, small sizes, on the CPU (smoke test)")
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    parser.add_argument("--mesh", default=None, help="default: ../shared/assets/cow.obj, else the demo mesh")
    parser.add_argument("--model", default=None, help="a saved random full-size model folder (bench_scaling.py --prepare) instead of saving one")
    parser.add_argument("--renderer", default="nvdiffrast", help="falls back to torch when it fails")
    parser.add_argument(
        "--precision",
        default=None,
        choices=["no", "fp32", "fp16", "bf16"],
        help="training.mixed_precision (default fp16; fp32 with --tiny)",
    )
    parser.add_argument(
        "--attention",
        default="auto",
        choices=["auto", "xformers", "sdpa"],
        help="generator option attention (auto: fastest SDPA kernel per shape; the FLOP formulas cover every SDPA kernel, not xformers')",
    )
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default 10; 2 with --tiny)")
    parser.add_argument(
        "--texture-size", type=int, default=None, help="UV texture size (default 1024; 128 with --tiny)"
    )
    parser.add_argument("--paths", default="front_short,front_long", help="painting paths to measure")
    parser.add_argument(
        "--view-checkpointing",
        default="on,off",
        help="which per-view checkpointing settings to measure: on, off or on,off",
    )
    parser.add_argument(
        "--paint-views", type=int, default=None, help="keep only the first K views of each painting path"
    )
    parser.add_argument("--batch-size", default="1", help="training.batch_size values to measure, e.g. 1,2,4,8,16")
    parser.add_argument("--batch-size-on", default=None, help="batch sizes with view checkpointing on (default: --batch-size)")
    parser.add_argument("--batch-size-off", default=None, help="batch sizes with view checkpointing off (default: --batch-size)")
    parser.add_argument(
        "--flop-batch-sizes",
        default=None,
        help="count FLOPs only at these batch sizes (default: the first two of each configuration); others are extrapolated",
    )
    parser.add_argument(
        "--vae-checkpointing",
        default="on",
        help="gradient checkpointing inside the VAE: on, off or on,off (off: per-view checkpointing already recomputes the view)",
    )
    parser.add_argument(
        "--unet-checkpointing",
        default="on",
        help="gradient checkpointing inside UNet and ControlNet (training.unet_checkpointing): on, off or on,off",
    )
    parser.add_argument(
        "--memory-format",
        default="contiguous",
        help="generator option memory_format (convolution layout): auto, channels_last, contiguous or a list such as contiguous,channels_last",
    )
    parser.add_argument(
        "--cpp-wrapper",
        default="off",
        help="generator option cpp_wrapper (compiled kernels launched from C++, with compile on): off, on or on,off",
    )
    parser.add_argument(
        "--merge-lora",
        default="on",
        help="generator option merge_lora (merged LoRA weights once per view): on, off or on,off",
    )
    parser.add_argument(
        "--compile",
        default="off",
        help="generator option compile (torch.compile of the denoising call): off, on, auto or a list such as off,on; "
        "every compiled configuration gets its own warm-up step (each batch size is a new static shape)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile one more step of the first configuration (torch.profiler)"
    )
    parser.add_argument(
        "--profile-at",
        default="",
        help="also profile one more step of these rows, as COMPILE@BATCH pairs, e.g. on@1,on@11",
    )
    parser.add_argument(
        "--view-flops",
        action="store_true",
        help="count executed and needed FLOPs per painted view (1 view, eager) for each checkpointing setting, and give every row its needed FLOPs",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default 1 with --tiny: a busy CPU slows multi-threaded tiny ops 10-100x)",
    )
    parser.add_argument(
        "--budget-seconds", type=float, default=420.0, help="skip configurations that would end after this"
    )
    args = parser.parse_args(argv)
    if args.merge:
        record = merge_records(read_records(args.merge))
        if args.notes_file:
            record["notes"] += [line for line in Path(args.notes_file).read_text().splitlines() if line.strip()]
        print(json.dumps(record, indent=2))
        return record
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or (1 if args.tiny else threads))
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark proper (see :func:`main`)."""

    from rich.console import Console

    from texkit.cameras import CAMERA_PRESETS
    from texkit.config import parse_config
    from texkit.training import Trainer

    began = time.perf_counter()
    device = torch.device(args.device or ("cpu" if args.tiny else "cuda"))
    precision = args.precision or ("fp32" if args.tiny else "fp16")
    steps = args.steps or (2 if args.tiny else 10)
    resolution, texture_size = (64, 128) if args.tiny else (512, 1024)
    texture_size = args.texture_size or texture_size
    renderer, renderer_reason = choose_renderer(args.renderer, device)
    print(f"renderer {renderer} ({renderer_reason})", file=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="texkit-bench-training-"))
    torch.manual_seed(0)
    if args.model:
        model_dir, controlnet_dir = args.model, str(Path(args.model) / "controlnet")
    else:
        if args.tiny:
            from texkit_diffusers.tiny import build_tiny_components

            components = build_tiny_components(0)
        else:
            with torch.device(device):  # random init on the GPU: much faster than on the CPU
                components = full_size_components()
            for name in ("unet", "controlnet", "vae", "text_encoder"):
                components[name].half()  # half the bytes to write and read; the factory loads them as fp16
        model_dir, controlnet_dir = save_components(components, work / "sd15-random")
        del components
    _free(device)
    setup_seconds = time.perf_counter() - began
    print(f"components in {model_dir} ({setup_seconds:.1f} s)", file=sys.stderr)
    base = base_config(model_dir, controlnet_dir, resolution, steps, texture_size, args.attention, args.mesh or default_mesh(), str(device), str(work / "run"))
    console = Console(stderr=True)
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    attention = None
    seconds_per_view: float | None = None
    flop_overhead = 2.0  # FLOP-counted step time / plain step time; updated from the first measurement
    switches = [{"on": True, "off": False}[word] for word in args.view_checkpointing.split(",") if word]
    def sizes(spec: str | None) -> list[int]:
        return [int(b) for b in (spec or args.batch_size).split(",") if b]

    batch_sizes = {True: sizes(args.batch_size_on), False: sizes(args.batch_size_off)}
    flop_sizes = set(sizes(args.flop_batch_sizes)) if args.flop_batch_sizes else None
    if any(mode not in ("off", "on", "auto") for mode in args.compile.split(",") if mode):
        raise SystemExit("--compile: off, on, auto or a comma-separated list of them")
    if any(word not in ("off", "on") for word in args.cpp_wrapper.split(",")):
        raise SystemExit("--cpp-wrapper: off, on or a comma-separated list of them")
    pending = [
        (path, checkpointing, batch, vae, merge, unet, compile_mode, layout, cpp)
        for path in args.paths.split(",")
        if path
        for compile_mode in args.compile.split(",")
        if compile_mode
        for cpp in args.cpp_wrapper.split(",")
        for layout in args.memory_format.split(",")
        for unet in args.unet_checkpointing.split(",")
        for merge in args.merge_lora.split(",")
        for vae in args.vae_checkpointing.split(",")
        for checkpointing in switches
        for batch in batch_sizes[checkpointing]
    ]
    # (path, view checkpointing, VAE checkpointing, UNet checkpointing) -> [(B, FLOPs)]: recomputation changes FLOPs
    flops_seen: dict[tuple[str, bool, str, str], list[tuple[int, float]]] = {}
    if args.vae_checkpointing not in ("on", "off", "on,off", "off,on"):
        raise SystemExit("--vae-checkpointing: on, off or on,off")
    out_of_memory: set[tuple[str, bool, str, str]] = set()
    profile_at = {(pair.split("@")[0], int(pair.split("@")[1])) for pair in args.profile_at.split(",") if pair}
    view_flops: dict[tuple[str, bool, str, str], dict[str, float]] = {}
    attention_kernels: list[dict[str, Any]] = []
    trainer, built_for, build_seconds = None, None, 0.0
    last_memory_format = None
    while pending:
        paint_path, checkpointing, batch, vae_checkpointing, merge_lora, unet_checkpointing, compile_mode, layout, cpp_wrapper = pending[0]
        config_key = (paint_path, checkpointing, vae_checkpointing, unet_checkpointing)
        reward_path = dict(PATHS).get(paint_path, "tilted_short")
        views = len(CAMERA_PRESETS[paint_path][0][: args.paint_views or None])
        if built_for != (paint_path, precision):
            trainer = None
            _free(device)
            build_start = time.perf_counter()
            trainer = Trainer(
                parse_config(run_config(base, paint_path, reward_path, precision, renderer, args.paint_views)),
                work / "run",
                console,
            )
            build_seconds, built_for = time.perf_counter() - build_start, (paint_path, precision)
            attention = trainer.session.generator.attention_backend
        trainer.session.generator.set_checkpointing(unet_checkpointing == "on")  # UNet, ControlNet (and VAE, set next)
        vae = trainer.session.generator.vae
        vae.enable_gradient_checkpointing() if vae_checkpointing == "on" else vae.disable_gradient_checkpointing()
        set_merge_lora(trainer.session.generator, merge_lora == "on")
        memory_format = set_memory_format(trainer.session.generator, layout)
        trainer.session.generator.set_cpp_wrapper(cpp_wrapper == "on")  # a change starts a new compiled call
        compiled_before = set_compile(trainer.session.generator, compile_mode)
        row: dict[str, Any] = {
            "paint_path": paint_path,
            "paint_views": views,
            "reward_path": reward_path,
            "reward_views": len(CAMERA_PRESETS[reward_path][0]),
        }
        row.update({"mixed_precision": precision, "build_seconds": build_seconds, "compile": compile_mode, "vae_checkpointing": vae_checkpointing, "merge_lora": merge_lora, "unet_checkpointing": unet_checkpointing, "memory_format": memory_format, "cpp_wrapper": cpp_wrapper})
        seen = flops_seen.setdefault(config_key, [])
        estimate = (seconds_per_view or 0.0) * views * (1.0 + 0.1 * (batch - 1))
        left = args.budget_seconds - (time.perf_counter() - began)
        if config_key in out_of_memory:
            row.update({"view_checkpointing": checkpointing, "batch_size": batch, "error": "skipped: a smaller batch ran out of memory"})
        elif seconds_per_view is not None and estimate > left:
            row.update(
                {
                    "view_checkpointing": checkpointing,
                    "batch_size": batch,
                    "error": f"skipped: a step takes about {estimate:.0f} s, {left:.0f} s of the budget left",
                }
            )
        else:
            first = seconds_per_view is None

            def count_flops(
                seconds: float, first: bool = first, overhead: float = flop_overhead, seen: list = seen, batch: int = batch, compile_mode: str = compile_mode
            ) -> bool:
                """FLOPs are counted at the first two batch sizes of a configuration (if it fits the budget)."""
                if compile_mode != "off" or args.view_flops:  # compiled kernels bypass the counting mode; --view-flops counts per view
                    return False
                fits = overhead * seconds < args.budget_seconds - (time.perf_counter() - began)
                if flop_sizes is not None:
                    return batch in flop_sizes and fits
                return first or (len(seen) < 2 and fits)

            if args.view_flops and config_key not in view_flops:
                try:
                    view_flops[config_key] = count_view_flops(trainer, 1, checkpointing, vae_checkpointing, unet_checkpointing)
                except torch.OutOfMemoryError as err:
                    view_flops[config_key] = {"error": f"out of memory: {str(err).strip().splitlines()[0][:200]}"}
                    trainer.optimizer.zero_grad(set_to_none=True)
                    _free(device)
                print(json.dumps({"view_flops": list(config_key), **view_flops[config_key]}), file=sys.stderr)
            if device.type == "cuda":
                row["allocated_before_gib"] = torch.cuda.memory_allocated(device) / 2**30
            # a compiled configuration compiles in its first step (a new static shape): warm it up too; so
            # does a new memory layout (cuDNN's algorithm search runs at the first call of each shape)
            warm_up = first or compile_mode != "off" or memory_format != last_memory_format
            last_memory_format = memory_format
            from texkit.compile_cache import cache_counts

            counts_before = cache_counts()
            row.update(measure(trainer, checkpointing, warm_up, count_flops, batch))
            cache_delta = cache_counts() - counts_before
            if compile_mode != "off":
                row["compile_cache"] = {"hits": cache_delta.hits, "misses": cache_delta.misses, "bypasses": cache_delta.bypasses, "said": cache_delta.describe()}
            per_view = view_flops.get(config_key, {})
            if "needed_per_view" in per_view and "seconds" in row:
                row["needed_flops"] = per_view["needed_per_view"] * views * batch
                if "flops" not in row and count_flops is not None:
                    row["flops"] = per_view["executed_per_view"] * views * batch
                    row["flops_from_view_count"] = True
            denoiser = getattr(trainer.session.generator, "denoiser", None)
            if denoiser is not None and compile_mode != "off":
                row["compile_seconds"] = denoiser.compile_seconds - compiled_before
                row["compile_reason"] = denoiser.reason
            if "flops" in row:
                seen.append((batch, row["flops"]))
            elif "seconds" in row and len(seen) >= 2:
                (b0, f0), (b1, f1) = seen[0], seen[1]
                row["flops"] = f0 + (f1 - f0) * (batch - b0) / (b1 - b0)
                row["flops_extrapolated"] = True
            elif "seconds" in row and len(seen) == 1:
                b0, f0 = seen[0]
                row["flops"] = f0 * batch / b0
                row["flops_extrapolated"] = True
            if "out of memory" in row.get("error", ""):
                out_of_memory.add(config_key)
            describe = getattr(trainer.session.generator, "describe", None)
            if describe is not None:
                row["generator"] = describe()
            if "error" not in row and ((first and args.profile) or (compile_mode, batch) in profile_at):
                print(json.dumps({**row, "before_profile": True}, default=str), file=sys.stderr, flush=True)  # kept if the profile is cut off
                trainer.config.training.view_checkpointing = checkpointing
                row["profile"] = profile_step(trainer)
                _free(device)
            attention_kernels = attention_records(trainer.session.generator) or attention_kernels
            if "seconds" in row:
                if "flop_step_seconds" in row:
                    flop_overhead = max(1.0, row["flop_step_seconds"] / row["seconds"])
                seconds_per_view = max(seconds_per_view or 0.0, row["seconds"] / views / (1.0 + 0.1 * (batch - 1)))
        print(json.dumps(row), file=sys.stderr)
        results.append(row)
        if row.get("loss_finite") is False and precision == "fp16" and args.precision is None:
            # random fp16 weights overflowed: the trainer skipped the backward, so the time is not a step's
            notes.append(
                f"fp16 gave a non-finite loss ({paint_path}, view_checkpointing={checkpointing}); measured again in bf16"
            )
            precision = "bf16"
            continue
        pending.pop(0)
    trainer = None
    _free(device)

    peak = dense_peak_tflops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    for row in results:
        if "seconds" in row:
            row["samples_per_second"] = row.get("batch_size", 1) / row["seconds"]
        if "flops" in row and "seconds" in row:
            row["tflops_per_second"] = row["flops"] / row["seconds"] / 1e12
            if peak:
                row["fraction_of_dense_peak"] = row["tflops_per_second"] / peak
        if "needed_flops" in row and "seconds" in row:
            row["needed_tflops_per_second"] = row["needed_flops"] / row["seconds"] / 1e12
            if "flops" in row:
                row["executed_over_needed"] = row["flops"] / row["needed_flops"]
            if peak:
                row["needed_fraction_of_dense_peak"] = row["needed_tflops_per_second"] / peak
        if row.get("skipped"):
            notes.append(
                f"{row['paint_path']} checkpointing={row['view_checkpointing']}: trainer skipped the update ({row['skipped']})"
            )
    record = {
        "benchmark": "training_step",
        "config": "tiny" if args.tiny else "sd15-full-size-random",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu"),
        "dense_fp16_peak_tflops": peak,
        "versions": versions(),
        "renderer": renderer,
        "renderer_reason": renderer_reason,
        "attention_backend": attention,
        "mixed_precision": precision,  # of the last configuration; each result row has its own
        "mesh": Path(base["mesh"]["path"]).name,
        "diffusion_resolution": resolution,
        "texture_size": texture_size,
        "reward_render_size": resolution,
        "ddim_steps": steps,
        "guidance_scale": 7.5,
        "truncation": "all",
        "unet_checkpointing": True,
        "learnable_cameras": "paint elevation + azimuth",
        "rewards": ["curvature_color", "symmetry"],
        "flops_counted": "GlobalFlopCounter (torch.utils.flop_counter formulas, no module tracking) over train_step: forward, backward, recomputation; matmul/conv/attention ops",
        "timing": "one train_step (after one untimed warm-up step for the first configuration); CUDA-synchronised wall clock; the FLOP-counted step runs after it",
        "setup_seconds": setup_seconds,
        "total_seconds": time.perf_counter() - began,
        "results": results,
        "view_flops": [{"paint_path": k[0], "view_checkpointing": k[1], "vae_checkpointing": k[2], "unet_checkpointing": k[3], **v} for k, v in view_flops.items()],
        "attention_kernels": attention_kernels,
        "notes": notes,
    }
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
