"""Everything a run needs, built from a `RunConfig`: mesh, generator,
renderer, rewards, cameras, prompts; shared by ``texkit generate`` and ``texkit train``."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from texkit import distributed
from texkit.back_projection import TextureState
from texkit.cameras import Cameras
from texkit.config import RunConfig, camera_angles
from texkit.devices import resolve_device
from texkit.errors import ConfigError, RewardError
from texkit.geometry.cache import GeometryCache
from texkit.geometry.mesh import Mesh
from texkit.geometry.primitives import load_mesh
from texkit.initial_texture import InitialTexture, load_initial_texture
from texkit.planning import check_fits
from texkit.registry import get_registry
from texkit.reward_set import RewardSet, Scores
from texkit.types import PromptEmbedding, RewardContext, Texture
from texkit.view_loop import PaintSettings, accepts_strength, cannot_refine, paint_texture

__all__ = ["Session", "generator_options", "training_rewards", "RUN_OWNED_OPTIONS"]


RUN_OWNED_OPTIONS: dict[str, str] = {
    "device": "device",
    "dtype": "training.mixed_precision",
    "truncation": "training.truncation",
    "checkpointing": "training.unet_checkpointing",
}
"""Generator options the run owns: ``{option: the run-config key that sets it}``."""


def generator_options(config: RunConfig, device: torch.device) -> dict[str, Any]:
    """The generator's options: ``generator.options`` plus the run-owned ones its ``Params`` declares.

    Run-owned options (`RUN_OWNED_OPTIONS`) are set in one place, the run config's
    ``device`` and ``[training]``; ``training.mixed_precision = "no"`` leaves the generator's own
    dtype default.

    Raises:
        ConfigError: ``generator.options`` sets a run-owned option (names where to set it).
    """
    model = get_registry().params_model("generators", config.generator.name)
    declared = set(model.model_fields) if model is not None else set()
    options = dict(config.generator.options)
    for option, where in RUN_OWNED_OPTIONS.items():
        if option in options and option in declared:
            raise ConfigError(f"generator.options.{option} is owned by the run: set {where} instead")
    training = config.training
    values = {"device": str(device), "truncation": training.truncation, "checkpointing": training.unet_checkpointing}
    if training.mixed_precision != "no":
        values["dtype"] = training.mixed_precision
    options.update({k: v for k, v in values.items() if k in declared})
    return options


def training_rewards(config: RunConfig) -> RewardSet:
    """The config's rewards with their weights, as training uses them (not yet prepared for a mesh).

    Cheap: rewards load their models on first use, so ``texkit studio`` checks a fine-tune's rewards
    with it before starting ``texkit train``.

    Raises:
        UnknownNameError: a reward no plugin registers. ConfigError: a bad parameter.
        RewardError: a reward that is not differentiable.
    """
    reg = get_registry()
    rewards: dict[str, Any] = {}
    for name, reward_cfg in config.rewards.items():
        reward = reg.make_reward(name, reward_cfg.params())
        if not reward.differentiable:
            raise RewardError(f"reward '{name}' is not differentiable and cannot be trained on; use it with `texkit score`")
        rewards[name] = reward
    return RewardSet(rewards, {name: reward_cfg.weight for name, reward_cfg in config.rewards.items()})


@dataclass
class Session:
    """The built components of a run."""

    config: RunConfig
    device: torch.device
    mesh: Mesh
    generator: Any
    renderer: Any
    rewards: RewardSet
    cache: GeometryCache
    prompts: list[str]
    angles: dict[str, torch.Tensor] = field(default_factory=dict)
    initial: InitialTexture | None = None
    _embeddings: dict[str, PromptEmbedding] = field(default_factory=dict)

    @classmethod
    def build(
        cls, config: RunConfig, need_rewards: bool = True, notify: Callable[[str], None] | None = None, generator: Any = None
    ) -> "Session":
        """Build every component; raises one-line TexkitErrors for bad names or inputs.

        ``notify`` receives one-line notices (the mesh's own texture, an initial texture resized to
        ``texture.size``). ``generator``: an already built generator of ``config.generator`` to use
        instead of building one (``texkit studio`` keeps its generator between paints).
        """
        reg = get_registry()
        rank = distributed.context()
        device = distributed.device_for_rank(config.device, rank) if rank.enabled else resolve_device(config.device)
        mesh_path = config.mesh.path_for_rank(rank.rank)
        mesh_notes: list[str] = []  # printed once texture.init has been read: its error says why in one line
        mesh = load_mesh(mesh_path, config.mesh.normalize, mesh_notes.append)
        initial = load_initial_texture(config.texture, mesh, notify, mesh_notes)  # before any weights are loaded
        for note in mesh_notes if notify is not None else ():
            notify(note)
        mesh = mesh.to(device)
        check_fits(config, device)  # a CUDA run predicted not to fit stops before loading weights
        if generator is None:
            generator = reg.make_generator(config.generator.name, **generator_options(config, device))
        renderer = reg.make_renderer(config.renderer.name, **config.renderer.options)
        if initial is not None and initial.generator_strength != 1.0 and not accepts_strength(generator):
            raise ConfigError(cannot_refine(config.generator.name))
        cpu_mesh = mesh.to("cpu")
        cache = GeometryCache(cpu_mesh)
        reward_set = training_rewards(config) if need_rewards else RewardSet({})
        reward_set.prepare(cpu_mesh, cache)
        session = cls(config, device, mesh, generator, renderer, reward_set, cache, config.prompts.all_prompts())
        session.initial = None if initial is None else initial.to(device)
        for which in ("paint", "reward"):
            elev, azim = camera_angles(getattr(config.cameras, which))
            learn = which in config.cameras.learn
            session.angles[f"{which}_elevation"] = torch.tensor(elev, dtype=torch.float32, device=device).requires_grad_(learn and "elevation" in config.cameras.learn_angles)
            session.angles[f"{which}_azimuth"] = torch.tensor(azim, dtype=torch.float32, device=device).requires_grad_(learn and "azimuth" in config.cameras.learn_angles)
        return session

    def with_mesh(self, path: str, notify: Callable[[str], None] | None = None) -> "Session":
        """A session on another mesh that shares this one's generator, renderer, rewards, prompts and cameras.

        Loads the mesh (normalised as ``mesh.normalize`` says), its geometry cache and the initial
        texture, and prepares the rewards for it; nothing is rebuilt or reloaded otherwise (``texkit
        eval`` paints several meshes with one generator).

        Raises:
            MeshError: the mesh cannot be loaded.
        """
        config = self.config.model_copy(update={"mesh": self.config.mesh.model_copy(update={"path": path, "per_rank": []})})
        cpu_mesh = load_mesh(path, config.mesh.normalize, notify)
        initial = load_initial_texture(config.texture, cpu_mesh, notify)
        cache = GeometryCache(cpu_mesh)
        rewards = RewardSet(dict(self.rewards.items()), self.rewards.weights)
        rewards.prepare(cpu_mesh, cache)
        return dataclasses.replace(
            self,
            config=config,
            mesh=cpu_mesh.to(self.device),
            cache=cache,
            rewards=rewards,
            initial=None if initial is None else initial.to(self.device),
        )

    def views_image(self, texture: Texture, views: int | None = None) -> torch.Tensor:
        """The view grid of one texture, as ``views.png`` shows it: ``views`` cameras (default
        ``output.grid_views``) evenly spaced in azimuth from the front at elevation -20°, at
        ``cameras.radius`` and ``cameras.fov``, on white, four to a row.

        Args:
            texture: one ``(T, T, 3)`` texture, or a batch ``(B, T, T, 3)`` (rendered in one call).
            views: number of cameras.

        Returns:
            ``(rows * S, columns * S, 3)`` image in [0, 1] (S = ``texture.render_size``), or
            ``(B, rows * S, columns * S, 3)`` for a batch.
        """
        from texkit.batching import sample_slice
        from texkit.imageio import image_grid

        grid = self._orbit(views or self.config.output.grid_views)
        columns = min(4, len(grid))
        with torch.no_grad():
            rendered = self._on_white(texture, grid)
        if texture.image.dim() == 3:
            return image_grid(rendered, columns=columns)
        return torch.stack([image_grid(rendered[sample_slice(b, len(grid))], columns=columns) for b in range(texture.batch_size)])

    def _orbit(self, n: int) -> Cameras:
        """``n`` cameras evenly spaced in azimuth from the front at elevation -20° (the previews' cameras)."""
        return Cameras.orbit(n, elevation=-20.0, radius=self.config.cameras.radius, fov=self.config.cameras.fov, device=self.device)

    def _on_white(self, texture: Texture, cameras: Cameras) -> torch.Tensor:
        """``(N, S, S, 3)`` renders of ``texture`` composited on white."""
        out = self.render(texture, cameras)
        return out.rgb * out.alpha + (1.0 - out.alpha)

    def cameras(self, which: str) -> Cameras:
        """The painting or reward cameras from the current (possibly learnable) angles."""
        elev, azim = self.angles[f"{which}_elevation"], self.angles[f"{which}_azimuth"]
        n = len(elev)
        cfg = self.config.cameras
        return Cameras(azim, elev, torch.full((n,), cfg.radius, device=self.device), torch.full((n,), cfg.fov, device=self.device))

    def describe_generator(self) -> dict[str, str]:
        """What the generator says about itself for run records (``Generator.describe()``; empty if it has none)."""
        describe = getattr(self.generator, "describe", None)
        return {str(k): str(v) for k, v in describe().items()} if callable(describe) else {}

    def paint_samples(self, count: int, seed: int = 1234, progress: Any = None) -> tuple[list[str], Texture]:
        """Paint ``count`` samples in one batch for ``texkit generate --samples``.

        Sample i uses prompt ``prompts[i % len(prompts)]`` and view seeds ``seed + 1000 i + k``
        (sample 0 is what `preview` paints alone with the same seed). ``progress``: optional
        ``progress(view_index)`` callback.

        Returns:
            The prompts and the ``(count, T, T, 3)`` textures (sample i equals painting it alone).
        """
        views = len(self.angles["paint_elevation"])
        prompts = [self.prompts[i % len(self.prompts)] for i in range(count)]
        seeds = [[seed + 1000 * i + k for k in range(views)] for i in range(count)]
        with torch.no_grad():
            return prompts, self.paint(prompts, seeds, progress)

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
            strength=1.0 if self.initial is None else self.initial.generator_strength,
        )

    @property
    def weights(self) -> dict[str, float]:
        """``{reward name: weight}``."""
        return self.rewards.weights

    def view_prompts(self, prompt: str | list[str], cameras: Cameras) -> list[PromptEmbedding]:
        """Encoded per-view prompts ("<prefix><prompt>, <front|side|back|...> view"), cached.

        Args:
            prompt: one prompt, or one per sample of a batch.
            cameras: the painting cameras (their view names pick the suffix).

        Returns:
            One `PromptEmbedding` per view, ``(B, L, D)``.
        """
        cfg = self.config.prompts
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        out = []
        for view in cameras.view_names():
            per_sample = []
            for text in prompts:
                text = f"{cfg.prefix}{text}" + (f", {view} view" if cfg.view_suffix else "")
                if text not in self._embeddings:
                    self._embeddings[text] = self.generator.encode_prompt([text], [cfg.negative])
                per_sample.append(self._embeddings[text])
            if len(per_sample) == 1:
                out.append(per_sample[0])
            else:
                out.append(PromptEmbedding(torch.cat([e.cond for e in per_sample]), torch.cat([e.uncond for e in per_sample])))
        return out

    def draw_batch(self, step: int, first_slot: int, batch: int) -> tuple[list[str], list[list[int]]]:
        """Prompts and per-view seeds of ``batch`` samples in slots ``first_slot .. first_slot + batch - 1``.

        Returns:
            ``(prompts, seeds)`` with ``seeds[sample][view]``.
        """
        draws = [self.draw(step, first_slot + b) for b in range(batch)]
        return [p for p, _ in draws], [s for _, s in draws]

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

    def paint(self, prompt: str | list[str], seeds: list[int] | list[list[int]], progress: Any = None) -> Texture:
        """Paint one texture, or B textures in one batch, with the view loop (differentiable when grad is on).

        With ``texture.init`` the loop starts from that texture (`InitialTexture.state`) and, in
        ``"inpaint"`` mode, its painted texels are composited back unchanged (`InitialTexture.compose`).

        Args:
            prompt: one prompt, or B prompts (one per sample).
            seeds: the per-view seeds of one sample, or B lists of them (``seeds[sample][view]``).
            progress: optional ``progress(view_index)`` callback.

        Returns:
            ``(T, T, 3)`` texture, or ``(B, T, T, 3)`` for a batch (sample b equals painting it alone).
        """
        cams = self.cameras("paint")
        batched = not isinstance(prompt, str)
        per_view = [list(v) for v in zip(*seeds)] if batched else seeds
        initial = None if self.initial is None else self.initial.state(len(prompt) if batched else 1)
        state: TextureState = paint_texture(
            self.generator, self.renderer, self.mesh, cams, self.view_prompts(prompt, cams), per_view, self.paint_settings(), progress, initial
        )
        texture = state.texture(self.paint_settings().min_level, background=0.5)
        if self.initial is not None:
            texture = self.initial.compose(texture)
        if batched and texture.batch_size == 1:  # a batch of one stays a batch
            texture = Texture(texture.image.unsqueeze(0), texture.coverage.unsqueeze(0))
        return texture

    def render(self, texture: Texture, cameras: Cameras) -> Any:
        """Render a texture (or a batch) from ``cameras`` at the config's ``texture.render_size``."""
        return self.renderer.render(self.mesh, texture, cameras, self.config.texture.render_size)

    def score_batch(self, texture: Texture, prompts: list[str]) -> Scores:
        """Score B textures (one per prompt) with the run's rewards from the reward cameras."""
        return self.rewards.score(self.mesh, texture, self.cameras("reward"), self.render, self.cache, prompts, self.device)

    def score(self, texture: Texture, prompt: str) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted sum of the rewards of one texture and their metrics."""
        scores = self.score_batch(texture, [prompt])
        return scores.total[0], scores.metrics[0]

    def preview(
        self,
        folder: str | Path,
        seed: int = 1234,
        turntable_frames: int = 0,
        texture: Texture | None = None,
        prompt: str | None = None,
        progress: Any = None,
    ) -> dict[str, Path]:
        """Paint the first prompt with fixed seeds (view k: ``seed + k``) and write what a person looks at.

        With ``texture`` (one ``(T, T, 3)`` texture painted before, e.g. one sample of a batch) nothing
        is painted and that texture is written; ``prompt`` is then its prompt (for the rewards' pictures).

        Writes into ``folder``: ``texture.png``; ``views.png``, a grid of ``output.grid_views``
        cameras evenly spaced in azimuth from the front at elevation -20°, at ``cameras.radius``
        and ``cameras.fov`` of the config; ``mesh.glb``; ``reward_<name>.png`` for each reward whose
        `visualize` returns an image, rendered with the same cameras; and with
        ``turntable_frames > 0`` an animated ``turntable.gif`` of that many views around the mesh.
        ``progress``: optional ``progress(view_index)`` callback while the texture is painted.

        Returns:
            ``{"texture", "views", "glb", "reward_<name>"..., "turntable": path}`` of the written files.
        """
        import numpy as np
        from PIL import Image

        from texkit.imageio import image_grid, write_image
        from texkit.io import atomic_path

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cfg = self.config
        on_white, orbit = self._on_white, self._orbit
        paths = {"texture": folder / "texture.png", "views": folder / "views.png", "glb": folder / "mesh.glb"}
        with torch.no_grad():
            prompt = prompt or self.prompts[0]
            if texture is None:
                texture = self.paint(prompt, [seed + k for k in range(len(self.angles["paint_elevation"]))], progress)
            grid = orbit(cfg.output.grid_views)
            columns = min(4, len(grid))
            write_image(paths["texture"], texture.image)
            write_image(paths["views"], self.views_image(texture))
            ctx = RewardContext(self.mesh, texture, grid, None, self.render, self.cache, prompt, self.device)
            for name, image in self.rewards.pictures(ctx).items():
                paths[f"reward_{name}"] = folder / f"reward_{name}.png"
                write_image(paths[f"reward_{name}"], image_grid(on_white(Texture(image.to(self.device)), grid), columns=columns))
            if turntable_frames > 0:
                frames = (on_white(texture, orbit(turntable_frames)).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
                images = [Image.fromarray(frame) for frame in frames]
                paths["turntable"] = folder / "turntable.gif"
                with atomic_path(paths["turntable"]) as tmp:
                    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
        self.mesh.to("cpu").export(paths["glb"], texture.image.cpu())
        return paths
