"""CLIP weights for the image rewards: one loader for hub ids and local folders, and tiny models built in code.

``aesthetic`` reads the image tower with its projection (``CLIPVisionModelWithProjection``),
``clip_score`` the whole ``CLIPModel`` and its ``CLIPTokenizer``. Both come from the same source
the way transformers users expect: a hub id (e.g. ``openai/clip-vit-large-patch14``) resolved
through the Hugging Face cache with the usual ``revision``, ``token``, ``cache_dir`` and
``local_files_only`` (None follows ``HF_HUB_OFFLINE``), or a local transformers folder (a full
``CLIPModel`` folder serves both rewards). A failure raises `texkit.WeightsError` with one line
saying whether the source was not found or is not cached while offline. transformers is imported
only here, inside the functions, so loading the plugin registry stays fast.

For tests and the demo, `tiny_clip_vision` and `tiny_clip_model` build small seeded random
models in code; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import pydantic
import torch
from pydantic import Field

import texkit
from texkit import WeightsError
from texkit.hub import HubOptions, describe_failure, looks_like_hub_id

if TYPE_CHECKING:  # pragma: no cover
    from transformers import CLIPModel, CLIPVisionModelWithProjection

__all__ = [
    "ClipSourceParams",
    "ClipRenderReward",
    "check_clip_source",
    "load_clip_part",
    "tiny_clip_vision",
    "tiny_clip_model",
    "tiny_clip_tokenizer",
    "frozen",
    "place",
]

#: What each part is called in messages, and the file that must exist in its hub repository or folder.
_PARTS = {
    "CLIPVisionModelWithProjection": ("CLIP", "config.json"),
    "CLIPModel": ("CLIP", "config.json"),
    "CLIPTokenizer": ("CLIP tokenizer", "tokenizer_config.json"),
}


class ClipSourceParams(pydantic.BaseModel):
    """The parameters every CLIP-based reward takes: where the weights come from, and the background."""

    model_config = pydantic.ConfigDict(extra="forbid")
    clip_path: Optional[str] = Field(
        None, description="CLIP: a hub id (e.g. openai/clip-vit-large-patch14) or a local transformers folder; 'tiny' for a random test model."
    )
    revision: Optional[str] = Field(None, description="Hub revision (branch, tag or commit) of clip_path.")
    token: Optional[str] = Field(None, description="Hub token for gated or private repositories (default: HF_TOKEN / the login).")
    cache_dir: Optional[str] = Field(None, description="Hugging Face cache folder (default: HF_HUB_CACHE / HF_HOME).")
    local_files_only: Optional[bool] = Field(None, description="Never download (default: follows HF_HUB_OFFLINE).")
    tiny: bool = Field(False, description="Use tiny seeded random models built in code (tests, demo).")
    seed: int = Field(0, description="Seed of the tiny models.")
    background: tuple[float, float, float] = Field((1.0, 1.0, 1.0), description="RGB in [0,1] behind the object.")

    @property
    def uses_tiny_models(self) -> bool:
        """True for the tiny random models (``tiny=true`` or ``clip_path='tiny'``)."""
        return bool(self.tiny or self.clip_path == "tiny")

    def hub(self, revision: Optional[str] = None) -> HubOptions:
        """The hub options of these parameters, at ``revision`` (default: ``self.revision``)."""
        return HubOptions(
            revision=revision if revision is not None else self.revision,
            token=self.token,
            cache_dir=self.cache_dir,
            local_files_only=self.local_files_only,
        )


class ClipRenderReward(texkit.Reward):
    """Base of the rewards that run CLIP on the renders: differentiable, reads renders, loads its models lazily.

    A subclass sets ``name``, ``description`` and ``Params`` (a `ClipSourceParams`), implements
    ``check_weights`` (called when the reward is built, unless it runs on tiny models) and fills
    ``self._models`` on first use.
    """

    differentiable = True
    needs_renders = True
    Params = ClipSourceParams

    def __init__(self, params: "pydantic.BaseModel | dict | None" = None, **overrides: object) -> None:
        """Validate parameters and check the weight sources (loading waits for the first call).

        Raises:
            ConfigError: bad parameter.
            WeightsError: no weights given (and not tiny), or a given source cannot exist.
        """
        super().__init__(params, **overrides)
        self._models: tuple[Any, ...] | None = None
        if not self.uses_tiny_models:
            self.check_weights()

    @property
    def uses_tiny_models(self) -> bool:
        """True when the reward runs on the tiny random models (``tiny=true`` or ``clip_path='tiny'``)."""
        return self.params.uses_tiny_models

    def check_weights(self) -> None:
        """Raise `texkit.WeightsError` when the configured weights cannot exist (no download happens here)."""
        raise NotImplementedError

    def renders(self, ctx: texkit.RewardContext) -> texkit.RenderOutput:
        """``ctx.renders``.

        Raises:
            RewardError: the caller did not render the reward views.
        """
        if ctx.renders is None:
            raise texkit.RewardError(f"the {self.name} reward reads renders: render the reward views first (ctx.renders)")
        return ctx.renders


def check_clip_source(path: str, who: str) -> None:
    """Refuse a ``clip_path`` that is neither an existing folder nor a hub id (checked when a reward is built).

    Args:
        path: the ``clip_path`` parameter.
        who: the reward, for the message (e.g. ``"aesthetic reward"``).

    Raises:
        WeightsError: ``path`` is not a folder and cannot be a hub id.
    """
    if not looks_like_hub_id(path) and not Path(path).expanduser().is_dir():
        raise WeightsError(f"{who}: clip_path is not a folder or a hub id: {path}; give a CLIP folder or e.g. openai/clip-vit-large-patch14")


def load_clip_part(part: str, path: str | Path, hub: HubOptions | None, who: str, hint: str) -> Any:
    """Load one CLIP part from a hub id or a local transformers folder, frozen and in eval mode.

    Args:
        part: ``"CLIPVisionModelWithProjection"``, ``"CLIPModel"`` or ``"CLIPTokenizer"``.
        path: hub id (``openai/clip-vit-large-patch14``) or folder.
        hub: revision, token, cache_dir, local_files_only for a hub id (None: the defaults).
        who: the reward, for messages.
        hint: what to pass instead, appended to messages about local folders.

    Returns:
        The model (``requires_grad=False``, eval mode) or the tokenizer.

    Raises:
        WeightsError: the folder does not exist, the hub id is not found or not cached while
            offline, or the files cannot be loaded.
    """
    import transformers

    cls = getattr(transformers, part)
    what, probe = _PARTS[part]
    hub = hub or HubOptions()
    if looks_like_hub_id(str(path)):
        from huggingface_hub import hf_hub_download

        try:
            hf_hub_download(str(path), probe, **hub.kwargs(variant=False))
            loaded = cls.from_pretrained(str(path), **hub.kwargs(variant=False))
        except Exception as err:
            raise WeightsError(f"{who}: " + describe_failure(err, what, str(path), hub, missing=probe)) from None
        return frozen(loaded)
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise WeightsError(f"{who}: CLIP folder not found: {folder}; {hint}")
    try:
        loaded = cls.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, TypeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(f"{who}: could not load {what} from {folder} ({first_line}); {hint}") from None
    return frozen(loaded)


def tiny_clip_vision(
    seed: int = 0, image_size: int = 224, patch_size: int = 32, embed_dim: int = 32
) -> "CLIPVisionModelWithProjection":
    """A small random CLIP vision tower with projection (2 layers, width 32), seeded.

    Args:
        seed: seed of the weight initialisation (the global RNG is left untouched).
        image_size: input resolution.
        patch_size: side of the square patches (must divide ``image_size``).
        embed_dim: size of the projected image embedding.

    Returns:
        A frozen ``CLIPVisionModelWithProjection`` in eval mode.
    """
    from transformers import CLIPVisionModelWithProjection

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPVisionModelWithProjection(_tiny_vision_config(image_size, patch_size, embed_dim))
    return frozen(model)


def tiny_clip_tokenizer() -> Any:
    """The byte-level CLIP tokenizer of the tiny models (256 byte symbols, no merges), built in code.

    It is the tiny Stable Diffusion's tokenizer (`texkit_diffusers.tiny.build_byte_tokenizer`),
    so the texkit-diffusers plugin must be installed.

    Raises:
        WeightsError: texkit-diffusers is not installed.
    """
    try:
        from texkit_diffusers.tiny import build_byte_tokenizer
    except ImportError:
        raise WeightsError(
            "the tiny CLIP text model uses the byte tokenizer of texkit-diffusers: pip install texkit-diffusers, or give clip_path"
        ) from None
    return build_byte_tokenizer()


def tiny_clip_model(
    seed: int = 0, image_size: int = 224, patch_size: int = 32, embed_dim: int = 32
) -> tuple["CLIPModel", Any]:
    """A small random ``CLIPModel`` (image and text towers: 2 layers, width 32) and its tokenizer, seeded.

    Args:
        seed: seed of the weight initialisation (the global RNG is left untouched).
        image_size: input resolution of the image tower.
        patch_size: side of the square patches (must divide ``image_size``).
        embed_dim: size of the shared image-text embedding.

    Returns:
        ``(model, tokenizer)``: a frozen ``CLIPModel`` in eval mode and `tiny_clip_tokenizer`.
    """
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig

    tokenizer = tiny_clip_tokenizer()
    text = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=embed_dim,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = _tiny_vision_config(image_size, patch_size, embed_dim)
    config = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=embed_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config)
    return frozen(model), tokenizer


def _tiny_vision_config(image_size: int, patch_size: int, embed_dim: int) -> Any:
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        image_size=image_size,
        patch_size=patch_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=embed_dim,
    )


def place(modules: tuple[torch.nn.Module, ...], device: torch.device | str, dtype: torch.dtype) -> None:
    """Move every module to ``device`` and ``dtype`` unless the first already is there."""
    first = next(modules[0].parameters())
    if first.device != torch.device(device) or first.dtype != dtype:
        for module in modules:
            module.to(device=device, dtype=dtype)


def frozen(model: Any) -> Any:
    """``model`` in eval mode with ``requires_grad=False`` (anything without parameters, e.g. a tokenizer, as is)."""
    if isinstance(model, torch.nn.Module):
        model.eval()
        model.requires_grad_(False)
    return model
