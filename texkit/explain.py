"""What a reward asks for and what it converges to on a mesh (``texkit explain``, the docs' reward gallery).

Two pictures per reward and mesh, each a grid of orbit views (same cameras):

- **target**: the reward's `texkit.Reward.visualize` texture (what it asks for, e.g. the colours
  ``curvature_color`` wants), rendered on the mesh; absent when the reward has no ``visualize``;
- **optimum**: what direct gradient ascent on the texture alone converges to from a grey start:
  the texture is ``sigmoid(z)`` with ``z`` a little seeded noise (grey 0.5, texels within about
  +-0.05; `start_logits`), and Adam maximises the reward over ``z`` for ``steps`` steps, through the renderer when the reward reads renders. No generator, no
  diffusion: the reward's own optimum, cheap on the CPU. Rewards that are not differentiable
  (``differentiable = False``) get no optimum, only a one-line note (and their target, if any).

Any installed reward works, third-party ones included: the reward is made from the registry with
its default (or given) parameters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from texkit.cameras import Cameras
from texkit.defaults import DEFAULT_RENDERER
from texkit.devices import resolve_device
from texkit.geometry.cache import GeometryCache
from texkit.geometry.primitives import load_mesh
from texkit.imageio import image_grid, write_image
from texkit.io import atomic_write_text
from texkit.registry import get_registry
from texkit.reward_set import RewardSet
from texkit.threads import apply_threads
from texkit.types import RewardContext, Texture

__all__ = ["Explanation", "explain_reward", "optimize_texture", "start_logits", "EXPLAIN_STEPS", "START_NOISE"]

#: Adam steps of the gradient ascent (``texkit explain --steps``).
EXPLAIN_STEPS = 300
#: Standard deviation of the start texture's logits: grey 0.5 with about +-0.05 of texel noise.
START_NOISE = 0.2


@dataclass
class Explanation:
    """What `explain_reward` wrote.

    Attributes:
        reward: the reward's name.
        mesh: the mesh as given (built-in name or path).
        target: ``target.png``, the views of the reward's ``visualize`` texture (None: it has none).
        optimum: ``optimum.png``, the views of the optimised texture (None: not differentiable).
        optimum_texture: ``optimum_texture.png``, the optimised UV texture (None: not differentiable).
        start_value: the reward of the start texture (grey, a little noise: `start_logits`).
        final_value: the reward of the optimised texture (None: not differentiable).
        steps: Adam steps taken.
        seconds: wall time of the whole explanation.
        notes: one line each on what is missing and why.
    """

    reward: str
    mesh: str
    target: Path | None = None
    optimum: Path | None = None
    optimum_texture: Path | None = None
    start_value: float = 0.0
    final_value: float | None = None
    steps: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The explanation as JSON-ready data (paths as file names), as ``explain.json`` holds it."""
        data = asdict(self)
        for key in ("target", "optimum", "optimum_texture"):
            data[key] = None if data[key] is None else Path(data[key]).name
        return data


def start_logits(size: int, noise: float = START_NOISE, seed: int = 0) -> torch.Tensor:
    """The logits ``z`` of the start texture ``sigmoid(z)``: ``(size, size, 3)``, ``noise * N(0, 1)`` seeded.

    Grey with a little texel noise rather than exactly grey: a uniform texture is a stationary point
    of every reward that reads texture gradients or compares texels (its gradient there is 0).
    """
    generator = torch.Generator().manual_seed(seed)
    return noise * torch.randn(size, size, 3, generator=generator)


def optimize_texture(
    score: Callable[[Texture], torch.Tensor],
    size: int,
    steps: int,
    lr: float = 0.1,
    device: torch.device | str = "cpu",
    on_step: Callable[[int, float], None] | None = None,
    start: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[float]]:
    """Gradient ascent of ``score`` over a texture ``sigmoid(z)``, with Adam, from ``z = start``.

    Args:
        score: maps a fully covered `Texture` ``(size, size, 3)`` to a scalar tensor to maximise.
        size: texture size in texels.
        steps: Adam steps.
        lr: Adam's learning rate on ``z`` (the logits of the texture).
        device: where the texture lives.
        on_step: called with ``(step, value)`` after each step (progress).
        start: the start logits ``(size, size, 3)``; default `start_logits` (grey, a little noise).

    Returns:
        ``(texture, values)``: the final ``(size, size, 3)`` texture in (0, 1) and the reward before
        each step and after the last (``steps + 1`` values).
    """
    logits = (start_logits(size) if start is None else start).to(device).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    values = []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        value = score(Texture(torch.sigmoid(logits)))
        (-value).backward()
        optimizer.step()
        values.append(float(value.detach()))
        if on_step is not None:
            on_step(step + 1, values[-1])
    with torch.no_grad():
        texture = torch.sigmoid(logits)
        values.append(float(score(Texture(texture))))
    return texture.detach(), values


