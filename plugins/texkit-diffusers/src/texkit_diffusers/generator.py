"""The texkit generator: paints one view with SD 1.x + a ControlNet, differentiably in the LoRA weights."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from texkit import ConfigError, PromptEmbedding
from texkit_diffusers.attention import last_attention_reason, select_attention_backend
from texkit_diffusers.compiled import DenoiserCall
from texkit_diffusers.layout import apply_memory_format
from texkit_diffusers.lora import DEFAULT_TARGETS, MergedLoRA, add_lora, load_lora, lora_parameters, save_lora
from texkit_diffusers.sampler import SamplerOptions, draw_noise, refine_start, sample_latents

__all__ = ["DiffusionGenerator", "SamplerOptions", "DTYPES"]

log = logging.getLogger("texkit.diffusers")

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
Condition = Literal["inpaint", "depth"]
CONDITION_CHANNELS = {"inpaint": 6, "depth": 3}

CPP_WRAPPER_WITH_CHECKPOINTING = (
    "UNet checkpointing is on (training.unet_checkpointing), and torch's C++ wrapper cannot launch the random-state "
    "operators AOTAutograd puts around the attention that checkpointing recomputes; set training.unet_checkpointing = false to use it"
)
"""Why option ``cpp_wrapper`` is not used with checkpointing on: trying would cost a failed compile in every run
(measured with torch 2.13 on the CPU, plugins/texkit-diffusers/tests/test_cpp_wrapper.py)."""


class DiffusionGenerator:
    """Paints a view given its render, depth and keep mask (implements `texkit.types.Generator`).

    Args:
        components: dict with unet, controlnet, vae, text_encoder, tokenizer, scheduler (diffusers/transformers objects).
        options: sampler settings.
        resolution: image size R the generator paints at (a multiple of 8 x the VAE factor).
        condition: ``"inpaint"`` (6 channels: the render in [0, 1] with the region to paint set
            to -1, then depth x3; the method's depth-aware inpainting ControlNet) or ``"depth"``
            (depth x3 in [0, 1], for a plain depth ControlNet).
        device: where and in which precision the frozen weights run (LoRA weights stay fp32).
        dtype: where and in which precision the frozen weights run (LoRA weights stay fp32).
        lora_rank: the adapter on the UNet attention projections.
        lora_alpha: the adapter on the UNet attention projections.
        lora_targets: the adapter on the UNet attention projections.
        checkpointing: gradient checkpointing inside UNet, ControlNet and the VAE.
        vae_checkpointing: override for the VAE alone (None: as ``checkpointing``).
        attention: ``"auto"``, ``"xformers"`` or ``"sdpa"``.
        compile: ``"auto"`` (compile the denoising call on CUDA), ``"on"`` or ``"off"``
            (`DenoiserCall`).
        merge_lora: run the adapted layers with merged weights ``W + s B A``, built once per painted
            view (`MergedLoRA`: one matmul per layer instead of peft's ~15 operator calls); False runs
            peft's forward.
        memory_format: layout of the convolution weights of UNet, ControlNet and VAE:
            ``"contiguous"`` (default, PyTorch's NCHW), ``"channels_last"`` (with cuDNN's algorithm
            search on CUDA) or ``"auto"`` (channels-last on CUDA, contiguous on the CPU);
            `texkit_diffusers.layout`.
        precompile: with compile on, save each compiled training call whole (Dynamo's trace
            included) in the compile cache folder and load it in later runs, which then skip
            tracing (`texkit_diffusers.precompiled`; needs a torch with ``aot_compile``).
        cpp_wrapper: with compile on, launch the compiled kernels from C++ instead of Python
            (Inductor's ``cpp_wrapper``; `DenoiserCall`); used only while ``checkpointing`` is off
            (`CPP_WRAPPER_WITH_CHECKPOINTING`).
        name: registry name, for records.

    Attributes:
        attention_backend: ``"tuned"`` (fastest exact kernel per shape), ``"xformers"`` or ``"sdpa"``.
        attention_reason: one line saying why (e.g. why xformers was not used).
        device: where every model runs.
        resolution: the image size R of `paint`.

    Raises:
        ConfigError: ``condition`` is unknown or does not match the ControlNet's input channels.
    """

    def __init__(
        self,
        components: dict[str, Any],
        options: SamplerOptions | None = None,
        resolution: int = 512,
        condition: Condition = "inpaint",
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        lora_rank: int = 4,
        lora_alpha: float | None = None,
        lora_targets: tuple[str, ...] = DEFAULT_TARGETS,
        checkpointing: bool = True,
        vae_checkpointing: bool | None = None,
        attention: str = "auto",
        compile: str = "off",
        merge_lora: bool = True,
        memory_format: str = "contiguous",
        precompile: bool = False,
        cpp_wrapper: bool = False,
        name: str = "stable-diffusion",
    ) -> None:
        if condition not in CONDITION_CHANNELS:
            raise ConfigError(f"generator condition '{condition}' is not one of {', '.join(CONDITION_CHANNELS)}")
        channels = components["controlnet"].config.conditioning_channels
        if channels != CONDITION_CHANNELS[condition]:
            hint = {6: "condition='inpaint'", 3: "condition='depth'"}.get(channels, "a depth or depth-aware inpainting ControlNet")
            raise ConfigError(
                f"condition '{condition}' needs a ControlNet with {CONDITION_CHANNELS[condition]} input channels but this "
                f"one has {channels}; use {hint}"
            )
        self.name = name
        self.options = options or SamplerOptions()
        self.resolution = resolution
        self.condition_kind = condition
        self.device = torch.device(device)
        self.dtype = dtype
        self.unet = components["unet"]
        self.controlnet = components["controlnet"]
        self.vae = components["vae"]
        self.text_encoder = components["text_encoder"]
        self.tokenizer = components["tokenizer"]
        self.scheduler = components["scheduler"]
        for model in (self.unet, self.controlnet, self.vae, self.text_encoder):
            model.requires_grad_(False)
            model.eval()
            model.to(self.device)
            if next(model.parameters()).dtype != dtype:
                model.to(dtype=dtype)
        self.memory_format = apply_memory_format((self.unet, self.controlnet, self.vae), memory_format, self.device)
        add_lora(self.unet, lora_rank, lora_alpha, tuple(lora_targets))
        for p in lora_parameters(self.unet):
            p.data = p.data.float()
            p.requires_grad_(True)
        self.set_checkpointing(checkpointing)
        if vae_checkpointing is True:
            self.vae.enable_gradient_checkpointing()
        elif vae_checkpointing is False:
            self.vae.disable_gradient_checkpointing()
        self.attention_backend = select_attention_backend([self.unet, self.controlnet, self.vae], self.device, attention)
        self.attention_reason = last_attention_reason()
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.merged_lora = MergedLoRA(self.unet) if merge_lora else None
        self.precompile = precompile
        self.cpp_wrapper = cpp_wrapper
        self.denoiser = self._new_denoiser(compile)
        if cpp_wrapper and checkpointing and compile != "off":
            log.warning("texkit-diffusers: cpp_wrapper not used: %s", CPP_WRAPPER_WITH_CHECKPOINTING)

    # -- protocol --------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompt(self, prompts: list[str], negative_prompts: list[str]) -> PromptEmbedding:
        """CLIP text embeddings ``(B, 77, D)`` of prompts and negative prompts (padded to max length)."""
        return PromptEmbedding(self._encode(prompts), self._encode(negative_prompts))

    def _encode(self, texts: list[str]) -> torch.Tensor:
        ids = self.tokenizer(texts, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
        return self.text_encoder(ids.to(self.device))[0].to(self.dtype)

    def condition(self, image: torch.Tensor, depth: torch.Tensor, keep_mask: torch.Tensor) -> torch.Tensor:
        """The ControlNet condition at image resolution.

        For ``"inpaint"`` (ControlNet 1.1 inpainting convention, as the method's depth-aware
        inpainting ControlNet was trained): ``[keep * image + (1 - keep) * (-1), depth x3]``,
        ``(B, 6, R, R)``; the render stays in [0, 1] and the region to paint reads -1. A soft keep
        mask interpolates linearly, so the condition stays differentiable in the mask.
        For ``"depth"``: ``depth x3``, ``(B, 3, R, R)`` in [0, 1].

        Args:
            image: ``(B, 3, R, R)`` render in [0, 1].
            depth: ``(B, 1, R, R)`` in [0, 1] (1 nearest, 0 background).
            keep_mask: ``(B, 1, R, R)`` in [0, 1], 1 = keep the render.
        """
        depth3 = depth.expand(-1, 3, -1, -1)
        if self.condition_kind == "depth":
            return depth3
        masked = image * keep_mask - (1.0 - keep_mask)
        return torch.cat((masked, depth3), dim=1)

    def paint(
        self,
        prompt: PromptEmbedding,
        image: torch.Tensor,
        depth: torch.Tensor,
        keep_mask: torch.Tensor,
        generator: torch.Generator | list[torch.Generator] | None = None,
        strength: float = 1.0,
    ) -> torch.Tensor:
        """Paint a view, differentiably in the LoRA weights, the render and the keep mask.

        Args:
            prompt: from `encode_prompt`, batch 1 (broadcast) or B.
            image: ``(B, 3, R, R)`` current render in [0, 1]; R a multiple of 8 x 2^(UNet levels - 1).
            depth: ``(B, 1, R, R)`` in [0, 1], 1 nearest, 0 background.
            keep_mask: ``(B, 1, R, R)`` in [0, 1], 1 keeps the render, 0 paints.
            generator: seeds the initial latents, the DDIM noise and the blending noise; the same
                seed gives the same view (needed by per-view checkpointing). A list of B generators
                seeds each sample alone: sample b of a batch equals a batch-1 call with ``generator[b]``.
            strength: 1 paints from pure noise; below 1 refines the render SDEdit-style: denoising
                starts from the render's VAE latent noised to that fraction of the schedule and runs
                the last ``int(steps * strength)`` steps (`sample_latents`), with the same random
                draws as a full run. When no step runs (strength 0, or below ``1 / steps``) the
                render is returned unchanged (no VAE round trip).

        Returns:
            ``(B, 3, R, R)`` float32 in [0, 1]: ``keep * image + (1 - keep) * decoded``.

        Raises:
            ValueError: shapes that do not fit the protocol, or ``strength`` outside [0, 1].
        """
        batch, channels, height, width = image.shape
        multiple = self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)
        if channels != 3 or height % multiple or width % multiple:
            raise ValueError(f"paint needs images (B, 3, R, R) with R a multiple of {multiple}, got {tuple(image.shape)}")
        if depth.shape != (batch, 1, height, width) or keep_mask.shape != (batch, 1, height, width):
            raise ValueError(f"depth and keep_mask must be (B, 1, R, R) = {(batch, 1, height, width)}, got {tuple(depth.shape)} and {tuple(keep_mask.shape)}")
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if refine_start(self.options.steps, strength) >= self.options.steps:
            return image.float()  # nothing to denoise: the render itself
        image = image.to(self.device, self.dtype)
        keep_mask = keep_mask.to(self.device, self.dtype)
        condition = self.condition(image, depth.to(self.device, self.dtype), keep_mask)
        latent_shape = (batch, self.unet.config.in_channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        blending = bool((keep_mask > 0).any())
        noise = draw_noise(latent_shape, self.options, self.scheduler, generator, self.device, self.dtype, blending)
        keep_latent = None
        render_latents = None
        if blending:
            keep_latent = F.interpolate(keep_mask, size=latent_shape[-2:], mode="area")
        if blending or strength < 1.0:
            render_latents = self.encode_image(image)
        prompt = PromptEmbedding(self._batched(prompt.cond, batch), self._batched(prompt.uncond, batch))
        if self.merged_lora is not None:
            self.merged_lora.refresh()
        latents = sample_latents(self.denoiser, self.scheduler, prompt, condition, noise, self.options, keep_latent, render_latents, strength)
        decoded = self.decode_latents(latents)
        return (keep_mask * image + (1.0 - keep_mask) * decoded).float()

    def _batched(self, embedding: torch.Tensor, batch: int) -> torch.Tensor:
        """Prompt embeddings ``(1 or B, L, D)`` -> ``(B, L, D)`` on the generator's device and dtype."""
        if embedding.shape[0] not in (1, batch):
            raise ValueError(f"prompt batch {embedding.shape[0]} does not match image batch {batch}")
        return embedding.to(self.device, self.dtype).expand(batch, -1, -1)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, R, R)`` in [0, 1] -> scaled latents ``(B, 4, R/f, R/f)`` (the posterior mode)."""
        posterior = self.vae.encode(image * 2.0 - 1.0).latent_dist
        return posterior.mode() * self.vae.config.scaling_factor

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> ``(B, 3, R, R)`` image in [0, 1] (as the pipeline's post-processing)."""
        image = self.vae.decode(latents / self.vae.config.scaling_factor, return_dict=False)[0]
        return (image / 2.0 + 0.5).clamp(0.0, 1.0)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The LoRA matrices of the UNet."""
        return lora_parameters(self.unet)

    def save_adapter(self, directory: str | Path) -> None:
        """Write the LoRA adapter (diffusers layout, safetensors) atomically."""
        save_lora(self.unet, directory)

    def load_adapter(self, directory: str | Path) -> None:
        """Load an adapter saved by `save_adapter`."""
        load_lora(self.unet, directory)

    def describe(self) -> dict[str, str]:
        """What ran, for the run record: generator, attention backend, compilation, library versions."""
        from importlib import metadata

        record = {
            "generator": self.name,
            "attention": self._describe_attention(),
            "compile": self.denoiser.reason + (f", {self.denoiser.compile_seconds:.1f} s compiling" if self.denoiser.compile_seconds else ""),
            "compile_cache": self.denoiser.describe_cache() if self.denoiser.compile_seconds else "not used",
            "dtype": str(self.dtype).removeprefix("torch."),
            "lora_forward": "merged weights, once per view" if self.merged_lora is not None else "peft",
            "memory_format": self.memory_format,
            "precompile": self.precompile,
            "cpp_wrapper": self._describe_cpp_wrapper(),
        }
        for dist in ("diffusers", "transformers", "peft"):
            try:
                record[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                record[dist] = "not installed"
        return record

    def _describe_attention(self) -> str:
        """The attention backend, why, and for a tuned one the kernel each shape got so far."""
        text = f"{self.attention_backend} ({self.attention_reason})" if self.attention_reason else self.attention_backend
        if self.attention_backend == "tuned":
            from texkit_diffusers.attention_tuning import attention_table

            table = attention_table(self.unet)
            if table is not None and table.timings:
                text += f"; per shape (batch x heads x query x key x head dim): {table.summary()}"
        return text

    # -- extras ----------------------------------------------------------------------------
    def set_lora_enabled(self, enabled: bool) -> None:
        """Switch the adapter on or off (off = the base model, e.g. for a KL-style regulariser)."""
        if enabled:
            self.unet.enable_adapters()
        else:
            self.unet.disable_adapters()

    def set_checkpointing(self, enabled: bool) -> None:
        """Gradient checkpointing inside UNet, ControlNet and VAE (recompute activations in backward).

        A change starts a new denoising call: the compiled graph differs with checkpointing (and
        the C++ wrapper follows it, `_cpp_wrapper_in_use`), so its first call is timed and noted
        as a compilation instead of Dynamo recompiling unseen inside a call already measured.
        """
        for model in (self.unet, self.controlnet, self.vae):
            if enabled:
                model.enable_gradient_checkpointing()
            else:
                model.disable_gradient_checkpointing()
        changed = hasattr(self, "denoiser") and enabled != self.checkpointing  # not while __init__ builds
        self.checkpointing = enabled
        if changed:
            self.denoiser = self._new_denoiser(self.denoiser.compile_mode)

    def set_compile(self, mode: str) -> None:
        """Switch the option ``compile`` (``auto``/``on``/``off``) of the built generator.

        The denoising call (and its compiled shapes) is kept while the mode stays the same.
        """
        if mode != self.denoiser.compile_mode:
            self.denoiser = self._new_denoiser(mode)

    def set_memory_format(self, choice: str) -> None:
        """Switch the option ``memory_format`` of the built generator (`texkit_diffusers.layout`).

        A change between channels-last and contiguous starts a new denoising call (compiled
        shapes are compiled again, or loaded from the compile cache, for the new layout).
        """
        before = self._channels_last()
        self.memory_format = apply_memory_format((self.unet, self.controlnet, self.vae), choice, self.device)
        if self._channels_last() != before:
            self.denoiser = self._new_denoiser(self.denoiser.compile_mode)

    def set_cpp_wrapper(self, enabled: bool) -> None:
        """Switch the option ``cpp_wrapper`` of the built generator; a change starts a new denoising
        call (its shapes are compiled again, or loaded from the compile cache)."""
        if enabled != self.cpp_wrapper:
            self.cpp_wrapper = enabled
            self.denoiser = self._new_denoiser(self.denoiser.compile_mode)

    def _new_denoiser(self, compile_mode: str) -> DenoiserCall:
        """A fresh denoising call (no compiled shapes yet) for ``compile_mode`` and the current layout."""
        return DenoiserCall(
            self.unet, self.controlnet, compile_mode, self.device, self._drop_stale_merges, self._channels_last(), self.precompile, self._cpp_wrapper_in_use()
        )

    def _cpp_wrapper_in_use(self) -> bool:
        """Whether the denoising call is compiled with Inductor's C++ wrapper: asked for, and no checkpointing."""
        return self.cpp_wrapper and not self.checkpointing

    def _describe_cpp_wrapper(self) -> str:
        """``"on"``, ``"off"``, or why an asked-for C++ wrapper is not in use (run record)."""
        if self.denoiser.cpp_wrapper:
            return "on"
        if not self.cpp_wrapper:
            return "off"
        if self.checkpointing:
            return f"off: {CPP_WRAPPER_WITH_CHECKPOINTING}"
        return "off (the C++ wrapper failed: see compile)"

    def _channels_last(self) -> bool:
        """Whether the convolutions run channels-last (option ``memory_format``), compiled graph included."""
        return self.memory_format.startswith("channels_last")

    def _drop_stale_merges(self) -> None:
        """Run before each compiled denoising call: `MergedLoRA.drop_stale` of the current merge, if any."""
        if self.merged_lora is not None:
            self.merged_lora.drop_stale()

    def pipeline(self) -> Any:
        """A ``StableDiffusionControlNetPipeline`` over the same components (no safety checker)."""
        from diffusers import StableDiffusionControlNetPipeline

        return StableDiffusionControlNetPipeline(
            vae=self.vae,
            text_encoder=self.text_encoder,
            tokenizer=self.tokenizer,
            unet=self.unet,
            controlnet=self.controlnet,
            scheduler=self.scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
