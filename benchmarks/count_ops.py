"""Aten op calls of one training step, by phase: a device-free proxy of the launch-bound step time.

At batch 1 on an H200 a training step is launch-bound (issue 13): the GPU idles while the host
dispatches ops, so the step time is about proportional to the number of dispatched ops. Op counts
do not depend on the resolution or the device, so they are counted here on the CPU, in fp32, with
the FULL-SIZE SD 1.5 architecture (random weights, `full_size_components` of
``gpu/bench_generator.py``) at a tiny resolution (64 px views, small texture).

The trainer is built as ``gpu/bench_training.py`` builds it (generator ``stable-diffusion`` reading
a diffusers folder, CFG 7.5, truncation "all", UNet checkpointing on (`--unet-checkpointing`), rewards curvature_color +
symmetry, learnable paint cameras, reward path ``tilted_short``), with the pure-PyTorch renderer
``torch`` (nvdiffrast dispatches far fewer ops per render: its rasteriser is one custom op).

Every call of ``__torch_dispatch__`` of a `TorchDispatchMode` is one op call (the ops that reach
the kernels: composite ops that autograd decomposes count as their parts, unlike the profiler's
``aten::`` events, which also count the composite calls). Calls are attributed to a phase by
wrapping (in this script only) the renderer, the trimap, the generator's denoiser (ControlNet +
UNet), its VAE encode/decode, the rest of ``generator.paint``, the back-projection, the
`TextureState` methods, the reward scoring and the optimizer; the innermost wrapper wins. Each
call is also tagged with the painted view it belongs to (by its seed) and with a mode:

* ``forward``: ops of the forward pass;
* ``recompute``: ops run inside a wrapper while autograd's engine runs (per-view checkpointing
  recomputes the view);
* ``backward``: ops autograd's engine runs outside every wrapper; they are attributed to the phase
  (and view) whose wrapper created the autograd node being executed (every node reachable from a
  wrapper's outputs, not labelled before, gets that wrapper's label; unlabelled nodes made by glue
  code between wrappers get the caller's label when they enter a wrapper). UNet/VAE checkpoint
  recomputation happens inside those nodes and so counts as their backward.

Steps are counted at two DDIM step counts (``--steps 1,2``) so that per-view ops split into a
fixed part and a per-denoising-step part; the first painted view (empty texture: no VAE encode,
no latent blending) and later views are counted apart, and everything is extrapolated to
``--target-views`` x ``--target-steps`` (6 x 10 by default) as
``fixed + view1(S) + (V - 1) * view2(S)``, an extrapolation that assumes views 2..V cost what view 2 costs.

    .venv/bin/python benchmarks/count_ops.py                     # 2 views, DDIM 1 and 2, view ckpt on and off
    .venv/bin/python benchmarks/count_ops.py --paint-views 3 --steps 3 --view-checkpointing on  # a check

Prints one JSON object and writes it to ``--output`` (default benchmarks/results/op_counts_cpu.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "gpu"))
from bench_generator import full_size_components  # noqa: E402
from bench_training import default_mesh, run_config, save_components, versions  # noqa: E402

#: Phases of the generator; everything else (and its backward) is the "non-generator" part.
GENERATOR_PHASES = ("denoiser", "vae", "paint_other", "text_encoder")

#: Phases left out of the extrapolation: CLIP runs only for a prompt text not encoded before (the
#: cache is filled before counting, but a learnable camera that crosses a view-name boundary makes new text).
ONE_OFF_PHASES = ("text_encoder",)


def _in_backward() -> bool:
    """Whether autograd's engine is running a backward pass on this thread."""
    return torch._C._current_graph_task_id() != -1


