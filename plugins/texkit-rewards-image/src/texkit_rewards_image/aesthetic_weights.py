"""Building and loading the two models of the aesthetic reward: a CLIP vision tower and the head.

Real weights come the way transformers users expect: ``clip_path`` is a hub id (e.g.
``openai/clip-vit-large-patch14``) or a local transformers CLIP folder (a full ``CLIPModel``
works, its text tower is ignored); ``head_path`` is the LAION head's state dict as
``.safetensors`` or ``.pth``/``.pt``, a local file or a file in a hub repository written
``org/name/path/in/repo.pth``. Hub sources go through the Hugging Face cache with the usual
``revision``, ``token``, ``cache_dir`` and ``local_files_only`` (None follows ``HF_HUB_OFFLINE``);
a failure says whether the source was not found or is not cached while offline. For tests and the
demo, `tiny_aesthetic_head` builds a small seeded random head in code (and
`texkit_rewards_image.clip_weights.tiny_clip_vision` the CLIP tower); the CLIP loading itself
is `texkit_rewards_image.clip_weights.load_clip_part`, shared with ``clip_score``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from texkit import WeightsError
from texkit.hub import HubOptions, describe_failure, looks_like_hub_id
from texkit_rewards_image.aesthetic_head import AestheticHead
from texkit_rewards_image.clip_weights import frozen, load_clip_part, tiny_clip_vision

if TYPE_CHECKING:  # pragma: no cover
    from transformers import CLIPVisionModelWithProjection

__all__ = [
    "tiny_clip_vision",
    "tiny_aesthetic_head",
    "load_clip_vision",
    "load_head_state_dict",
    "load_aesthetic_head",
    "hub_file",
    "resolve_head_path",
]

_HINT = (
    "pass clip_path=<CLIP ViT-L/14 hub id or folder> and head_path=<LAION head .pth/.safetensors file, "
    "or org/name/file in a hub repo>, or tiny=true"
)


def hub_file(spec: str) -> tuple[str, str] | None:
    """``("org/name", "path/in/repo.pth")`` for a head given as ``org/name/path/in/repo.pth`` that is not a local path."""
    path = Path(spec).expanduser()
    parts = spec.split("/")
    if path.exists() or spec.startswith(("/", ".", "~")) or len(parts) < 3 or not all(parts):
        return None
    repo = "/".join(parts[:2])
    return (repo, "/".join(parts[2:])) if looks_like_hub_id(repo) else None


def resolve_head_path(spec: str | Path, hub: HubOptions | None = None) -> Path:
    """A local path for the head: the file itself, or the hub file downloaded into (or found in) the cache.

    Raises:
        WeightsError: not cached while offline, no such repository, file or revision.
    """
    hub = hub or HubOptions()
    remote = hub_file(str(spec))
    if remote is None:
        return Path(spec).expanduser()
    from huggingface_hub import hf_hub_download

    repo, filename = remote
    try:
        return Path(hf_hub_download(repo, filename, **hub.kwargs(variant=False)))
    except Exception as err:
        raise WeightsError("aesthetic reward: " + describe_failure(err, "head weights", repo, hub, missing=filename)) from None


def tiny_aesthetic_head(embed_dim: int = 32, seed: int = 0) -> AestheticHead:
    """A randomly initialised `AestheticHead`, seeded, frozen, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        head = AestheticHead(embed_dim)
    return frozen(head)


def load_clip_vision(path: str | Path, hub: HubOptions | None = None) -> "CLIPVisionModelWithProjection":
    """Load a CLIP vision tower with its projection from a hub id or a local transformers folder.

    Args:
        path: hub id (``openai/clip-vit-large-patch14``) or folder (a full ``CLIPModel`` folder works).
        hub: revision, token, cache_dir, local_files_only for a hub id.

    Raises:
        WeightsError: the folder does not exist, the hub id is not found or not cached while
            offline, or the weights cannot be loaded.
    """
    return load_clip_part("CLIPVisionModelWithProjection", path, hub, "aesthetic reward", _HINT)


def load_head_state_dict(path: str | Path, hub: HubOptions | None = None) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or from a ``.pth``/``.pt`` file (``weights_only=True``).

    Args:
        path: a local file, or ``org/name/path/in/repo.ext`` for a file in a hub repository.
        hub: revision, token, cache_dir, local_files_only for a hub file.

    Raises:
        WeightsError: missing file, unknown extension, or an unreadable file.
    """
    path = resolve_head_path(path, hub)
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


def load_aesthetic_head(path: str | Path, hub: HubOptions | None = None) -> AestheticHead:
    """Build an `AestheticHead` sized from the file and load its weights.

    Args:
        path: local file or ``org/name/path/in/repo.ext``.
        hub: revision, token, cache_dir, local_files_only for a hub file.

    Raises:
        WeightsError: the file is missing, unreadable, or its keys/shapes are not the LAION head's.
    """
    state = load_head_state_dict(path, hub)
    first = state.get("layers.0.weight")
    if first is None or first.dim() != 2:
        raise WeightsError(f"aesthetic reward: {path} is not a LAION aesthetic head (no 'layers.0.weight')")
    head = AestheticHead(int(first.shape[1]))
    try:
        head.load_state_dict(state)
    except RuntimeError as err:
        detail = str(err).strip().splitlines()[0]
        raise WeightsError(f"aesthetic reward: {path} does not match the LAION head layout: {detail}") from None
    return frozen(head)
