"""The data types that cross the contract between the core and its plugins.

Conventions used everywhere:

* images and renders are channels-last, ``(N, H, W, C)``, row 0 at the *top* of the picture;
* colours are floats in [0, 1];
* textures follow `texkit.uv` (v grows upward, row 0 of the image is v = 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:  # pragma: no cover
    from texkit.cameras import Cameras
    from texkit.geometry.cache import GeometryCache
    from texkit.geometry.mesh import Mesh

__all__ = [
    "Texture",
    "RenderOutput",
    "RewardContext",
    "RewardOutput",
    "Renderer",
    "Generator",
    "PromptEmbedding",
    "EnvironmentCheck",
]


@dataclass
class Texture:
    """A UV texture (or a batch of B textures of one mesh) and the mask of texels some view painted.

    Attributes:
        image: ``(H, W, C)`` float tensor in [0, 1] (C = 3 for RGB), row 0 is v = 1; or a batch
            ``(B, H, W, C)`` of B independent samples (prompts, noise draws) on the same mesh.
        coverage: ``(H, W, 1)`` (or ``(B, H, W, 1)``) float tensor in [0, 1]; 1 where at least one
            view painted the texel. Texture-space rewards average over covered texels only.
    """

    image: torch.Tensor
    coverage: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.image.dim() not in (3, 4):
            raise ValueError(f"Texture.image must be (H, W, C) or (B, H, W, C), got shape {tuple(self.image.shape)}")
        if self.coverage is None:
            self.coverage = torch.ones_like(self.image[..., :1])

    @property
    def height(self) -> int:
        """Number of texel rows."""
        return int(self.image.shape[-3])

    @property
    def width(self) -> int:
        """Number of texel columns."""
        return int(self.image.shape[-2])

    @property
    def batch_size(self) -> int:
        """B for a batch ``(B, H, W, C)``; 1 for a single ``(H, W, C)`` texture."""
        return int(self.image.shape[0]) if self.image.dim() == 4 else 1

    def sample(self, index: int) -> "Texture":
        """Sample ``index`` of a batch as a single ``(H, W, C)`` texture (a single texture is its own sample 0)."""
        if self.image.dim() == 3:
            if index != 0:
                raise IndexError(f"sample {index} of a single texture")
            return self
        coverage = self.coverage[index] if self.coverage is not None and self.coverage.dim() == 4 else self.coverage
        return Texture(self.image[index], coverage)

    @classmethod
    def constant(cls, size: int, color: tuple[float, ...] = (0.5, 0.5, 0.5), device: Any = None) -> "Texture":
        """A ``size x size`` texture filled with one colour, fully covered."""
        img = torch.tensor(color, dtype=torch.float32, device=device).expand(size, size, len(color)).clone()
        return cls(img)

    @classmethod
    def load(cls, path: str, device: Any = None) -> "Texture":
        """Read a PNG/JPEG file as an RGB texture (coverage = 1 everywhere)."""
        from texkit.imageio import read_image

        return cls(read_image(path).to(device))

    def to(self, device: Any) -> "Texture":
        """A copy on ``device``."""
        return Texture(self.image.to(device), None if self.coverage is None else self.coverage.to(device))


@dataclass
class RenderOutput:
    """What a renderer returns for a batch of N cameras at resolution H x W.

    All tensors are channels-last with row 0 at the top of the image. Background pixels hold 0
    (``face_id`` holds -1). ``rgb``, ``alpha``, ``depth``, ``normal``, ``uv`` and ``view_cos`` are
    differentiable with respect to the texture and to the camera parameters.

    Attributes:
        rgb: ``(N, H, W, 3)`` shaded colour (the texture colour, unlit), in [0, 1].
        alpha: ``(N, H, W, 1)`` coverage of the object (antialiased edges when enabled).
        depth: ``(N, H, W, 1)`` distance along the view axis from the camera (positive), 0 outside.
        normal: ``(N, H, W, 3)`` unit world-space surface normal (interpolated vertex normals).
        uv: ``(N, H, W, 2)`` texture coordinates of the visible surface point.
        face_id: ``(N, H, W)`` long index of the visible triangle, -1 for background.
        view_cos: ``(N, H, W, 1)`` |cos| of the angle between the normal and the view ray, in [0, 1].
    """

    rgb: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor
    normal: torch.Tensor
    uv: torch.Tensor
    face_id: torch.Tensor
    view_cos: torch.Tensor

    @property
    def views(self) -> int:
        """Number of entries (cameras x samples, sample-major, see `texkit.batching`)."""
        return int(self.face_id.shape[0])

    def __getitem__(self, index: Any) -> "RenderOutput":
        """Select cameras: ``out[2]`` or ``out[1:3]`` keep the batch dimension."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return RenderOutput(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @property
    def mask(self) -> torch.Tensor:
        """``(N, H, W, 1)`` bool tensor, True on pixels covered by a triangle."""
        return (self.face_id >= 0).unsqueeze(-1)