def _tensors(obj: Any, depth: int = 0) -> list[torch.Tensor]:
    """Tensors in a (nested) result: tensors, tuples, lists, dicts and dataclasses."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if depth > 3:
        return []
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in _tensors(item, depth + 1)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in _tensors(item, depth + 1)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [t for f in dataclasses.fields(obj) for t in _tensors(getattr(obj, f.name, None), depth + 1)]
    return []


class PhaseOpCounter(TorchDispatchMode):
    """Counts every aten op call by ``(mode, phase, view)`` (see the module docstring).

    Attributes:
        counts: ``Counter`` of op calls keyed ``(mode, phase, view)``; view is None outside the view loop.
        ops: ``Counter`` of op calls keyed ``(phase, op name)`` (all modes), for the top-op lists.
        stack: the wrappers' phases, innermost last.
        view: the painted view being run (index), or None.
        labels: autograd node -> ``(phase, view)`` of the wrapper that created it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter = Counter()
        self.ops: Counter = Counter()
        self.stack: list[str] = []
        self.view: int | None = None
        self.view_of_seed: dict[Any, int] = {}
        self.labels: dict[Any, tuple[str, int | None]] = {}
        self.active = False

    def reset(self) -> None:
        """Forget the counts and node labels (between measured steps)."""
        self.counts.clear()
        self.ops.clear()
        self.labels.clear()
        self.view_of_seed.clear()
        self.view = None

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if self.active:
            if self.stack:
                mode, phase, view = ("recompute" if _in_backward() else "forward"), self.stack[-1], self.view
            elif _in_backward():
                label = self.labels.get(torch._C._current_autograd_node(), ("unlabelled", None))
                mode, phase, view = "backward", label[0], label[1]
            else:
                mode, phase, view = "forward", "other", self.view
            self.counts[(mode, phase, view)] += 1
            self.ops[(phase, str(func.overloadpacket.__name__))] += 1
        return func(*args, **(kwargs or {}))

    def label(self, result: Any, key: tuple[str, int | None]) -> None:
        """Label every autograd node reachable from ``result`` that has no label yet with ``key``."""
        if _in_backward():
            return  # recomputed graphs are never backpropagated
        todo = [t.grad_fn for t in _tensors(result) if t.grad_fn is not None]
        while todo:
            node = todo.pop()
            if node in self.labels:
                continue
            self.labels[node] = key
            todo.extend(n for n, _ in node.next_functions if n is not None and n not in self.labels)

    def wrap(self, owner: Any, name: str, phase: str) -> None:
        """Replace ``owner.name`` by a wrapper that runs it as ``phase`` (``reward_render`` for a render inside the reward)."""
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            here = "reward_render" if phase == "render" and "reward" in self.stack else phase
            self.label((args, kwargs), (self.stack[-1] if self.stack else "other", self.view))
            self.stack.append(here)
            try:
                out = original(*args, **kwargs)
            finally:
                self.stack.pop()
            self.label(out, (here, self.view))
            return out

        setattr(owner, name, wrapped)

    def wrap_views(self, module: Any) -> None:
        """Wrap ``module.paint_view``: sets `view` from the call's seed (recomputation repeats the seed)."""
        original = module.paint_view

        @functools.wraps(original)
        def wrapped(generator: Any, renderer: Any, mesh: Any, state: Any, camera: Any, prompt: Any, seed: Any, settings: Any) -> Any:
            key = seed if isinstance(seed, int) else tuple(seed)
            before = self.view
            self.view = self.view_of_seed.setdefault(key, len(self.view_of_seed))
            self.label((state, camera), ("other", self.view))
            try:
                out = original(generator, renderer, mesh, state, camera, prompt, seed, settings)
                self.label(out, ("view_loop", self.view))
            finally:
                self.view = before
            return out

        module.paint_view = wrapped


