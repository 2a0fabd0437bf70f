"""LoRA adapters on the UNet attention projections through peft (Hu et al. 2021, "LoRA").

Adapters are saved as ``pytorch_lora_weights.safetensors`` in the layout of
``StableDiffusionPipeline.save_lora_weights`` (keys ``unet.<module>.lora_A.weight`` ...), so a
plain diffusers pipeline loads them with ``load_lora_weights(folder)``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from texkit.errors import WeightsError

__all__ = ["add_lora", "lora_parameters", "save_lora", "load_lora", "ADAPTER_NAME", "WEIGHT_NAME"]

ADAPTER_NAME = "texkit"
WEIGHT_NAME = "pytorch_lora_weights.safetensors"
DEFAULT_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def add_lora(unet: Any, rank: int = 4, alpha: float | None = None, targets: tuple[str, ...] = DEFAULT_TARGETS) -> None:
    """Attach a LoRA adapter (A Gaussian, B zero: the model is unchanged until trained)."""
    from peft import LoraConfig

    config = LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else rank, target_modules=list(targets), init_lora_weights="gaussian")
    unet.add_adapter(config, adapter_name=ADAPTER_NAME)


def lora_parameters(unet: Any) -> list[torch.nn.Parameter]:
    """The LoRA matrices (the only trainable parameters)."""
    return [p for n, p in unet.named_parameters() if "lora_" in n]


def save_lora(unet: Any, directory: str | Path) -> Path:
    """Write the adapter to ``directory`` atomically (a temporary folder renamed into place)."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=ADAPTER_NAME))
    state = {k: v.detach().float().cpu().contiguous() for k, v in state.items()}
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        StableDiffusionPipeline.save_lora_weights(tmp, unet_lora_layers=state, safe_serialization=True)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory / WEIGHT_NAME


def load_lora(unet: Any, directory: str | Path) -> None:
    """Load weights written by :func:`save_lora` into the unet's adapter."""
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = Path(directory) / WEIGHT_NAME
    if not path.exists():
        raise WeightsError(f"no LoRA adapter at {path}; pass the folder written by `texkit train` (it holds {WEIGHT_NAME})")
    state = load_file(str(path))
    state = {k.removeprefix("unet."): v for k, v in state.items() if k.startswith("unet.")}
    try:
        result = set_peft_model_state_dict(unet, convert_unet_state_dict_to_peft(state), adapter_name=ADAPTER_NAME)
    except RuntimeError as err:  # shape mismatch: another rank or another base model
        first = str(err).strip().splitlines()[0][:160]
        raise WeightsError(f"adapter at {path} does not fit this model ({first}); build the generator with the lora_rank/lora_targets it was trained with") from None
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise WeightsError(f"adapter at {path} does not match this model (e.g. key {unexpected[0]}); was it trained on another base model?")
