"""Registers the ``tiny`` and ``stable-diffusion`` generators."""

from __future__ import annotations

from typing import Any

import texkit
from texkit.errors import ConfigError


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _options(steps: int, eta: float, guidance_scale: float, conditioning_scale: float, truncation: Any) -> Any:
    from texkit_diffusers.sampler import SamplerOptions

    if truncation != "all" and (not isinstance(truncation, int) or truncation < 0):
        raise ConfigError(f"generator truncation must be a non-negative integer or 'all', got {truncation!r}")
    return SamplerOptions(steps=steps, eta=eta, guidance_scale=guidance_scale, conditioning_scale=conditioning_scale, truncation=truncation)


def _dtype(name: str) -> Any:
    from texkit_diffusers.generator import DTYPES

    if name not in DTYPES:
        raise ConfigError(f"generator dtype '{name}' is not one of {', '.join(DTYPES)}")
    return DTYPES[name]


def _build_generator(
    components: dict[str, Any],
    *,
    name: str,
    resolution: int,
    condition: str,
    steps: int,
    eta: float,
    guidance_scale: float,
    conditioning_scale: float,
    truncation: Any,
    checkpointing: bool,
    lora_rank: int,
    lora_alpha: float | None,
    lora_targets: tuple[str, ...] | list[str],
    device: str,
    dtype: str,
    attention: str,
) -> Any:
    """A :class:`~texkit_diffusers.generator.DiffusionGenerator` from built components and factory options.

    The construction both factories share: sampler options are validated, ``device="auto"`` is
    resolved and the dtype name looked up, in that order. Every option is described in
    :func:`make_stable_diffusion`.

    Args:
        components: unet, controlnet, vae, text_encoder, tokenizer and scheduler.
        name: the generator's name (``"tiny"`` or ``"stable-diffusion"``).

    Returns:
        The generator, with a fresh LoRA adapter on the UNet.

    Raises:
        ConfigError: an option has a bad value (truncation, dtype, condition).
    """
    from texkit_diffusers.generator import DiffusionGenerator

    return DiffusionGenerator(
        components,
        _options(steps, eta, guidance_scale, conditioning_scale, truncation),
        resolution=resolution,
        condition=condition,  # type: ignore[arg-type]
        device=_resolve_device(device),
        dtype=_dtype(dtype),
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_targets=tuple(lora_targets),
        checkpointing=checkpointing,
        attention=attention,
        name=name,
    )


def make_tiny(
    seed: int = 0,
    steps: int = 4,
    eta: float = 1.0,
    guidance_scale: float = 7.5,
    conditioning_scale: float = 1.0,
    truncation: Any = "all",
    checkpointing: bool = False,
    condition: str = "inpaint",
    lora_rank: int = 4,
    lora_alpha: float | None = None,
    lora_targets: tuple[str, ...] | list[str] = ("to_q", "to_k", "to_v", "to_out.0"),
    device: str = "cpu",
    dtype: str = "fp32",
    attention: str = "auto",
) -> Any:
    """The tiny random generator (64 px): real diffusers classes, small configs, seeded weights.

    Checkpointing is off by default here: the tiny model needs no memory saving and the demo
    needs the speed (it is on by default for ``stable-diffusion``, as in the method). Every
    option is described in :func:`make_stable_diffusion`.
    """
    from texkit_diffusers.tiny import TINY_RESOLUTION, build_tiny_components

    return _build_generator(
        build_tiny_components(seed, conditioning_channels=6 if condition == "inpaint" else 3),
        name="tiny",
        resolution=TINY_RESOLUTION,
        condition=condition,
        steps=steps,
        eta=eta,
        guidance_scale=guidance_scale,
        conditioning_scale=conditioning_scale,
        truncation=truncation,
        checkpointing=checkpointing,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_targets=lora_targets,
        device=device,
        dtype=dtype,
        attention=attention,
    )


def make_stable_diffusion(
    model: str = "",
    controlnet: str = "",
    condition: str = "inpaint",
    resolution: int = 512,
    steps: int = 10,
    eta: float = 1.0,
    guidance_scale: float = 7.5,
    conditioning_scale: float = 1.0,
    truncation: Any = "all",
    checkpointing: bool = True,
    lora_rank: int = 4,
    lora_alpha: float | None = None,
    lora_targets: tuple[str, ...] | list[str] = ("to_q", "to_k", "to_v", "to_out.0"),
    device: str = "auto",
    dtype: str = "fp16",
    attention: str = "auto",
) -> Any:
    """SD 1.x + ControlNet from local folders or hub ids (``model`` and ``controlnet`` are required).

    Args:
        model: diffusers-format SD 1.x folder or hub id (unet, vae, text_encoder, tokenizer, scheduler).
        controlnet: ControlNet folder or hub id (the method's: ashawkey/control_v11e_sd15_depth_aware_inpaint).
        condition: ``"inpaint"`` (6-channel depth-aware inpainting) or ``"depth"`` (3-channel depth ControlNet).
        resolution: view size R in pixels (multiple of 64).
        steps: DDIM steps K. eta: DDIM eta. guidance_scale: CFG weight (<= 1 turns CFG off).
        conditioning_scale: ControlNet residual scale.
        truncation: backpropagate through the last N steps, or ``"all"``.
        checkpointing: gradient checkpointing in UNet, ControlNet and VAE.
        lora_rank: rank of the LoRA adapter.
        lora_alpha: LoRA alpha (defaults to the rank: scale 1).
        lora_targets: UNet attention projections that get an adapter.
        device: ``"auto"`` (cuda when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: ``"fp16"``, ``"bf16"`` or ``"fp32"`` for the frozen weights (LoRA stays fp32).
        attention: ``"auto"``, ``"xformers"`` or ``"sdpa"``.

    Raises:
        ConfigError: a required option is missing or an option has a bad value.
        WeightsError: a part of the model cannot be found or read (names the part and the folder).
    """
    from texkit_diffusers.loading import load_components

    if not model or not controlnet:
        raise ConfigError(
            "generator 'stable-diffusion' needs options.model (an SD 1.x folder) and options.controlnet "
            "(a depth-aware inpainting or depth ControlNet folder)"
        )
    return _build_generator(
        load_components(model, controlnet, _dtype(dtype)),
        name="stable-diffusion",
        resolution=resolution,
        condition=condition,
        steps=steps,
        eta=eta,
        guidance_scale=guidance_scale,
        conditioning_scale=conditioning_scale,
        truncation=truncation,
        checkpointing=checkpointing,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_targets=lora_targets,
        device=device,
        dtype=dtype,
        attention=attention,
    )


@texkit.hookimpl
def texkit_register_generators(register: Any) -> None:
    """Register ``tiny`` and ``stable-diffusion``."""
    register("tiny", make_tiny)
    register("stable-diffusion", make_stable_diffusion)