def instrument(counter: PhaseOpCounter, trainer: Any) -> None:
    """Wrap the phases of ``trainer``'s step (module attributes and instances of this process only)."""
    from texkit_diffusers.compiled import DenoiserCall

    import texkit.view_loop as view_loop
    from texkit.back_projection import TextureState

    session = trainer.session
    generator = session.generator
    counter.wrap(session.renderer, "render", "render")
    counter.wrap(view_loop, "trimap", "trimap")
    counter.wrap(view_loop, "back_project", "back_projection")
    counter.wrap(view_loop, "controlnet_depth", "view_loop")
    counter.wrap(DenoiserCall, "__call__", "denoiser")
    counter.wrap(generator, "encode_image", "vae")
    counter.wrap(generator, "decode_latents", "vae")
    counter.wrap(generator, "paint", "paint_other")
    counter.wrap(generator, "encode_prompt", "text_encoder")
    for method in ("texture", "accumulate", "paint_count", "viewcos_map"):
        counter.wrap(TextureState, method, "texture_state")
    counter.wrap(session.rewards, "score", "reward")
    counter.wrap(trainer.optimizer, "step", "optimizer")
    counter.wrap(torch.nn.utils, "clip_grad_norm_", "optimizer")
    counter.wrap_views(view_loop)


def count_step(counter: PhaseOpCounter, trainer: Any) -> dict[str, Any]:
    """One ``trainer.train_step()`` under the counter: counts by mode/phase/view, seconds, denoiser calls."""
    counter.reset()
    start = time.perf_counter()
    counter.active = True
    try:
        metrics = trainer.train_step()
    finally:
        counter.active = False
    seconds = time.perf_counter() - start
    counts = dict(counter.counts)
    counter.labels.clear()
    gc.collect()
    return {"seconds": seconds, "loss": metrics["loss"], "counts": counts, "ops": dict(counter.ops)}


def _sum(counts: dict, mode: str | None = None, phase: str | None = None, view: Any = "any") -> int:
    return sum(
        n
        for (m, p, v), n in counts.items()
        if (mode is None or m == mode) and (phase is None or p == phase) and (view == "any" or v == view)
    )


def summarise(counts: dict, views: int) -> dict[str, Any]:
    """Per phase: op calls by mode, total, share; per view; non-generator share."""
    total = _sum(counts)
    phases = sorted({p for _, p, _ in counts}, key=lambda p: -_sum(counts, phase=p))
    table = {}
    for p in phases:
        row = {m: _sum(counts, m, p) for m in ("forward", "recompute", "backward")}
        row["total"] = _sum(counts, phase=p)
        row["share"] = row["total"] / total if total else 0.0
        row["per_view"] = {str(v): _sum(counts, phase=p, view=v) for v in [*range(views), None] if _sum(counts, phase=p, view=v)}
        table[p] = row
    generator = sum(table[p]["total"] for p in GENERATOR_PHASES if p in table)
    return {
        "total": total,
        "by_mode": {m: _sum(counts, m) for m in ("forward", "recompute", "backward")},
        "per_view_total": {str(v): _sum(counts, view=v) for v in [*range(views), None]},
        "phases": table,
        "generator": generator,
        "non_generator": total - generator,
        "non_generator_share": (total - generator) / total if total else 0.0,
    }


