"""Registers the ``tiny`` and ``stable-diffusion`` generators (typed options) and the attention check.

Options are pydantic models (`TinyParams`, `StableDiffusionParams`, sharing
`DiffusionParams`); the registry validates a config's ``[generator.options]`` against them
and calls the factory with the instance. ``device``, ``dtype``, ``truncation`` and
``checkpointing`` are owned by the run (``device`` and ``[training]`` in the run config) and set
from there by the session.
"""

from __future__ import annotations

from typing import Any, Literal, Union

import pydantic

import texkit
from texkit import ConfigError


class DiffusionParams(pydantic.BaseModel):
    """Options both generators share: sampler, LoRA adapter, attention, compilation, run-owned settings."""

    model_config = pydantic.ConfigDict(extra="forbid")

    condition: Literal["inpaint", "depth"] = pydantic.Field(
        "inpaint", description="`inpaint`: 6-channel depth-aware inpainting ControlNet (the method's); `depth`: 3-channel depth ControlNet."
    )
    steps: int = pydantic.Field(10, ge=1, description="DDIM steps K per painted view.")
    eta: float = pydantic.Field(1.0, ge=0, description="DDIM eta (0 deterministic, 1 the method's).")
    guidance_scale: float = pydantic.Field(7.5, description="Classifier-free guidance weight (<= 1 turns CFG off).")
    conditioning_scale: float = pydantic.Field(1.0, description="ControlNet residual scale.")
    lora_rank: int = pydantic.Field(4, ge=1, description="Rank of the LoRA adapter on the UNet attention projections.")
    lora_alpha: float | None = pydantic.Field(None, gt=0, description="LoRA alpha (default: the rank, i.e. scale 1).")
    lora_targets: list[str] = pydantic.Field(
        ["to_q", "to_k", "to_v", "to_out.0"], description="UNet attention projections that get an adapter."
    )
    attention: Literal["auto", "xformers", "sdpa"] = pydantic.Field(
        "auto",
        description="Attention kernel: `auto` times the exact kernels that run here (PyTorch SDPA's flash, cuDNN and "
        "memory-efficient ones, and xformers when its kernels load) on each attention shape at first use and runs the "
        "fastest (on CUDA; PyTorch SDPA on the CPU); `sdpa` leaves the choice to PyTorch; `xformers` uses xformers everywhere.",
    )
    compile: Literal["auto", "on", "off"] = pydantic.Field(
        "auto",
        description="torch.compile the UNet + ControlNet call of one denoising step (static shapes: compiles once per "
        "batch size and grad mode, about 90 s each for SD 1.5 on an H200). `auto`: on CUDA, eager until the generator "
        "is first trained through (the first call with gradients enabled), compiled from then on (a no-grad shape once it "
        "has come back 2000 times, about where compiling pays off, e.g. denoising steps outside the truncation window); never on the CPU. A one-off generation stays eager (its denoising takes less than compiling); "
        "training gains (H200 training step, batch 1: 20.1 s eager, 11.5 s compiled; batch 16: 46.7 s, 38.6 s). "
        "`on`: compiled from the first call, on any device; `off`: never. A failure falls back to eager and the "
        "reason is recorded.",
    )
    vae_checkpointing: bool | None = pydantic.Field(
        None,
        description="Gradient checkpointing inside the VAE (default: as `checkpointing`). With per-view checkpointing "
        "on, false saves one VAE forward per view (measured 19 % faster at batch 1) for about 2.7 GiB more per sample.",
    )
    merge_lora: bool = pydantic.Field(
        True,
        description="Run the LoRA layers with merged weights `W + s B A`, built once per painted view (one matmul per "
        "layer instead of peft's cast, two thin fp32 matmuls, scale and add at every denoising call); same output, "
        "fewer kernel launches. False runs peft's forward.",
    )
    memory_format: Literal["auto", "channels_last", "contiguous"] = pydantic.Field(
        "contiguous",
        description="Layout of the convolution weights (and so activations) of UNet, ControlNet and VAE. `contiguous`: "
        "PyTorch's NCHW. `channels_last`: NHWC, the layout of cuDNN's half-precision convolutions (NCHW tensors cost two "
        "layout transposes per eager convolution), with cuDNN's algorithm search on CUDA (paid in the first step). "
        "`auto`: channels-last on CUDA, contiguous on the CPU. H100: compiled batch-8 step 8 % faster (20.3 s vs 21.9 s), "
        "eager batch 1 unchanged; not the default until the gradients of the channels-last compiled graph are checked on CUDA "
        "(on the CPU that Inductor layout gave wrong gradients).",
    )
    precompile: bool = pydantic.Field(
        False,
        description="With compile on: save each compiled training call whole, Dynamo's trace included, in the compile "
        "cache folder (`~/.cache/texkit/compile`, or TEXKIT_COMPILE_CACHE_DIR) and load it in later runs of the same setup, "
        "which then skip tracing the UNet and ControlNet (11.5 s of a second run's first step on an H100). Needs a torch "
        "with `torch.compile(...).aot_compile` (2.13 has it); otherwise the run record says why it is not used. Off by "
        "default until measured on a GPU.",
    )
    cpp_wrapper: bool = pydantic.Field(
        False,
        description="With compile on: launch the compiled kernels from C++ code instead of Python (Inductor's "
        "`cpp_wrapper`). A compiled batch-1 training step is bound by launching kernels (H100: 4.4 s of kernels in a "
        "13.5 s step, about 359 000 launches), so less host time per launch is what moves it; costs a C++ compile per "
        "graph (kept in the compile cache). Used only with `training.unet_checkpointing = false`: torch's C++ wrapper cannot "
        "launch the random-state operators around checkpointed attention (the run record says so). Off by default: on an H100 "
        "(torch 2.11) the full-size training graph was still compiling with it after more than 520 s (169 s without), so "
        "its step time is not measured yet; expect a long first run, then the compile cache.",
    )
    # owned by the run: set from the run config's `device` and `[training]`, not under generator.options
    device: str = pydantic.Field("auto", description="Run-owned (`device`): `auto`, `cpu`, `cuda`, `cuda:1`, ...")
    dtype: Literal["fp32", "fp16", "bf16"] = pydantic.Field("fp16", description="Run-owned (`training.mixed_precision`): dtype of the frozen weights; LoRA stays fp32.")
    truncation: Union[int, Literal["all"]] = pydantic.Field("all", description="Run-owned (`training.truncation`): backpropagate through the last N DDIM steps, or `all`.")
    checkpointing: bool = pydantic.Field(True, description="Run-owned (`training.unet_checkpointing`): gradient checkpointing in UNet, ControlNet and VAE.")

    @pydantic.field_validator("truncation", mode="before")
    @classmethod
    def _steps_or_all(cls, value: Any) -> Any:
        if value == "all" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return value
        raise ValueError(f"got {value!r}; must be a non-negative integer or 'all'")


