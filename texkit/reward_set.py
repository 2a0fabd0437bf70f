"""One scoring path: the configured rewards, prepared once per mesh, scoring a batch of textures.

Training (`Session`), ``texkit score`` and ``texkit generate`` all score
through `RewardSet`: it prepares every reward once per mesh, renders the reward views of
all B samples in one renderer call when a reward reads renders, builds each sample's
`RewardContext` and returns the weighted total per sample plus every
reward's value and metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from texkit.batching import sample_slice
from texkit.types import RenderOutput, RewardContext, RewardOutput, Texture

if TYPE_CHECKING:  # pragma: no cover
    from texkit.cameras import Cameras
    from texkit.geometry.cache import GeometryCache
    from texkit.geometry.mesh import Mesh
    from texkit.reward import Reward

__all__ = ["RewardSet", "Scores"]


@dataclass
class Scores:
    """What `RewardSet.score` returns for B samples.

    Attributes:
        total: ``(B,)`` weighted sum of the rewards per sample (differentiable).
        values: ``{reward name: (B,) tensor}`` each reward's own value per sample.
        metrics: one dict per sample: ``reward/<name>``, ``<name>/<metric>`` and ``reward/total`` as floats.
    """

    total: torch.Tensor
    values: dict[str, torch.Tensor] = field(default_factory=dict)
    metrics: list[dict[str, float]] = field(default_factory=list)

    def mean_metrics(self) -> dict[str, float]:
        """Every metric averaged over the samples."""
        keys = dict.fromkeys(k for m in self.metrics for k in m)
        return {k: sum(m[k] for m in self.metrics if k in m) / sum(1 for m in self.metrics if k in m) for k in keys}


class RewardSet:
    """Named rewards with weights, scored together.

    Args:
        rewards: ``{name: reward instance}``.
        weights: ``{name: weight}`` (default 1 for a name without one).
    """

    def __init__(self, rewards: dict[str, "Reward"], weights: dict[str, float] | None = None) -> None:
        self.rewards = dict(rewards)
        self.weights = {name: float((weights or {}).get(name, 1.0)) for name in self.rewards}
        self._prepared_for: int | None = None

    def items(self) -> Any:
        """``(name, reward)`` pairs, in config order."""
        return self.rewards.items()

    def values(self) -> Any:
        """The reward instances, in config order."""
        return self.rewards.values()

    def __iter__(self) -> Any:
        return iter(self.rewards)

    def __len__(self) -> int:
        return len(self.rewards)

    def __getitem__(self, name: str) -> "Reward":
        return self.rewards[name]

    @property
    def needs_renders(self) -> bool:
        """Whether any reward reads ``ctx.renders`` (then the reward views are rendered)."""
        return any(getattr(r, "needs_renders", False) for r in self.rewards.values())

    def pictures(self, ctx: RewardContext) -> dict[str, torch.Tensor]:
        """What each reward asks for, as a texture to show: ``{name: (H, W, 3) image}`` of every reward
        whose ``visualize(ctx)`` returns one (`texkit.Reward.visualize`), in config order."""
        out = {}
        for name, reward in self.rewards.items():
            image = reward.visualize(ctx) if hasattr(reward, "visualize") else None
            if image is not None:
                out[name] = image
        return out

    def prepare(self, mesh: "Mesh", cache: "GeometryCache") -> None:
        """Run every reward's ``prepare`` once for ``mesh`` (again only when the mesh changes)."""
        if self._prepared_for == id(mesh):
            return
        for reward in self.rewards.values():
            reward.prepare(mesh, cache)
        self._prepared_for = id(mesh)

    def score(
        self,
        mesh: "Mesh",
        texture: Texture,
        cameras: "Cameras | None",
        render: "Callable[[Texture, Cameras], RenderOutput] | None",
        cache: "GeometryCache | None",
        prompts: list[str] | None = None,
        device: torch.device | None = None,
    ) -> Scores:
        """Score a texture or a batch of B textures of ``mesh``.

        Args:
            mesh: the mesh (already prepared for, see `prepare`).
            texture: ``(H, W, 3)`` or a batch ``(B, H, W, 3)``.
            cameras: N reward cameras.
            render: ``render(texture, cameras) -> RenderOutput``; called once for all B samples.
            cache: the mesh's geometry cache.
            prompts: one prompt per sample (for prompt-aware rewards).
            device: where tensors live.

        Returns:
            `Scores` with ``(B,)`` totals.
        """
        batch = texture.batch_size
        prompts = list(prompts or [""] * batch)
        device = device or texture.image.device
        renders = render(texture, cameras) if self.needs_renders and render is not None and cameras is not None else None
        n_cameras = len(cameras) if cameras is not None else 0
        totals, per_reward, metrics = [], {name: [] for name in self.rewards}, []
        for b in range(batch):
            sample_renders = renders[sample_slice(b, n_cameras)] if renders is not None and batch > 1 else renders
            ctx = RewardContext(mesh, texture.sample(b), cameras, sample_renders, render, cache, prompts[b], device)
            total = torch.zeros((), device=device)
            sample_metrics: dict[str, float] = {}
            for name, reward in self.rewards.items():
                out: RewardOutput = reward(ctx)
                total = total + self.weights[name] * out.value
                per_reward[name].append(out.value)
                sample_metrics[f"reward/{name}"] = float(out.value.detach())
                sample_metrics.update({f"{name}/{k}": float(v) for k, v in out.metrics.items()})
            sample_metrics["reward/total"] = float(total.detach())
            totals.append(total)
            metrics.append(sample_metrics)
        values = {name: torch.stack([v.reshape(()) for v in vals]) for name, vals in per_reward.items()}
        return Scores(torch.stack([t.reshape(()) for t in totals]), values, metrics)
