"""Everything a run needs, built from a :class:`~texkit.config.RunConfig`: mesh, generator,
renderer, rewards, cameras, prompts; shared by ``texkit generate`` and ``texkit train``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch

from texkit import distributed
from texkit.back_projection import TextureState
from texkit.cameras import CAMERA_PRESETS, Cameras
from texkit.config import CameraPath, RunConfig
from texkit.errors import RewardError
from texkit.geometry.cache import GeometryCache
from texkit.geometry.mesh import Mesh
from texkit.geometry.primitives import load_mesh
from texkit.registry import get_registry
from texkit.types import PromptEmbedding, RewardContext, RewardOutput, Texture
from texkit.view_loop import PaintSettings, paint_texture

__all__ = ["Session", "resolve_device", "camera_angles"]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def camera_angles(path: str | CameraPath) -> tuple[list[float], list[float]]:
    """(elevations, azimuths) of a preset name or an explicit path."""
    if isinstance(path, str):
        elev, azim = CAMERA_PRESETS[path]
        return list(elev), list(azim)
    return list(path.elevation), list(path.azimuth)


@dataclass
class Session:
    """The built components of a run."""

    config: RunConfig
    device: torch.device
    mesh: Mesh
    generator: Any
    renderer: Any
    rewards: dict[str, Any]
    weights: dict[str, float]
    cache: GeometryCache
    prompts: list[str]
    angles: dict[str, torch.Tensor] = field(default_factory=dict)
    _embeddings: dict[str, PromptEmbedding] = field(default_factory=dict)

    @classmethod
    def build(cls, config: RunConfig, need_rewards: bool = True) -> "Session":
        """Build every component; raises one-line TexkitErrors for bad names or inputs."""
        reg = get_registry()
        rank = distributed.context()
        device = distributed.device_for_rank(config.device, rank) if rank.enabled else resolve_device(config.device)
        mesh_path = config.mesh.path_for_rank(rank.rank)
        mesh = load_mesh(mesh_path, config.mesh.normalize)
        mesh = mesh.to(device)
        gen_options = dict(config.generator.options)
        gen_options.setdefault("truncation", config.training.truncation)
        gen_options.setdefault("checkpointing", config.training.unet_checkpointing)
        gen_options.setdefault("device", str(device))
        if config.training.mixed_precision != "no":
            gen_options.setdefault("dtype", config.training.mixed_precision)
        generator = reg.make_generator(config.generator.name, **gen_options)
        renderer = reg.make_renderer(config.renderer.name, **config.renderer.options)
        rewards: dict[str, Any] = {}
        weights: dict[str, float] = {}
        cache = GeometryCache(mesh.to("cpu"))
        if need_rewards:
            for name, reward_cfg in config.rewards.items():
                reward = reg.make_reward(name, reward_cfg.params())
                if not reward.differentiable:
                    raise RewardError(f"reward '{name}' is not differentiable and cannot be trained on; use it with `texkit score`")
                reward.prepare(mesh.to("cpu"), cache)
                rewards[name] = reward
                weights[name] = reward_cfg.weight
        session = cls(config, device, mesh, generator, renderer, rewards, weights, cache, config.prompts.all_prompts())
        for which in ("paint", "reward"):
            elev, azim = camera_angles(getattr(config.cameras, which))
            learn = which in config.cameras.learn
            session.angles[f"{which}_elevation"] = torch.tensor(elev, dtype=torch.float32, device=device).requires_grad_(learn and "elevation" in config.cameras.learn_angles)
            session.angles[f"{which}_azimuth"] = torch.tensor(azim, dtype=torch.float32, device=device).requires_grad_(learn and "azimuth" in config.cameras.learn_angles)
        return session

    def cameras(self, which: str) -> Cameras:
        """The painting or reward cameras from the current (possibly learnable) angles."""
        elev, azim = self.angles[f"{which}_elevation"], self.angles[f"{which}_azimuth"]
        n = len(elev)
        cfg = self.config.cameras
        return Cameras(azim, elev, torch.full((n,), cfg.radius, device=self.device), torch.full((n,), cfg.fov, device=self.device))

    def camera_parameters(self) -> list[torch.Tensor]:
        """The learnable angle tensors."""
        return [t for t in self.angles.values() if t.requires_grad]

    def paint_settings(self) -> PaintSettings:
        """View-loop settings from the config."""
        tex = self.config.texture
        return PaintSettings(
            texture_size=tex.size,
            cos_thresh=tex.cos_thresh,
            sharpness=tex.trimap_sharpness,
            min_level=max(8, tex.size // 8),
            background=tex.background,
            checkpoint_views=self.config.training.view_checkpointing,
        )

    def view_prompts(self, prompt: str, cameras: Cameras) -> list[PromptEmbedding]:
        """Encoded per-view prompts ("<prefix><prompt>, <front|side|back|...> view"), cached."""
        cfg = self.config.prompts
        out = []
        for view in cameras.view_names():
            text = f"{cfg.prefix}{prompt}" + (f", {view} view" if cfg.view_suffix else "")
            if text not in self._embeddings:
                self._embeddings[text] = self.generator.encode_prompt([text], [cfg.negative])
            out.append(self._embeddings[text])
        return out

    def draw(self, step: int, slot: int = 0) -> tuple[str, list[int]]:
        """The prompt and per-view seeds of one sample (a pure function of the run seed, step and slot).

        Args:
            step: the optimisation step.
            slot: the sample's place in the step's effective batch, ``rank * grad_accum + micro``;
                slot 0 is the single-process draw, other slots are independent streams, so ranks
                and micro-batches draw different prompts and seeds.
        """
        if not self.config.training.resample:
            step = 0
        base = self.config.training.seed * 1_000_003 + step
        rng = random.Random(base if slot == 0 else f"texkit:{base}:{slot}")
        prompt = rng.choice(self.prompts)
        return prompt, [rng.randrange(2**31) for _ in range(len(self.angles["paint_elevation"]))]

    def paint(self, prompt: str, seeds: list[int], progress: Any = None) -> Texture:
        """Paint a texture with the view loop (differentiable when grad is enabled)."""
        cams = self.cameras("paint")
        state: TextureState = paint_texture(
            self.generator, self.renderer, self.mesh, cams, self.view_prompts(prompt, cams), seeds, self.paint_settings(), progress
        )
        settings = self.paint_settings()
        return state.texture(settings.min_level, background=0.5)

    def score(self, texture: Texture, prompt: str) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted sum of the rewards and their metrics."""
        cams = self.cameras("reward")
        size = self.config.texture.render_size

        def render(tex: Texture, cameras: Cameras) -> Any:
            return self.renderer.render(self.mesh, tex, cameras, size)

        renders = render(texture, cams) if any(getattr(r, "needs_renders", False) for r in self.rewards.values()) else None
        ctx = RewardContext(self.mesh, texture, cams, renders, render, self.cache, prompt, self.device)
        total = torch.zeros((), device=self.device)
        metrics: dict[str, float] = {}
        for name, reward in self.rewards.items():
            out: RewardOutput = reward(ctx)
            total = total + self.weights[name] * out.value
            metrics[f"reward/{name}"] = float(out.value.detach())
            metrics.update({f"{name}/{k}": float(v) for k, v in out.metrics.items()})
        metrics["reward/total"] = float(total.detach())
        return total, metrics
