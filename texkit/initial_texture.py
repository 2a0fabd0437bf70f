"""Starting the view loop from an existing texture (``texture.init``, ``texture.mode``, ``texture.mask``).

The initial texture becomes the view loop's first `TextureState` instead of an empty one:

* which texels count as painted: the PNG's alpha channel when it has one (alpha >= 0.5 after
  resizing), else every texel whose centre lies inside one of the mesh's UV triangles; texels of
  the optional mask PNG (grey level >= 0.5, white = repaint) are taken out of the painted set;
* unpainted texels enter with the tiny weight `FILL_WEIGHT` and the painted colours pushed
  into them (mip-map pull-push, `texkit.back_projection.fill_holes`): far below the trimap's
  0.1 paint count, so they are generated, but the render shows the input's colours there
  instead of the background grey, so pixels on the border of a hole that the trimap keeps do
  not carry the background into the texture;
* ``"inpaint"``: painted texels enter the state with weight 1 and a view-cosine cache of
  `LOCKED_VIEWCOS` (above any view cosine), so the trimap marks them "keep" in every view, and the
  final texture is composited ``painted * init + (1 - painted) * painted_by_the_views``: no
  painted texel changes; only unpainted (and masked) texels are generated;
* ``"refine"`` (SDEdit): painted texels enter with weight ``1 - strength`` (the fill with
  ``FILL_WEIGHT (1 - strength)``) and cache 0, so every
  view repaints them (keep = 0 where no earlier view saw them better), each view starting its
  denoising from the VAE latent of the current render noised to ``strength`` of the schedule
  (the generator's ``paint(..., strength=...)``). Strength 0 returns the input up to the
  back-projection's round trip; strength 1 is painting from scratch (the state is empty).

Both stay differentiable in the LoRA weights and the cameras: the initial state is a constant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F

from texkit.back_projection import TextureState, fill_holes
from texkit.errors import ConfigError, TexkitError
from texkit.imageio import decode_image_file, image_to_rgb
from texkit.types import Texture

if TYPE_CHECKING:  # pragma: no cover
    from texkit.config import TextureConfig
    from texkit.geometry.mesh import Mesh

__all__ = ["InitialTexture", "load_initial_texture", "LOCKED_VIEWCOS", "FILL_WEIGHT", "MESH_TEXTURE"]

LOCKED_VIEWCOS = 2.0
"""View-cosine cache of texels no view may refine (above every view cosine, which is <= 1)."""

FILL_WEIGHT = 1e-3
"""Weight of the pulled-in colours on unpainted texels (a view's splat weight is up to 1)."""

MESH_TEXTURE = "mesh"
"""The value of ``texture.init`` that starts from the mesh's own texture (``Mesh.texture``)."""

Mode = Literal["inpaint", "refine"]


@dataclass
class InitialTexture:
    """An existing texture the view loop starts from.

    Attributes:
        image: ``(T, T, 3)`` float32 colours in [0, 1] at the run's texture size.
        painted: ``(T, T, 1)`` float32 in {0, 1}: 1 on texels that count as painted.
        mode: ``"inpaint"`` (keep painted texels, generate the others) or ``"refine"`` (SDEdit).
        strength: the refinement strength in [0, 1] (``"refine"`` only).
        source: where the texture came from, for messages.
    """

    image: torch.Tensor
    painted: torch.Tensor
    mode: Mode
    strength: float = 1.0
    source: str = ""

    def to(self, device: torch.device | str) -> "InitialTexture":
        """A copy on ``device``."""
        return InitialTexture(self.image.to(device), self.painted.to(device), self.mode, self.strength, self.source)

    @property
    def generator_strength(self) -> float:
        """The ``strength`` every view is painted with: the refinement strength, 1 for ``"inpaint"``."""
        return self.strength if self.mode == "refine" else 1.0

    def state(self, batch: int = 1) -> TextureState:
        """The view loop's first state for ``batch`` samples (the same texture for each).

        Returns:
            ``TextureState`` with ``(T, T, 3 batch)`` colour sums; ``"inpaint"``: weight 1 and cache
            `LOCKED_VIEWCOS` on painted texels; ``"refine"``: weight ``1 - strength``, cache 0
            (all zero, i.e. empty, at strength 1); unpainted texels reached by the pull-push fill
            hold its colours with weight `FILL_WEIGHT` (times ``1 - strength`` for ``"refine"``).
        """
        filled, reached = fill_holes(self.image * self.painted, self.painted, min_level=1)
        image = self.painted * self.image + (1.0 - self.painted) * filled
        weight = self.painted + FILL_WEIGHT * (1.0 - self.painted) * reached
        if self.mode == "inpaint":
            cache = self.painted * LOCKED_VIEWCOS
        else:
            weight, cache = weight * (1.0 - self.strength), torch.zeros_like(self.painted)
        return TextureState.from_texture(image, weight, cache, batch)

    def compose(self, texture: Texture) -> Texture:
        """The final texture: for ``"inpaint"`` the input on painted texels, the views' texture elsewhere.

        Args:
            texture: the view loop's texture, ``(T, T, 3)`` or a batch ``(B, T, T, 3)``.

        Returns:
            ``"inpaint"``: ``painted * init + (1 - painted) * texture`` (coverage 1 on painted
            texels), differentiable in ``texture``; ``"refine"``: ``texture`` itself.
        """
        if self.mode != "inpaint":
            return texture
        painted = self.painted.to(texture.image.device, texture.image.dtype)
        image = painted * self.image.to(painted) + (1.0 - painted) * texture.image
        coverage = texture.coverage if texture.coverage is not None else torch.ones_like(texture.image[..., :1])
        return Texture(image, torch.maximum(coverage, painted.expand_as(coverage)))


def _read(path: Path, what: str, notify: Callable[[str], None] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(H, W, 3)`` colours and ``(H, W)`` alpha (None without an alpha channel), both float32 in [0, 1].

    Decoded as `texkit.imageio.image_to_rgb` says (16-bit and float images keep their values),
    each conversion reported through ``notify`` in one line.

    Raises:
        TexkitError: missing, a folder, or not an image.
    """
    label = f"{what} {path}"
    return decode_image_file(path, what, lambda img: image_to_rgb(img, label, notify, use_alpha=True), "a PNG image", " (paths are relative to the working directory)")


def _resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """``(H, W, C)`` -> ``(size, size, C)``, bilinear (antialiased when shrinking)."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    out = F.interpolate(image.permute(2, 0, 1)[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out[0].permute(1, 2, 0).clamp(0.0, 1.0)


def _sized(image: torch.Tensor, size: int, what: str, notify: Callable[[str], None] | None) -> torch.Tensor:
    """``image`` resized to the run's texture size, with a one-line notice when it was not."""
    height, width = int(image.shape[0]), int(image.shape[1])
    if (height, width) != (size, size) and notify is not None:
        notify(f"{what} is {width}x{height}; resized to {size}x{size} (texture.size)")
    return _resize(image, size)


def load_initial_texture(
    config: "TextureConfig", mesh: "Mesh", notify: Callable[[str], None] | None = None, mesh_notes: Sequence[str] = ()
) -> InitialTexture | None:
    """Read ``texture.init`` (and ``texture.mask``) for a run; None when ``texture.init`` is not set.

    Args:
        config: the run's texture settings (``init``, ``mode``, ``strength``, ``mask``, ``size``).
        mesh: the run's mesh (its UV islands decide the painted texels of an image without alpha;
            ``texture.init = "mesh"`` reads its ``texture``).
        notify: receives one-line notices (an image resized to ``texture.size``).
        mesh_notes: the notices of loading ``mesh``: for ``texture.init = "mesh"`` on a mesh without
            a texture, the error says why (a `TextureProblem`: a missing or undecodable image).

    Returns:
        The initial texture on the CPU, ``(T, T, 3)`` image and ``(T, T, 1)`` painted mask.

    Raises:
        ConfigError: ``init`` without ``mode``, ``mode`` or ``mask`` without ``init``.
        TexkitError: a missing or unreadable image, or ``"mesh"`` for a mesh without a texture.
    """
    if config.init is None:
        if config.mode is not None:
            raise ConfigError(f"texture.mode = \"{config.mode}\" has no texture to start from; set texture.init to a PNG or \"mesh\"")
        if config.mask is not None:
            raise ConfigError("texture.mask needs texture.init (the texture it masks); set texture.init or remove texture.mask")
        return None
    if config.mode is None:
        raise ConfigError(
            "texture.init needs texture.mode: set it to \"inpaint\" (keep the painted texels, generate the rest) "
            "or \"refine\" (repaint everything close to the input, texture.strength)"
        )
    size = config.size
    alpha: torch.Tensor | None = None
    if config.init == MESH_TEXTURE:
        own = mesh.texture
        if own is None:
            from texkit.geometry.mesh_texture import TextureProblem

            problems = [note.reason for note in mesh_notes if isinstance(note, TextureProblem)]
            why = f": {problems[-1]}" if problems else ""
            raise TexkitError(
                f"texture.init = \"mesh\" but mesh '{mesh.name}' has no texture of its own{why}; use a textured GLB or OBJ+MTL, "
                "or set texture.init to a PNG file"
            )
        source = f"the texture of mesh '{mesh.name}'"
        image = _sized(own.detach().float().cpu()[..., :3].clamp(0.0, 1.0), size, source, notify)
    else:
        path = Path(config.init)
        rgb, alpha_np = _read(path, "texture.init", notify)
        source = f"texture.init {path}"
        image = _sized(torch.from_numpy(rgb), size, source, notify)
        if alpha_np is not None:
            alpha = _resize(torch.from_numpy(alpha_np)[..., None], size)
    if alpha is not None:
        painted = (alpha >= 0.5).float()
    else:
        from texkit.geometry.uv_raster import rasterize_uv

        painted = rasterize_uv(mesh.to("cpu"), size).mask[..., None].float()
    if config.mask is not None:
        path = Path(config.mask)
        rgb, _ = _read(path, "texture.mask")
        grey = torch.from_numpy(rgb).mean(dim=-1, keepdim=True)
        repaint = _sized(grey, size, f"texture.mask {path}", notify) >= 0.5
        painted = painted * (~repaint).float()
    return InitialTexture(image.float().contiguous(), painted.contiguous(), config.mode, float(config.strength), source)
