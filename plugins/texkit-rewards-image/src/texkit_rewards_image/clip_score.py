"""The ``clip_score`` reward: text alignment of the renders, the cosine of CLIP image and text embeddings.

r = mean over views v of cos(e_I(render_v), e_T(text)), where e_I is the projected CLIP image
embedding (the renders composited over a background colour, resized to the CLIP input size and
CLIP-normalised, as for ``aesthetic``) and e_T the projected CLIP text embedding of the sample's
prompt (Radford et al. 2021; the CLIPScore of Hessel et al. 2021 without its 2.5 w-clipping).
Every step on the image side is differentiable, so the reward serves as a metric and as a
regulariser against reward hacking in training (as in DRaFT, Clark et al. 2024, and AlignProp,
Prabhudesai et al. 2023). CLIP is frozen; the text embedding is computed once per text.
"""

from __future__ import annotations

from typing import Any, Optional

import pydantic
import torch
from pydantic import Field

import texkit
from texkit_rewards_image.clip_weights import (
    ClipRenderReward,
    ClipSourceParams,
    check_clip_source,
    load_clip_part,
    place,
    tiny_clip_model,
)
from texkit_rewards_image.preprocess import clip_pixel_values, composite_over_background

__all__ = ["ClipScore", "clip_image_embeddings", "clip_text_embeddings", "clip_cosines"]

_HINT = "pass clip_path=<CLIP hub id or folder with its tokenizer, e.g. openai/clip-vit-large-patch14>, or tiny=true"


class ClipScoreParams(ClipSourceParams):
    """Parameters of the ``clip_score`` reward."""

    model_config = pydantic.ConfigDict(extra="forbid")
    text: Optional[str] = Field(
        None, description="Compare every render with this text instead of the sample's prompt (without prefix and view suffix)."
    )


