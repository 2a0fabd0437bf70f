"""The ``aesthetic`` reward: LAION aesthetic score of the renders, averaged over reward views.

r = mean over views v of A(render_v), where A is the LAION improved aesthetic predictor
(Schuhmann et al. 2022): the renders are composited over a background colour, resized to the
CLIP input size, CLIP-normalised, embedded by the CLIP ViT-L/14 image tower with its projection,
L2-normalised, and scored by an MLP head (METHOD.md section 4.1). Every step is differentiable, so
with learnable cameras this is the camera-pose-aware reward. The CLIP and head weights are frozen:
gradients reach only the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pydantic
import torch
from pydantic import Field

import texkit
from texkit_rewards_image.aesthetic_weights import hub_file, load_aesthetic_head, load_clip_vision, tiny_aesthetic_head
from texkit_rewards_image.clip_weights import (
    ClipRenderReward,
    ClipSourceParams,
    check_clip_source,
    place,
    tiny_clip_vision,
)
from texkit_rewards_image.preprocess import clip_pixel_values, composite_over_background

__all__ = ["AestheticReward", "aesthetic_scores"]


class AestheticParams(ClipSourceParams):
    """Parameters of the ``aesthetic`` reward."""

    model_config = pydantic.ConfigDict(extra="forbid")
    clip_path: Optional[str] = Field(
        None,
        description="CLIP ViT-L/14: a hub id (openai/clip-vit-large-patch14) or a local transformers folder; "
        "'tiny' for a random test model.",
    )
    head_path: Optional[str] = Field(
        None,
        description="LAION aesthetic head state dict (.safetensors or .pth): a local file, or org/name/file in a hub repository.",
    )
    head_revision: Optional[str] = Field(None, description="Hub revision of the repository of head_path.")


def aesthetic_scores(
    images: torch.Tensor,
    alpha: torch.Tensor | None,
    clip: torch.nn.Module,
    head: torch.nn.Module,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> torch.Tensor:
    """Aesthetic score of each image, differentiable with respect to ``images`` and ``alpha``.

    Args:
        images: ``(N, H, W, 3)`` premultiplied colours in [0, 1].
        alpha: ``(N, H, W, 1)`` coverage in [0, 1], or None for opaque images.
        clip: a ``CLIPVisionModelWithProjection`` (on the images' device and dtype).
        head: the score head, ``(N, D) -> (N,)``.
        background: RGB colour composited behind the object.

    Returns:
        ``(N,)`` scores (about 1-10 with the LAION weights).
    """
    opaque = composite_over_background(images, alpha, background)
    pixels = clip_pixel_values(opaque, int(clip.config.image_size))
    embedding = clip(pixel_values=pixels).image_embeds
    embedding = embedding / embedding.norm(dim=-1, keepdim=True)
    return head(embedding)


class AestheticReward(ClipRenderReward):
    """LAION aesthetic predictor on CLIP ViT-L/14, mean over the reward views (higher is better)."""

    name = "aesthetic"
    description = "LAION aesthetic predictor (CLIP ViT-L/14 + MLP head) on the renders, mean over views."
    Params = AestheticParams

    def check_weights(self) -> None:
        """Both weight sources are given and can exist (``clip_path`` a folder or hub id, ``head_path`` a file or hub file).

        Raises:
            WeightsError: a source is missing or cannot exist.
        """
        p = self.params
        missing = [key for key in ("clip_path", "head_path") if not getattr(p, key)]
        if missing:
            raise texkit.WeightsError(
                f"aesthetic reward needs weights: set {' and '.join(missing)} in [rewards.aesthetic] "
                "(CLIP ViT-L/14 hub id or folder, LAION head .pth/.safetensors file or org/name/file on the hub), "
                "or tiny=true for a random test model"
            )
        check_clip_source(p.clip_path, "aesthetic reward")
        if hub_file(p.head_path) is None and not Path(p.head_path).expanduser().is_file():
            raise texkit.WeightsError(
                f"aesthetic reward: head_path file not found: {p.head_path}; give a local file or org/name/file in a hub repository"
            )

    def models(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[torch.nn.Module, torch.nn.Module]:
        """The frozen ``(clip, head)`` pair on ``device`` in ``dtype``, loaded on first use.

        Raises:
            WeightsError: the weights cannot be loaded.
        """
        if self._models is None:
            if self.uses_tiny_models:
                clip = tiny_clip_vision(self.params.seed)
                head = tiny_aesthetic_head(int(clip.config.projection_dim), self.params.seed)
            else:
                clip = load_clip_vision(self.params.clip_path, self.params.hub())
                head = load_aesthetic_head(self.params.head_path, self.params.hub(self.params.head_revision))
                if head.embed_dim != clip.config.projection_dim:
                    raise texkit.WeightsError(
                        f"aesthetic reward: head expects {head.embed_dim}-d embeddings but the CLIP model gives "
                        f"{clip.config.projection_dim}-d; use the ViT-L/14 CLIP the head was trained on"
                    )
            self._models = (clip, head)
        place(self._models, device, dtype)
        return self._models

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Score the renders in ``ctx.renders``.

        Raises:
            RewardError: ``ctx.renders`` is missing.
        """
        renders = self.renders(ctx)
        clip, head = self.models(renders.rgb.device, renders.rgb.dtype)
        scores = aesthetic_scores(renders.rgb, renders.alpha, clip, head, tuple(self.params.background))
        value = scores.mean()
        detached = scores.detach()
        metrics = {"aesthetic_min": float(detached.min()), "aesthetic_max": float(detached.max())}
        return texkit.RewardOutput(value=value, metrics=metrics)


@texkit.hookimpl
def texkit_register_rewards(register) -> None:
    """Register the ``aesthetic`` reward."""
    register(AestheticReward)