@dataclass
class RewardOutput:
    """What a reward returns.

    Attributes:
        value: scalar tensor, higher is better; differentiable when the reward says it is.
        metrics: named floats for logs and reports (the value itself is logged too).
        images: optional named ``(H, W, 3)`` images in [0, 1] for the report.
    """

    value: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    images: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class RewardContext:
    """Everything a reward may read.

    Attributes:
        mesh: the mesh being textured.
        texture: the current texture (with coverage).
        cameras: the reward cameras (learnable when camera optimisation is on).
        renders: renders of ``texture`` from ``cameras`` (None when the caller did not render).
        render: callable ``render(texture, cameras) -> RenderOutput`` for rewards that need other views.
        geometry: the per-mesh geometry cache (curvatures, symmetry pairs, ...).
        prompt: the text prompt of this sample.
        device: where tensors live.
    """

    mesh: "Mesh"
    texture: Texture
    cameras: "Cameras | None" = None
    renders: RenderOutput | None = None
    render: "Callable[[Texture, Cameras], RenderOutput] | None" = None
    geometry: "GeometryCache | None" = None
    prompt: str = ""
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


@runtime_checkable
class Renderer(Protocol):
    """A differentiable rasteriser. Plugins register a factory ``(**options) -> Renderer``."""

    name: str

    def render(
        self,
        mesh: "Mesh",
        texture: Texture | torch.Tensor,
        cameras: "Cameras",
        resolution: int,
        antialias: bool = True,
    ) -> RenderOutput:
        """Render ``texture`` on ``mesh`` from every camera at ``resolution x resolution``.

        A batch of B textures ``(B, H, W, 3)`` gives ``B * N`` entries, sample-major (entry
        ``b * N + n`` is sample b from camera n; `texkit.batching` has the helpers).

        Args:
            mesh: the mesh (on the renderer's device).
            texture: a `Texture` or an ``(H, W, 3)`` / ``(B, H, W, 3)`` tensor.
            cameras: N cameras.
            resolution: output size in pixels (square images).
            antialias: smooth silhouette edges (gives gradients at the silhouette).
        """
        ...


@dataclass
class PromptEmbedding:
    """Encoded text for classifier-free guidance.

    Attributes:
        cond: ``(B, L, D)`` embeddings of the prompts.
        uncond: ``(B, L, D)`` embeddings of the negative prompts.
    """

    cond: torch.Tensor
    uncond: torch.Tensor


@runtime_checkable
class Generator(Protocol):
    """Paints one view. Plugins register a factory ``(**options) -> Generator``.

    Differentiable with respect to `trainable_parameters` (the LoRA weights).
    """

    name: str
    resolution: int

    def encode_prompt(self, prompts: list[str], negative_prompts: list[str]) -> PromptEmbedding:
        """Encode prompts and negative prompts (no gradient)."""
        ...

    def paint(
        self,
        prompt: PromptEmbedding,
        image: torch.Tensor,
        depth: torch.Tensor,
        keep_mask: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Paint a view.

        Args:
            prompt: encoded prompt for this view.
            image: ``(B, 3, R, R)`` current render in [0, 1] (R = ``resolution``).
            depth: ``(B, 1, R, R)`` depth in [0, 1], 1 nearest, 0 background.
            keep_mask: ``(B, 1, R, R)`` in [0, 1]; 1 where the current render must be kept,
                0 where the model paints (the inpaint region is ``1 - keep_mask``).
            generator: random source of the initial noise and DDIM noise.

        A generator may also take an optional keyword ``strength: float = 1.0`` (refinement,
        ``texture.mode = "refine"``): below 1 it starts denoising from the render's latent noised
        to that fraction of the schedule (SDEdit) instead of pure noise, 0 returning the render.
        The view loop passes it only when it is not 1, so generators without it keep working
        for everything else (`texkit.view_loop.accepts_strength`).

        Returns:
            ``(B, 3, R, R)`` painted image in [0, 1].
        """
        ...

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters fine-tuning updates (LoRA matrices)."""
        ...

    def describe(self) -> dict[str, str]:
        """What a run record should say about this generator: backends that ran, library versions."""
        ...

    def save_adapter(self, directory: str) -> None:
        """Save the trainable weights as a diffusers-loadable LoRA adapter."""
        ...

    def load_adapter(self, directory: str) -> None:
        """Load an adapter written by `save_adapter`."""
        ...


@dataclass
class EnvironmentCheck:
    """The outcome of one environment check of ``texkit doctor`` (plugins add their own).

    Attributes:
        name: what was checked, e.g. ``"renderer torch"``.
        ok: whether it passed.
        detail: one line on what was found (versions, backend, numbers).
        fix: one line on what to do when ``ok`` is False (empty when it passed).
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""