def extrapolate(by_steps: dict[int, dict], views: int, steps: int) -> dict[str, Any]:
    """Counts of ``views`` x ``steps`` from two measured DDIM step counts (affine in steps, per view).

    Returns ``{phase: total}`` plus the total and the non-generator share; view 1 (index 0) as
    measured, views 2..V each as the measured view 2 (index 1), the once-per-step part (view None:
    reward, optimizer, final texture) as counted in the later step (the first step of a process
    also creates the optimizer state).
    """
    (s0, c0), (s1, c1) = sorted(by_steps.items())[:2]
    phases = sorted({p for counts in (c0, c1) for _, p, _ in counts} - set(ONE_OFF_PHASES))
    out: dict[str, float] = {}
    for p in phases:
        value = 0.0
        for v, multiplicity in ((0, 1), (1, views - 1)):
            a, b = _sum(c0, phase=p, view=v), _sum(c1, phase=p, view=v)
            value += multiplicity * (a + (b - a) * (steps - s0) / (s1 - s0))
        value += _sum(c1, phase=p, view=None)  # once per step, whatever the DDIM steps (the later step: optimizer state exists)
        out[p] = round(value)
    total = sum(out.values())
    generator = sum(out.get(p, 0) for p in GENERATOR_PHASES)
    render = out.get("render", 0) + out.get("reward_render", 0)
    return {
        "views": views,
        "ddim_steps": steps,
        "phases": dict(sorted(out.items(), key=lambda kv: -kv[1])),
        "total": total,
        "per_view": total / views,
        "non_generator": total - generator,
        "non_generator_per_view": (total - generator) / views,
        "non_generator_share": (total - generator) / total if total else 0.0,
        # the torch renderer's share is not the GPU renderer's (nvdiffrast: a few custom ops per render)
        "non_generator_share_without_render": (total - generator - render) / total if total else 0.0,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Build the trainer once, count one step per (view checkpointing, DDIM steps), print and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paint-views", type=int, default=2, help="first K views of front_short (>= 2 to tell view 1 from later ones)")
    parser.add_argument("--steps", default="1,2", help="DDIM step counts to count at (two or more)")
    parser.add_argument("--view-checkpointing", default="on,off", help="on, off or on,off")
    parser.add_argument(
        "--unet-checkpointing", default="on", choices=["on", "off"], help="gradient checkpointing inside UNet, ControlNet and VAE (training.unet_checkpointing)"
    )
    parser.add_argument("--target-views", type=int, default=6)
    parser.add_argument("--target-steps", type=int, default=10)
    parser.add_argument("--resolution", type=int, default=64, help="views (multiple of 64) and reward renders")
    parser.add_argument("--texture-size", type=int, default=128)
    parser.add_argument("--renderer", default="torch")
    parser.add_argument("--mesh", default=None, help="default: ../shared/assets/cow.obj, else the demo mesh")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=12, help="most-called ops listed per non-generator phase")
    parser.add_argument("--output", default=str(HERE / "results" / "op_counts_cpu.json"), help="'' writes nothing")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from rich.console import Console

    from texkit.config import parse_config
    from texkit.training import Trainer

    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="texkit-count-ops-"))
    torch.manual_seed(0)
    components = full_size_components()
    model_dir, controlnet_dir = save_components(components, work / "sd15-random")
    del components
    gc.collect()
    setup_seconds = time.perf_counter() - began
    print(f"components saved ({setup_seconds:.0f} s)", file=sys.stderr)

    step_counts = [int(s) for s in args.steps.split(",") if s]
    options = {
        "model": model_dir,
        "controlnet": controlnet_dir,
        "resolution": args.resolution,
        "steps": max(step_counts),
        "guidance_scale": 7.5,
        "attention": "sdpa",
        "compile": "off",
    }
    base = {
        "mesh": {"path": args.mesh or default_mesh()},
        "prompts": {"text": ["a cow with brown and white patches", "a cow made of polished marble"]},
        "generator": {"name": "stable-diffusion", "options": options},
        "cameras": {"learn": ["paint"]},
        "texture": {"size": args.texture_size, "render_size": args.resolution},
        "rewards": {"curvature_color": {"weight": 1.0}, "symmetry": {"weight": 1.0}},
        "training": {"steps": 2, "truncation": "all", "unet_checkpointing": args.unet_checkpointing == "on", "before_after": False},
        "output": {"dir": str(work / "run")},
        "device": "cpu",
    }
    cfg = run_config(base, "front_short", "tilted_short", "fp32", args.renderer, args.paint_views)
    trainer = Trainer(parse_config(cfg), work / "run", Console(stderr=True))
    session = trainer.session
    for prompt in base["prompts"]["text"]:  # encoded prompts are cached: keep CLIP out of the counted steps
        session.view_prompts(prompt, session.cameras("paint"))
    build_seconds = time.perf_counter() - began - setup_seconds
    print(f"trainer built ({build_seconds:.0f} s)", file=sys.stderr)

    counter = PhaseOpCounter()
    instrument(counter, trainer)
    runs = []
    extrapolated = {}
    with counter:
        for word in args.view_checkpointing.split(","):
            checkpointing = {"on": True, "off": False}[word]
            trainer.config.training.view_checkpointing = checkpointing
            by_steps = {}
            for steps in step_counts:
                session.generator.options.steps = steps
                step = count_step(counter, trainer)
                by_steps[steps] = step["counts"]
                summary = summarise(step["counts"], args.paint_views)
                ops = step["ops"]
                top = {
                    p: [{"op": name, "calls": n} for (q, name), n in sorted(ops.items(), key=lambda kv: -kv[1]) if q == p][: args.top]
                    for p in summary["phases"]
                    if p not in GENERATOR_PHASES
                }
                runs.append(
                    {
                        "view_checkpointing": checkpointing,
                        "paint_views": args.paint_views,
                        "ddim_steps": steps,
                        "seconds": step["seconds"],
                        "loss": step["loss"],
                        **summary,
                        "top_ops_outside_generator": top,
                    }
                )
                print(
                    f"view_checkpointing={word} steps={steps}: {summary['total']} op calls, non-generator "
                    f"{summary['non_generator_share']:.1%} ({step['seconds']:.0f} s)",
                    file=sys.stderr,
                )
                for phase, row in summary["phases"].items():
                    print(f"  {phase:16s} {row['total']:8d}  fwd {row['forward']:7d} rec {row['recompute']:7d} bwd {row['backward']:7d}  {row['per_view']}", file=sys.stderr)
                for phase, listed in top.items():
                    print(f"  {phase}: " + ", ".join(f"{o['op']} {o['calls']}" for o in listed[:8]), file=sys.stderr)
            if len(by_steps) >= 2:
                extrapolated[word] = extrapolate(by_steps, args.target_views, args.target_steps)
    record = {
        "benchmark": "op_counts_by_phase",
        "command": " ".join(["python", *sys.argv]) if argv is None else " ".join(["python", "benchmarks/count_ops.py", *argv]),
        "what": "aten op calls (TorchDispatchMode __torch_dispatch__ calls) of one Trainer.train_step, by phase; launch-bound proxy of GPU step time",
        "model": "full-size SD 1.5 UNet + 6-channel ControlNet + VAE + CLIP, random weights, fp32 on the CPU",
        "renderer": args.renderer,
        "renderer_note": "torch: the pure-PyTorch rasteriser; nvdiffrast (the GPU default) rasterises in one custom op, so its render/reward_render counts are lower",
        "resolution": args.resolution,
        "texture_size": args.texture_size,
        "paint_path": "front_short (first paint_views views)",
        "reward_path": "tilted_short",
        "guidance_scale": 7.5,
        "truncation": "all",
        "unet_checkpointing": args.unet_checkpointing == "on",
        "rewards": ["curvature_color", "symmetry"],
        "generator": session.generator.describe() if hasattr(session.generator, "describe") else {},
        "generator_phases": list(GENERATOR_PHASES),
        "extrapolation": (
            f"{args.target_views} views x {args.target_steps} DDIM steps from the counted steps: fixed (view None) + view 1 + "
            f"{args.target_views - 1} x view 2, each affine in the DDIM steps; an extrapolation, not a count"
        ),
        "extrapolated": extrapolated,
        "runs": runs,
        "versions": versions(),
        "threads": args.threads,
        "setup_seconds": setup_seconds,
        "build_seconds": build_seconds,
        "total_seconds": time.perf_counter() - began,
    }
    text = json.dumps(record, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return record


if __name__ == "__main__":
    main()