class TinyParams(DiffusionParams):
    """Options of ``tiny``: the random 64 px model built in code (real diffusers classes, small configs)."""

    seed: int = pydantic.Field(0, description="Seed of the random weights.")
    steps: int = pydantic.Field(4, ge=1, description="DDIM steps K per painted view.")
    device: str = pydantic.Field("cpu", description="Run-owned (`device`): `auto`, `cpu`, `cuda`, ...")
    dtype: Literal["fp32", "fp16", "bf16"] = pydantic.Field("fp32", description="Run-owned (`training.mixed_precision`).")
    checkpointing: bool = pydantic.Field(False, description="Run-owned (`training.unet_checkpointing`); off: the tiny model needs speed, not memory.")


class StableDiffusionParams(DiffusionParams):
    """Options of ``stable-diffusion``: SD 1.x + a ControlNet, from local folders or hub ids."""

    model: str = pydantic.Field("", description="Diffusers-format SD 1.x folder or hub id (unet, vae, text_encoder, tokenizer, scheduler).")
    controlnet: str = pydantic.Field(
        "", description="ControlNet folder or hub id (the method's: ashawkey/control_v11e_sd15_depth_aware_inpaint)."
    )
    resolution: int = pydantic.Field(512, ge=64, multiple_of=64, description="View size R in pixels.")
    revision: str | None = pydantic.Field(None, description="Hub revision (branch, tag or commit) of `model`.")
    controlnet_revision: str | None = pydantic.Field(None, description="Hub revision (branch, tag or commit) of `controlnet`.")
    token: str | None = pydantic.Field(None, description="Hub token for gated or private repositories (default: HF_TOKEN / the stored login).")
    variant: str | None = pydantic.Field(None, description="Weight variant to load, e.g. `fp16`.")
    cache_dir: str | None = pydantic.Field(None, description="Hugging Face cache folder (default: HF_HOME's).")
    local_files_only: bool | None = pydantic.Field(None, description="Never download (default: follows HF_HUB_OFFLINE).")


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _build_generator(components: dict[str, Any], params: DiffusionParams, name: str, resolution: int) -> Any:
    """A `DiffusionGenerator` from built components and validated options.

    Args:
        components: unet, controlnet, vae, text_encoder, tokenizer and scheduler.
        params: the validated options.
        name: the generator's name (``"tiny"`` or ``"stable-diffusion"``).
        resolution: the view size R.

    Returns:
        The generator, with a fresh LoRA adapter on the UNet.

    Raises:
        ConfigError: the condition does not fit the ControlNet.
    """
    from texkit_diffusers.generator import DTYPES, DiffusionGenerator
    from texkit_diffusers.sampler import SamplerOptions

    sampler = SamplerOptions(
        steps=params.steps, eta=params.eta, guidance_scale=params.guidance_scale,
        conditioning_scale=params.conditioning_scale, truncation=params.truncation,
    )
    return DiffusionGenerator(
        components,
        sampler,
        resolution=resolution,
        condition=params.condition,
        device=_resolve_device(params.device),
        dtype=DTYPES[params.dtype],
        lora_rank=params.lora_rank,
        lora_alpha=params.lora_alpha,
        lora_targets=tuple(params.lora_targets),
        checkpointing=params.checkpointing,
        vae_checkpointing=params.vae_checkpointing,
        attention=params.attention,
        compile=params.compile,
        merge_lora=params.merge_lora,
        memory_format=params.memory_format,
        precompile=params.precompile,
        cpp_wrapper=params.cpp_wrapper,
        name=name,
    )


