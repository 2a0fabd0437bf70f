"""Loading real weights the diffusers way: SD 1.x and a ControlNet, with one-line errors.

Each of ``model`` and ``controlnet`` is one of

* a hub id (``org/name``), resolved through the Hugging Face cache at ``revision`` (with ``token``
  for gated or private repositories, ``cache_dir`` or ``HF_HOME``/``HF_HUB_CACHE`` for the cache,
  and no download when ``local_files_only`` or ``HF_HUB_OFFLINE`` says so);
* a local diffusers-format folder (``model``: subfolders unet, vae, text_encoder, tokenizer,
  scheduler; ``controlnet``: config.json and the weights);
* a single checkpoint file (``.safetensors`` / ``.ckpt``, a local path or an https URL), loaded
  with diffusers' ``from_single_file`` (which needs the base model's config from the hub cache).

``variant`` picks weight files such as ``*.fp16.safetensors`` (a ControlNet without that variant
falls back to its default weights, cast to ``dtype``, as diffusers pipelines do). A failure names the part and says
whether the source was not found, not cached while offline, gated, or missing a revision or
variant. The ControlNet's input channels are checked against the generator's ``condition``
with advice that fits what the ControlNet is (a 3-channel *inpainting* ControlNet is not told to
take depth).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from texkit import ConfigError, WeightsError
from texkit.hub import HubOptions, describe_failure, looks_like_hub_id

__all__ = ["load_components", "check_controlnet", "is_single_file", "MODEL_PARTS"]

logger = logging.getLogger(__name__)

MODEL_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
DEPTH_AWARE_INPAINT = "ashawkey/control_v11e_sd15_depth_aware_inpaint"
DEPTH_CONTROLNET = "lllyasviel/control_v11f1p_sd15_depth"


def is_single_file(source: str) -> bool:
    """A checkpoint file (local or an https URL) rather than a folder or hub id."""
    return source.lower().endswith(SINGLE_FILE_SUFFIXES) and (source.startswith(("http://", "https://")) or not Path(source).expanduser().is_dir())


def check_controlnet(channels: int, source: str, condition: str) -> None:
    """Refuse a ControlNet that does not fit ``condition``, with advice that fits the ControlNet.

    ``inpaint`` (the method's) needs the 6-channel depth-aware inpainting ControlNet (RGB of the
    render with the unpainted region masked, plus depth and mask); ``depth`` needs a 3-channel
    depth ControlNet. A 3-channel ControlNet whose name says inpainting (``control_v11p_sd15_inpaint``)
    takes masked RGB, not depth, so it fits neither.

    Raises:
        ConfigError: naming the channels, what the ControlNet is and what to use instead.
    """
    name = source.lower()
    if channels == 6:
        if condition != "inpaint":
            raise ConfigError(
                f"ControlNet '{source}' takes 6 input channels (the depth-aware inpainting ControlNet); "
                f"use condition='inpaint' with it, or a depth ControlNet ({DEPTH_CONTROLNET}) for condition='depth'"
            )
        return
    if channels == 3 and "inpaint" in name:
        raise ConfigError(
            f"ControlNet '{source}' is a 3-channel inpainting ControlNet (masked RGB in), which texkit cannot drive: "
            f"condition='inpaint' needs the 6-channel depth-aware inpainting ControlNet ({DEPTH_AWARE_INPAINT}), "
            f"condition='depth' a depth ControlNet ({DEPTH_CONTROLNET})"
        )
    if channels == 3:
        if condition == "inpaint":
            kind = "a depth ControlNet" if "depth" in name else "a 3-channel ControlNet"
            raise ConfigError(
                f"ControlNet '{source}' is {kind} (3 input channels) but condition='inpaint' needs the 6-channel "
                f"depth-aware inpainting ControlNet ({DEPTH_AWARE_INPAINT}); "
                + ("use condition='depth' with it" if "depth" in name else f"for condition='depth' use a depth ControlNet ({DEPTH_CONTROLNET})")
            )
        return
    raise ConfigError(
        f"ControlNet '{source}' takes {channels} input channels; texkit drives the 6-channel depth-aware inpainting "
        f"ControlNet ({DEPTH_AWARE_INPAINT}, condition='inpaint') or a 3-channel depth ControlNet "
        f"({DEPTH_CONTROLNET}, condition='depth')"
    )


def _precheck(source: str, filename: str, what: str, hub: HubOptions) -> None:
    """Fetch one small file of a hub source first, so that a failure is classified precisely."""
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(source, filename, **hub.kwargs(variant=False))
    except Exception as err:
        raise WeightsError(describe_failure(err, what, source, hub, missing=filename)) from None


def _check_folder(model: str) -> None:
    folder = Path(model).expanduser()
    if not folder.exists():
        raise WeightsError(f"SD model: no such folder or file: {folder}; pass a diffusers-format folder, a hub id (org/name) or a .safetensors checkpoint")
    missing = [p for p in MODEL_PARTS if not (folder / p).is_dir()]
    if missing:
        raise WeightsError(
            f"SD model: {folder} has no {', '.join(m + '/' for m in missing)}; pass a diffusers-format SD 1.x folder "
            "(save_pretrained layout), a hub id, or a single .safetensors checkpoint file"
        )


def _load_single_file_model(model: str, dtype: Any, hub: HubOptions) -> dict[str, Any]:
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    try:
        pipe = StableDiffusionPipeline.from_single_file(model, torch_dtype=dtype, **hub.kwargs(variant=False))
    except Exception as err:
        raise WeightsError(
            describe_failure(err, "SD model (single file; its diffusers config comes from the base model on the hub)", model, hub)
        ) from None
    parts = {name: getattr(pipe, name) for name in ("unet", "vae", "text_encoder", "tokenizer")}
    parts["scheduler"] = DDIMScheduler.from_config(pipe.scheduler.config)
    return parts


def _load_controlnet(controlnet: str, dtype: Any, hub: HubOptions) -> Any:
    from diffusers import ControlNetModel

    if is_single_file(controlnet):
        load, kwargs = ControlNetModel.from_single_file, hub.kwargs(variant=False)
    else:
        if Path(controlnet).expanduser().exists() or not looks_like_hub_id(controlnet):
            folder = Path(controlnet).expanduser()
            if not (folder / "config.json").is_file():
                why = "no such folder" if not folder.exists() else "no config.json in it"
                raise WeightsError(f"ControlNet: {why}: {folder}; pass a diffusers ControlNet folder, a hub id or a .safetensors file")
        else:
            _precheck(controlnet, "config.json", "ControlNet", hub)
        load, kwargs = ControlNetModel.from_pretrained, hub.kwargs()
    try:
        return load(controlnet, torch_dtype=dtype, **kwargs)
    except Exception as err:
        if "variant" in kwargs and f".{hub.variant}." in str(err):
            # a ControlNet repo often has no fp16 files: like a diffusers pipeline, take its default weights
            logger.info("ControlNet %s has no %s variant; loading its default weights in %s", controlnet, hub.variant, dtype)
            try:
                return load(controlnet, torch_dtype=dtype, **hub.kwargs(variant=False))
            except Exception as err2:
                raise WeightsError(describe_failure(err2, "ControlNet", controlnet, hub)) from None
        raise WeightsError(describe_failure(err, "ControlNet", controlnet, hub)) from None


def load_components(
    model: str,
    controlnet: str,
    dtype: Any,
    *,
    revision: str | None = None,
    variant: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | None = None,
    local_files_only: bool | None = None,
    controlnet_revision: str | None = None,
    condition: str | None = None,
) -> dict[str, Any]:
    """Load unet, vae, text_encoder, tokenizer, scheduler (DDIM) from ``model`` and a ControlNet.

    Args:
        model: hub id, local diffusers-format folder, or single ``.safetensors``/``.ckpt`` checkpoint
            of an SD 1.x model.
        controlnet: hub id, local folder or single checkpoint of a ControlNet (the method's:
            ``ashawkey/control_v11e_sd15_depth_aware_inpaint``, 6 input channels).
        dtype: torch dtype of the weights.
        revision: hub branch, tag or commit of ``model``.
        variant: weight variant of both, e.g. ``"fp16"``.
        token: hub token for gated or private repositories (None: ``HF_TOKEN`` / the stored login).
        cache_dir: Hugging Face cache folder (None: ``HF_HUB_CACHE`` / ``HF_HOME``).
        local_files_only: never download (None: follows ``HF_HUB_OFFLINE``).
        controlnet_revision: hub branch, tag or commit of ``controlnet``.
        condition: the generator's condition (``"inpaint"`` or ``"depth"``); when given, the
            ControlNet's input channels are checked against it right after loading.

    Returns:
        ``{"unet", "vae", "text_encoder", "tokenizer", "scheduler", "controlnet"}``.

    Raises:
        WeightsError: naming the part and the source, and whether it was not found, not cached
            while offline, gated, or lacks the revision or variant.
        ConfigError: the ControlNet does not fit ``condition``.
    """
    hub = HubOptions(revision=revision, variant=variant, token=token, cache_dir=cache_dir, local_files_only=local_files_only)
    if is_single_file(model):
        loaded = _load_single_file_model(model, dtype, hub)
    else:
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        if looks_like_hub_id(model):
            _precheck(model, "unet/config.json", "SD model", hub)
        else:
            _check_folder(model)
        weights, plain = hub.kwargs(), hub.kwargs(variant=False)
        parts = {
            "unet": lambda: UNet2DConditionModel.from_pretrained(model, subfolder="unet", torch_dtype=dtype, **weights),
            "vae": lambda: AutoencoderKL.from_pretrained(model, subfolder="vae", torch_dtype=dtype, **weights),
            "text_encoder": lambda: CLIPTextModel.from_pretrained(model, subfolder="text_encoder", torch_dtype=dtype, **weights),
            "tokenizer": lambda: CLIPTokenizer.from_pretrained(model, subfolder="tokenizer", **plain),
            "scheduler": lambda: DDIMScheduler.from_pretrained(model, subfolder="scheduler", **plain),
        }
        loaded = {}
        for name, load in parts.items():
            try:
                loaded[name] = load()
            except Exception as err:
                raise WeightsError(describe_failure(err, f"SD model {name}", model, hub, missing=f"{name}/")) from None
    cn_hub = HubOptions(
        revision=controlnet_revision, variant=variant, token=token, cache_dir=cache_dir, local_files_only=local_files_only
    )
    loaded["controlnet"] = _load_controlnet(controlnet, dtype, cn_hub)
    if condition is not None:
        check_controlnet(int(loaded["controlnet"].config.conditioning_channels), controlnet, condition)
    return loaded
