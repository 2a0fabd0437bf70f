"""Loading real weights: an SD 1.x folder or hub id plus a ControlNet, with one-line errors."""

from __future__ import annotations

from typing import Any

from texkit.errors import WeightsError

__all__ = ["load_components"]


def load_components(model: str, controlnet: str, dtype: Any) -> dict[str, Any]:
    """Load unet, vae, text_encoder, tokenizer, scheduler (DDIM) from ``model`` and a ControlNet.

    Args:
        model: local folder or hub id of a diffusers-format SD 1.x model (subfolders unet, vae,
            text_encoder, tokenizer, scheduler).
        controlnet: local folder or hub id of a ControlNet (the method's
            ``ashawkey/control_v11e_sd15_depth_aware_inpaint`` for the 6-channel condition).
        dtype: torch dtype of the weights.

    Raises:
        WeightsError: naming what was looked for when a part cannot be found or read.
    """
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    parts = {
        "unet": lambda: UNet2DConditionModel.from_pretrained(model, subfolder="unet", torch_dtype=dtype),
        "vae": lambda: AutoencoderKL.from_pretrained(model, subfolder="vae", torch_dtype=dtype),
        "text_encoder": lambda: CLIPTextModel.from_pretrained(model, subfolder="text_encoder", torch_dtype=dtype),
        "tokenizer": lambda: CLIPTokenizer.from_pretrained(model, subfolder="tokenizer"),
        "scheduler": lambda: DDIMScheduler.from_pretrained(model, subfolder="scheduler"),
        "controlnet": lambda: ControlNetModel.from_pretrained(controlnet, torch_dtype=dtype),
    }
    loaded: dict[str, Any] = {}
    for name, load in parts.items():
        where = controlnet if name == "controlnet" else f"{model}/{name}"
        try:
            loaded[name] = load()
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise WeightsError(
                f"could not load the {name} from '{where}' ({first[:160]}); pass a local diffusers-format folder "
                f"(generator.options.model / controlnet) that contains it"
            ) from None
    return loaded
