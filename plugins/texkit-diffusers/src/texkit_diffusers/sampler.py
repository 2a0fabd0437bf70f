"""The differentiable DDIM sampler with ControlNet, classifier-free guidance and keep-region blending.

diffusers' pipelines run under ``torch.no_grad``; this loop makes the same calls in the same
order (so with nothing kept it reproduces ``StableDiffusionControlNetPipeline`` exactly) but keeps
the autograd graph, so a reward on the decoded image backpropagates into the LoRA weights
(DRaFT, Clark et al. 2024; AlignProp, Prabhudesai et al. 2023). Options:

* ``truncation``: backpropagate through the last N denoising steps only (the earlier ones run
  without a graph), or ``"all"``;
* gradient checkpointing inside the UNet and ControlNet is switched on the models themselves;
* all random numbers (initial latents, DDIM variance noise, the noise of the keep-region
  blending) are drawn up front, in the pipeline's order (the blending noise last), so a
  recomputation (per-view checkpointing) sees exactly the same inputs as the forward pass.

Keep-region blending (RePaint-style, Lugmayr et al. 2022; the method's reference code, after
ControlNet 1.1's inpainting mask blending): *before* every step i, the latent is replaced, where
the keep mask is 1, by the encoding of the current render noised to that step's timestep t_i
with fresh noise, ``z <- m * (sqrt(a_t) z_render + sqrt(1 - a_t) eps_i) + (1 - m) * z``. The
final latent is not blended; the decoded image is (see ``DiffusionGenerator.paint``).

Refinement (SDEdit, Meng et al. 2022; diffusers' img2img ``get_timesteps``): with ``strength`` s
in (0, 1) the run starts at step index ``K - int(K s)`` from the encoding of the current render
noised to that step's timestep with the initial noise, and runs only the remaining steps; the
random numbers are the same draws as a full run (step i uses the variance and blending noise of
step i), so a recomputation sees the same inputs. s = 1 is the plain run from pure noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

import torch

from texkit import PromptEmbedding

__all__ = ["SamplerOptions", "SamplerNoise", "draw_noise", "refine_start", "sample_latents"]


@dataclass
class SamplerOptions:
    """Settings of one painted view (the method's reference values as defaults).

    Attributes:
        steps: DDIM steps K.
        eta: DDIM eta (0 deterministic, 1 the method's).
        guidance_scale: classifier-free guidance weight (<= 1 disables CFG).
        conditioning_scale: ControlNet residual scale.
        truncation: backpropagate through the last N steps, or "all".
    """

    steps: int = 10
    eta: float = 1.0
    guidance_scale: float = 7.5
    conditioning_scale: float = 1.0
    truncation: Union[int, Literal["all"]] = "all"

    def steps_with_grad(self) -> int:
        """How many final steps keep their autograd graph."""
        return self.steps if self.truncation == "all" else max(0, min(int(self.truncation), self.steps))


@dataclass
class SamplerNoise:
    """Every random tensor one sampling run uses, drawn in the diffusers pipeline's order.

    Attributes:
        initial: ``(B, 4, h, w)`` initial latents (already scaled by ``init_noise_sigma``).
        variance: K tensors ``(B, 4, h, w)`` of DDIM variance noise (empty when eta = 0).
        blend: K tensors ``(B, 4, h, w)`` that re-noise the render's latent for keep-region
            blending, one per step (empty when nothing is kept).
    """

    initial: torch.Tensor
    variance: list[torch.Tensor]
    blend: list[torch.Tensor]


def draw_noise(
    shape: tuple[int, ...],
    options: SamplerOptions,
    scheduler: Any,
    generator: torch.Generator | list[torch.Generator] | None,
    device: torch.device,
    dtype: torch.dtype,
    blending: bool = True,
) -> SamplerNoise:
    """Draw every random tensor of one sampling run, in ``StableDiffusionControlNetPipeline``'s order.

    The pipeline draws the initial latents (``prepare_latents``), then, for eta > 0, one variance
    tensor inside each ``DDIMScheduler.step``; the same ``randn_tensor`` calls in the same order
    give bit-identical noise. The blending noise comes last, so it never shifts the others.

    Args:
        shape: latent shape ``(B, 4, h, w)``.
        options: sampler settings (steps, eta).
        scheduler: the DDIM scheduler (for ``init_noise_sigma``).
        generator: random source (None: torch's global one), or one per sample: sample b then draws
            exactly what a batch-1 run seeded with ``generator[b]`` draws.
        device: of the returned tensors.
        dtype: of the returned tensors.
        blending: draw the K keep-region blending tensors too.
    """
    from diffusers.utils.torch_utils import randn_tensor

    def draw() -> torch.Tensor:
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype)

    initial = draw() * scheduler.init_noise_sigma
    variance = [draw() for _ in range(options.steps)] if options.eta > 0 else []
    blend = [draw() for _ in range(options.steps)] if blending else []
    return SamplerNoise(initial, variance, blend)


def refine_start(steps: int, strength: float) -> int:
    """The step index a refinement of ``strength`` starts at (diffusers' img2img ``get_timesteps``).

    ``steps - min(int(steps * strength), steps)``: 0 for strength 1 (every step runs), ``steps``
    when ``steps * strength < 1`` (no step runs).
    """
    return steps - min(int(steps * strength), steps)


def _denoise_step(
    denoiser: Any,
    scheduler: Any,
    latents: torch.Tensor,
    t: torch.Tensor,
    embeds: torch.Tensor,
    condition: torch.Tensor,
    options: SamplerOptions,
    variance_noise: torch.Tensor | None,
) -> torch.Tensor:
    """One DDIM step x_t -> x_{t-1}: ControlNet residuals, UNet noise prediction, CFG, scheduler step.

    ``denoiser(model_input, t, embeds, condition, scale)`` is the ControlNet + UNet call
    (`DenoiserCall`, possibly compiled).

    CFG (Ho & Salimans 2022): ``eps = eps_u + w (eps_c - eps_u)`` from one batch of 2B; DDIM (Song et al.
    2021) with ``eta`` and the given variance noise. Same calls, same order as the diffusers pipeline.
    """
    cfg = options.guidance_scale > 1.0
    model_input = torch.cat([latents] * 2) if cfg else latents
    model_input = scheduler.scale_model_input(model_input, t)
    noise_pred = denoiser(model_input, t, embeds, condition, options.conditioning_scale)
    if cfg:
        uncond, text = noise_pred.chunk(2)
        noise_pred = uncond + options.guidance_scale * (text - uncond)
    return scheduler.step(noise_pred, t, latents, eta=options.eta, variance_noise=variance_noise, return_dict=False)[0]


def sample_latents(
    denoiser: Any,
    scheduler: Any,
    prompt: PromptEmbedding,
    condition: torch.Tensor,
    noise: SamplerNoise,
    options: SamplerOptions,
    keep_latent_mask: torch.Tensor | None = None,
    render_latents: torch.Tensor | None = None,
    strength: float = 1.0,
) -> torch.Tensor:
    """Run K DDIM steps (the last ``int(K strength)`` of them) and return the final latents ``(B, 4, h, w)``.

    Args:
        denoiser: the ControlNet + UNet call of one step (`DenoiserCall`).
        scheduler: a ``DDIMScheduler`` (its timesteps are set here).
        prompt: ``cond`` and ``uncond`` embeddings ``(B, L, D)``.
        condition: ``(B, C, H, W)`` ControlNet condition at image resolution.
        noise: from `draw_noise`.
        options: sampler settings.
        keep_latent_mask: ``(B, 1, h, w)`` in [0, 1], 1 where the render's latent is kept; None keeps nothing.
        render_latents: ``(B, 4, h, w)`` scaled VAE encoding of the current render (needed with a keep
            mask and with ``strength < 1``).
        strength: 1 starts from ``noise.initial``; below 1 (SDEdit) starts at step
            `refine_start` from ``render_latents`` noised to that step's timestep with
            ``noise.initial / init_noise_sigma`` (no step runs when ``int(K strength) = 0``).

    Returns:
        ``(B, 4, h, w)`` latents after the last step; they carry the autograd graph of the last
        ``options.steps_with_grad()`` steps when gradients are enabled.

    Raises:
        ValueError: a keep mask is given but ``noise`` holds no blending noise; ``strength`` is
            outside [0, 1] or below 1 without ``render_latents``.
    """
    cfg = options.guidance_scale > 1.0
    embeds = torch.cat([prompt.uncond, prompt.cond]) if cfg else prompt.cond
    cond = torch.cat([condition] * 2) if cfg else condition
    scheduler.set_timesteps(options.steps, device=noise.initial.device)
    timesteps = scheduler.timesteps
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength {strength} is outside [0, 1]")
    start = refine_start(options.steps, strength)
    if strength < 1.0:
        if render_latents is None:
            raise ValueError("refinement (strength < 1) needs render_latents, the encoding of the render it starts from")
        if start >= len(timesteps):
            return render_latents
        initial = noise.initial / scheduler.init_noise_sigma
        latents = scheduler.add_noise(render_latents, initial, timesteps[start].reshape(1))
    else:
        latents = noise.initial
    first_with_grad = options.steps - options.steps_with_grad()
    blending = keep_latent_mask is not None and render_latents is not None
    if blending and len(noise.blend) < len(timesteps):
        raise ValueError("keep-region blending needs SamplerNoise drawn with blending=True")
    grad_wanted = torch.is_grad_enabled()
    for i, t in enumerate(timesteps):
        if i < start:
            continue  # refinement: the run starts at step `start`, with the draws of a full run
        variance = noise.variance[i] if noise.variance else None
        if i == first_with_grad:
            latents = latents.detach()  # truncation: nothing flows into the earlier steps
        with torch.set_grad_enabled(grad_wanted and i >= first_with_grad):
            if blending:
                known = scheduler.add_noise(render_latents, noise.blend[i], t.reshape(1))
                latents = keep_latent_mask * known + (1.0 - keep_latent_mask) * latents
            latents = _denoise_step(denoiser, scheduler, latents, t, embeds, cond, options, variance)
    return latents
