"""Building and loading the two models of the aesthetic reward: a CLIP vision tower and the head.

Real weights come only from local paths the user gives (no downloads): ``clip_path`` is a
transformers CLIP folder (e.g. a local copy of ``openai/clip-vit-large-patch14``; a full
``CLIPModel`` folder works, its text tower is ignored) and ``head_path`` is the LAION head's state
dict as ``.safetensors`` or ``.pth``/``.pt``. For tests and the demo, :func:`tiny_clip_vision` and
:func:`tiny_aesthetic_head` build small seeded random models in code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from texkit import WeightsError
from texkit_rewards_image.aesthetic_head import AestheticHead

if TYPE_CHECKING:  # pragma: no cover
    from transformers import CLIPVisionModelWithProjection

__all__ = ["tiny_clip_vision", "tiny_aesthetic_head", "load_clip_vision", "load_head_state_dict", "load_aesthetic_head"]

_HINT = "pass clip_path=<local CLIP ViT-L/14 folder> and head_path=<LAION head .pth/.safetensors>, or tiny=true"


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
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    config = CLIPVisionConfig(
        image_size=image_size,
        patch_size=patch_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=embed_dim,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPVisionModelWithProjection(config)
    return _frozen(model)


def tiny_aesthetic_head(embed_dim: int = 32, seed: int = 0) -> AestheticHead:
    """A randomly initialised :class:`AestheticHead`, seeded, frozen, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        head = AestheticHead(embed_dim)
    return _frozen(head)


def load_clip_vision(path: str | Path) -> "CLIPVisionModelWithProjection":
    """Load a CLIP vision tower with its projection from a local transformers folder.

    Raises:
        WeightsError: the folder does not exist or holds no loadable CLIP weights.
    """
    from transformers import CLIPVisionModelWithProjection

    path = Path(path).expanduser()
    if not path.is_dir():
        raise WeightsError(f"aesthetic reward: CLIP folder not found: {path}; {_HINT}")
    try:
        model = CLIPVisionModelWithProjection.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(f"aesthetic reward: could not load CLIP from {path} ({first_line}); {_HINT}") from None
    return _frozen(model)


def load_head_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or from a ``.pth``/``.pt`` file (``weights_only=True``).

    Raises:
        WeightsError: missing file, unknown extension, or an unreadable file.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"aesthetic reward: head weights not found: {path}; {_HINT}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        elif path.suffix in (".pth", ".pt", ".bin"):
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        else:
            raise WeightsError(f"aesthetic reward: head_path must end in .safetensors, .pth or .pt, got {path.name}")
    except WeightsError:
        raise
    except Exception as err:  # corrupt file, pickle refused by weights_only, ...
        raise WeightsError(f"aesthetic reward: could not read head weights {path}: {type(err).__name__}: {err}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"aesthetic reward: {path} holds a {type(state).__name__}, expected a state dict")
    return state


def load_aesthetic_head(path: str | Path) -> AestheticHead:
    """Build an :class:`AestheticHead` sized from the file and load its weights.

    Raises:
        WeightsError: the file is missing, unreadable, or its keys/shapes are not the LAION head's.
    """
    state = load_head_state_dict(path)
    first = state.get("layers.0.weight")
    if first is None or first.dim() != 2:
        raise WeightsError(f"aesthetic reward: {path} is not a LAION aesthetic head (no 'layers.0.weight')")
    head = AestheticHead(int(first.shape[1]))
    try:
        head.load_state_dict(state)
    except RuntimeError as err:
        detail = str(err).strip().splitlines()[0]
        raise WeightsError(f"aesthetic reward: {path} does not match the LAION head layout: {detail}") from None
    return _frozen(head)


def _frozen(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    model.requires_grad_(False)
    return model