def _pooled(output: Any) -> torch.Tensor:
    """The projected embeddings of ``get_image_features`` / ``get_text_features`` (a tensor in
    transformers 4, the ``pooler_output`` of a model output in transformers 5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def clip_image_embeddings(
    images: torch.Tensor, alpha: torch.Tensor | None, model: torch.nn.Module, background: tuple[float, float, float] = (1.0, 1.0, 1.0)
) -> torch.Tensor:
    """L2-normalised projected CLIP image embeddings, differentiable with respect to ``images`` and ``alpha``.

    Args:
        images: ``(N, H, W, 3)`` premultiplied colours in [0, 1].
        alpha: ``(N, H, W, 1)`` coverage in [0, 1], or None for opaque images.
        model: a ``CLIPModel`` on the images' device and dtype.
        background: RGB colour composited behind the object.

    Returns:
        ``(N, D)`` unit vectors.
    """
    pixels = clip_pixel_values(composite_over_background(images, alpha, background), int(model.config.vision_config.image_size))
    embedding = _pooled(model.get_image_features(pixel_values=pixels))
    return embedding / embedding.norm(dim=-1, keepdim=True)


def clip_text_embeddings(texts: list[str], model: torch.nn.Module, tokenizer: Any) -> torch.Tensor:
    """L2-normalised projected CLIP text embeddings (no gradient: the text is data).

    The texts are tokenised with ``tokenizer`` (padded to the longest, truncated at the model's
    ``max_position_embeddings``, 77 for CLIP) and embedded on the model's device and dtype.

    Args:
        texts: the texts.
        model: a ``CLIPModel``.
        tokenizer: its ``CLIPTokenizer``.

    Returns:
        ``(len(texts), D)`` unit vectors.
    """
    first = next(model.parameters())
    tokens = tokenizer(
        texts, padding=True, truncation=True, max_length=int(model.config.text_config.max_position_embeddings), return_tensors="pt"
    )
    with torch.no_grad():
        embedding = _pooled(
            model.get_text_features(input_ids=tokens["input_ids"].to(first.device), attention_mask=tokens["attention_mask"].to(first.device))
        )
    return embedding / embedding.norm(dim=-1, keepdim=True)


def clip_cosines(image_embeddings: torch.Tensor, text_embedding: torch.Tensor) -> torch.Tensor:
    """``(N,)`` cosines of ``(N, D)`` unit image embeddings with one ``(D,)`` or ``(1, D)`` unit text embedding."""
    return image_embeddings @ text_embedding.reshape(-1).to(image_embeddings.dtype)


class ClipScore(ClipRenderReward):
    """CLIP image-text cosine of the renders with the sample's prompt, mean over the reward views (higher is better)."""

    name = "clip_score"
    description = "Text alignment: cosine of CLIP image and text embeddings of the renders and the prompt, mean over views."
    Params = ClipScoreParams

    def __init__(self, params: "pydantic.BaseModel | dict | None" = None, **overrides: object) -> None:
        """Validate parameters and check ``clip_path`` (loading waits for the first call); text embeddings are memoised.

        Raises:
            ConfigError: bad parameter.
            WeightsError: no ``clip_path`` (and not tiny), or one that is neither a folder nor a hub id.
        """
        super().__init__(params, **overrides)
        self._texts: dict[tuple[str, str, torch.dtype], torch.Tensor] = {}

    def check_weights(self) -> None:
        """``clip_path`` is given and is a folder or a hub id.

        Raises:
            WeightsError: it is missing or cannot exist.
        """
        if not self.params.clip_path:
            raise texkit.WeightsError(
                "clip_score reward needs weights: set clip_path in [rewards.clip_score] "
                "(a CLIP hub id such as openai/clip-vit-large-patch14 or a local CLIPModel folder), or tiny=true for a random test model"
            )
        check_clip_source(self.params.clip_path, "clip_score reward")

    def models(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[torch.nn.Module, Any]:
        """The frozen ``(CLIPModel, tokenizer)`` with the model on ``device`` in ``dtype``, loaded on first use.

        Raises:
            WeightsError: the weights or the tokenizer cannot be loaded.
        """
        if self._models is None:
            p = self.params
            if p.uses_tiny_models:
                self._models = tiny_clip_model(p.seed)
            else:
                model = load_clip_part("CLIPModel", p.clip_path, p.hub(), "clip_score reward", _HINT)
                self._models = (model, load_clip_part("CLIPTokenizer", p.clip_path, p.hub(), "clip_score reward", _HINT))
        place(self._models[:1], device, dtype)
        return self._models

    def text_embedding(self, text: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The ``(D,)`` unit text embedding of ``text``, memoised per text, device and dtype."""
        key = (text, str(device), dtype)
        if key not in self._texts:
            model, tokenizer = self.models(device, dtype)
            self._texts[key] = clip_text_embeddings([text], model, tokenizer)[0]
        return self._texts[key]

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Score the renders in ``ctx.renders`` against ``params.text`` or ``ctx.prompt``.

        Raises:
            RewardError: ``ctx.renders`` is missing, or there is no text to compare with.
        """
        renders = self.renders(ctx)
        text = self.params.text if self.params.text is not None else ctx.prompt
        if not text.strip():
            raise texkit.RewardError("the clip_score reward compares the renders with a text: the sample has no prompt; set 'text' in [rewards.clip_score]")
        rgb = renders.rgb
        model, _ = self.models(rgb.device, rgb.dtype)
        images = clip_image_embeddings(rgb, renders.alpha, model, tuple(self.params.background))
        cosines = clip_cosines(images, self.text_embedding(text, rgb.device, rgb.dtype))
        detached = cosines.detach()
        metrics = {"clip_score_min": float(detached.min()), "clip_score_max": float(detached.max())}
        return texkit.RewardOutput(value=cosines.mean(), metrics=metrics)


@texkit.hookimpl
def texkit_register_rewards(register: Any) -> None:
    """Register the ``clip_score`` reward."""
    register(ClipScore)