def make_tiny(params: TinyParams) -> Any:
    """The tiny random generator (64 px): real diffusers classes, small configs, seeded weights."""
    from texkit_diffusers.tiny import TINY_RESOLUTION, build_tiny_components

    components = build_tiny_components(params.seed, conditioning_channels=6 if params.condition == "inpaint" else 3)
    return _build_generator(components, params, "tiny", TINY_RESOLUTION)


def make_stable_diffusion(params: StableDiffusionParams) -> Any:
    """SD 1.x + ControlNet from local folders or hub ids (``model`` and ``controlnet`` are required).

    Raises:
        ConfigError: a required option is missing.
        WeightsError: a part of the model cannot be found or read (names the part and the folder).
    """
    from texkit_diffusers.generator import DTYPES
    from texkit_diffusers.loading import load_components

    if not params.model or not params.controlnet:
        raise ConfigError(
            "generator 'stable-diffusion' needs options.model (an SD 1.x folder or hub id) and options.controlnet "
            "(a depth-aware inpainting or depth ControlNet folder or hub id)"
        )
    hub_keys = ("revision", "controlnet_revision", "variant", "token", "cache_dir", "local_files_only")
    hub = {k: getattr(params, k) for k in hub_keys if getattr(params, k) is not None}
    components = load_components(params.model, params.controlnet, DTYPES[params.dtype], condition=params.condition, **hub)
    return _build_generator(components, params, "stable-diffusion", params.resolution)


def check_attention() -> texkit.EnvironmentCheck:
    """Which attention the generators would use here (one line; xformers' own import warning is folded into it)."""
    import torch

    from texkit_diffusers.attention import xformers_available

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        ok, reason = xformers_available(device)
    except Exception as err:  # the probe itself must not crash the doctor
        ok, reason = False, f"{type(err).__name__}: {err}"
    reason = " ".join(str(reason).split())
    if device.type == "cuda":
        kernels = "flash, cudnn, efficient" + (", xformers" if ok else "")
        return texkit.EnvironmentCheck("attention", True, f"fastest exact kernel per shape among {kernels}, timed at first use" + ("" if ok else f" (xformers not a candidate: {reason})"))
    return texkit.EnvironmentCheck("attention", True, f"PyTorch SDPA (xformers not used: {reason})")


@texkit.hookimpl
def texkit_register_generators(register: Any) -> None:
    """Register ``tiny`` and ``stable-diffusion``."""
    register("tiny", make_tiny, TinyParams)
    register("stable-diffusion", make_stable_diffusion, StableDiffusionParams)


@texkit.hookimpl
def texkit_register_checks(register: Any) -> None:
    """Register the ``attention`` check of ``texkit doctor``."""
    register("attention", check_attention)