def explain_reward(
    name: str,
    mesh_spec: str,
    out: str | Path,
    steps: int = EXPLAIN_STEPS,
    size: int = 128,
    views: int = 4,
    params: dict[str, Any] | None = None,
    renderer_name: str = DEFAULT_RENDERER,
    device: str = "cpu",
    lr: float = 0.1,
    console: Console | None = None,
) -> Explanation:
    """Write what reward ``name`` asks for on a mesh and what gradient ascent on the texture reaches.

    Writes into ``out``: ``target.png`` (when the reward has ``visualize``), ``optimum.png`` and
    ``optimum_texture.png`` (when it is differentiable), and ``explain.json`` (`Explanation.record`).
    Each is written atomically.

    Args:
        name: a registered reward.
        mesh_spec: mesh file or built-in mesh name (``demo``, ``sphere``, ...).
        out: output folder (created).
        steps: Adam steps.
        size: texture size; the pictures are ``views`` renders of ``size`` px each.
        views: orbit views per picture (elevation -20 degrees, from the front).
        params: the reward's parameters (defaults for the rest).
        renderer_name: renderer of the pictures and of rewards that read renders.
        device: ``cpu``, ``cuda``, ``cuda:1`` or ``auto``.
        lr: Adam's learning rate on the texture's logits.
        console: where the progress bar goes (default: stderr; shown on a terminal only).

    Returns:
        The `Explanation`.

    Raises:
        TexkitError: an unknown reward, a bad parameter, a bad mesh, or a reward that cannot be made
            here (e.g. its model weights are not available): one line saying what to do.
    """
    threads_before = torch.get_num_threads()
    try:
        return _explain(name, mesh_spec, Path(out), steps, size, views, params or {}, renderer_name, device, lr, console)
    finally:
        torch.set_num_threads(threads_before)


def _explain(
    name: str,
    mesh_spec: str,
    out: Path,
    steps: int,
    size: int,
    views: int,
    params: dict[str, Any],
    renderer_name: str,
    device: str,
    lr: float,
    console: Console | None,
) -> Explanation:
    """`explain_reward` once the caller's thread count is saved."""
    started = time.perf_counter()
    reg = get_registry()
    reward = reg.make_reward(name, params)
    where = resolve_device(device)
    apply_threads(where, 0, size * size)  # small work: one thread is fastest on busy cores (texkit.threads)
    cpu_mesh = load_mesh(mesh_spec)
    cache = GeometryCache(cpu_mesh)
    rewards = RewardSet({name: reward})
    rewards.prepare(cpu_mesh, cache)
    mesh = cpu_mesh.to(where)
    renderer = reg.make_renderer(renderer_name)
    orbit = Cameras.orbit(views, elevation=-20.0, device=where)
    reward_cameras = Cameras.preset("tilted_short", device=where)

    def render(texture: Texture, cameras: Cameras) -> Any:
        return renderer.render(mesh, texture, cameras, size)

    def score(texture: Texture) -> torch.Tensor:
        return rewards.score(mesh, texture, reward_cameras, render, cache, device=where).total[0]

    def picture(image: torch.Tensor) -> torch.Tensor:
        shown = render(Texture(image.to(where)), orbit)
        return image_grid(shown.rgb * shown.alpha + (1.0 - shown.alpha), columns=views)

    out.mkdir(parents=True, exist_ok=True)
    result = Explanation(reward=name, mesh=mesh_spec, steps=0)
    start = start_logits(size).to(where)
    with torch.no_grad():
        grey = Texture(torch.sigmoid(start))
        result.start_value = float(score(grey))
        target = reward.visualize(RewardContext(mesh, grey, orbit, None, render, cache, "", where))
        if target is not None:
            result.target = out / "target.png"
            write_image(result.target, picture(target))
        else:
            result.notes.append(f"{name} has no visualize(): no target picture")
    if reward.differentiable:
        columns = (TextColumn(f"[bold]{name}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn())
        console = console or Console(stderr=True)
        with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
            task = bar.add_task(name, total=steps, info="")
            texture, values = optimize_texture(
                score, size, steps, lr, where, on_step=lambda step, value: bar.update(task, completed=step, info=f"reward {value:.4f}"), start=start
            )
        result.steps, result.final_value = steps, values[-1]
        result.optimum, result.optimum_texture = out / "optimum.png", out / "optimum_texture.png"
        with torch.no_grad():
            write_image(result.optimum, picture(texture))
        write_image(result.optimum_texture, texture)
    else:
        result.notes.append(f"{name} is not differentiable (scoring only): no optimum to ascend to")
    result.seconds = time.perf_counter() - started
    atomic_write_text(out / "explain.json", json.dumps(result.record(), indent=2) + "\n")
    return result
