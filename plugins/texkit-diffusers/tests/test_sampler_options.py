"""The sampler's options and random draws with a real DDIM scheduler and a recording denoiser (no UNet):
defaults, truncation, the refinement start, CFG's batch and formula, the argument checks."""

from __future__ import annotations

import types

import pytest
import torch
from texkit_diffusers.sampler import SamplerNoise, SamplerOptions, draw_noise, refine_start, sample_latents
from texkit_diffusers.tiny import sd15_ddim_scheduler

from texkit import PromptEmbedding

SHAPE = (2, 4, 3, 3)


class Denoiser:
    """eps = 0.1 x + the mean of the prompt embedding of each row (a test double of ControlNet + UNet)."""

    def __init__(self, weight: torch.Tensor | float = 0.1) -> None:
        self.weight = weight
        self.batches: list[int] = []
        self.scales: list[float] = []

    def __call__(self, model_input, t, embeds, condition, scale):
        self.batches.append(model_input.shape[0])
        self.scales.append(scale)
        assert condition.shape[0] == model_input.shape[0] and embeds.shape[0] == model_input.shape[0]
        return self.weight * model_input + embeds.mean(dim=(1, 2)).view(-1, 1, 1, 1)


def _prompt() -> PromptEmbedding:
    return PromptEmbedding(cond=torch.full((2, 3, 4), 1.0), uncond=torch.full((2, 3, 4), -1.0))


def test_defaults_are_the_methods():
    o = SamplerOptions()
    assert (o.steps, o.eta, o.guidance_scale, o.conditioning_scale, o.truncation) == (10, 1.0, 7.5, 1.0, "all")


@pytest.mark.parametrize("truncation, want", [("all", 5), (3, 3), (0, 0), (7, 5), (-2, 0)])
def test_steps_with_grad(truncation, want):
    assert SamplerOptions(steps=5, truncation=truncation).steps_with_grad() == want


@pytest.mark.parametrize("steps, strength, start", [(10, 1.0, 0), (10, 0.5, 5), (10, 0.05, 10), (10, 0.0, 10), (4, 0.3, 3), (4, 0.75, 1)])
def test_refine_start(steps, strength, start):
    assert refine_start(steps, strength) == start


def test_draw_noise_draws_in_the_pipelines_order_and_scales_the_start():
    scheduler = types.SimpleNamespace(init_noise_sigma=2.0)
    options = SamplerOptions(steps=3, eta=0.5)
    noise = draw_noise(SHAPE, options, scheduler, torch.Generator().manual_seed(0), torch.device("cpu"), torch.float32)
    g = torch.Generator().manual_seed(0)
    draws = [torch.randn(SHAPE, generator=g) for _ in range(7)]
    torch.testing.assert_close(noise.initial, 2.0 * draws[0])
    assert len(noise.variance) == 3 and len(noise.blend) == 3
    torch.testing.assert_close(noise.variance[2], draws[3])
    torch.testing.assert_close(noise.blend[0], draws[4])
    deterministic = draw_noise(SHAPE, SamplerOptions(steps=3, eta=0.0), scheduler, None, torch.device("cpu"), torch.float32, blending=False)
    assert deterministic.variance == [] and deterministic.blend == []


def _noise(steps: int, blend: bool = True) -> SamplerNoise:
    g = torch.Generator().manual_seed(1)
    return SamplerNoise(torch.randn(SHAPE, generator=g), [], [torch.randn(SHAPE, generator=g) for _ in range(steps)] if blend else [])


@pytest.mark.parametrize("guidance, batch", [(7.5, 4), (1.0, 2), (1.01, 4)])
def test_classifier_free_guidance_batches_and_combines(guidance, batch):
    options = SamplerOptions(steps=2, eta=0.0, guidance_scale=guidance, conditioning_scale=0.7)
    denoiser, scheduler = Denoiser(), sd15_ddim_scheduler()
    got = sample_latents(denoiser, scheduler, _prompt(), torch.zeros(2, 3, 24, 24), _noise(2), options)
    assert denoiser.batches == [batch, batch] and denoiser.scales == [0.7, 0.7]
    # by hand: eps = eps_u + w (eps_c - eps_u) with eps_c = 0.1 x + 1, eps_u = 0.1 x - 1 (x: the latent)
    ref = sd15_ddim_scheduler()
    ref.set_timesteps(2)
    x = _noise(2).initial
    for t in ref.timesteps:
        cond, uncond = 0.1 * x + 1.0, 0.1 * x - 1.0
        eps = uncond + guidance * (cond - uncond) if guidance > 1.0 else cond
        x = ref.step(eps, t, x, eta=0.0, return_dict=False)[0]
    torch.testing.assert_close(got, x)


def test_refinement_starts_from_the_noised_render_and_checks_its_arguments():
    options = SamplerOptions(steps=4, eta=0.0, guidance_scale=1.0)
    render = torch.full(SHAPE, 0.3)
    cond = torch.zeros(2, 3, 24, 24)
    denoiser = Denoiser()
    out = sample_latents(denoiser, sd15_ddim_scheduler(), _prompt(), cond, _noise(4), options, render_latents=render, strength=0.5)
    assert len(denoiser.batches) == 2  # the last int(4 * 0.5) steps
    assert torch.equal(sample_latents(Denoiser(), sd15_ddim_scheduler(), _prompt(), cond, _noise(4), options, render_latents=render, strength=0.2), render)
    assert not torch.equal(out, render)
    for strength in (-0.1, 1.5):
        with pytest.raises(ValueError, match="outside"):
            sample_latents(Denoiser(), sd15_ddim_scheduler(), _prompt(), cond, _noise(4), options, render_latents=render, strength=strength)
    with pytest.raises(ValueError, match="needs render_latents"):
        sample_latents(Denoiser(), sd15_ddim_scheduler(), _prompt(), cond, _noise(4), options, strength=0.5)
    with pytest.raises(ValueError, match="blending=True"):
        sample_latents(Denoiser(), sd15_ddim_scheduler(), _prompt(), cond, _noise(4, blend=False), options, torch.ones(2, 1, 3, 3), render)


def test_a_full_keep_mask_restarts_every_step_from_the_noised_render():
    options = SamplerOptions(steps=3, eta=0.0, guidance_scale=1.0)
    render = torch.full(SHAPE, 0.3)
    noise = _noise(3)
    got = sample_latents(Denoiser(), sd15_ddim_scheduler(), _prompt(), torch.zeros(2, 3, 24, 24), noise, options, torch.ones(2, 1, 3, 3), render)
    ref = sd15_ddim_scheduler()
    ref.set_timesteps(3)
    t = ref.timesteps[-1]
    x = ref.add_noise(render, noise.blend[2], t.reshape(1))  # the last step starts from the render noised to it
    x = ref.step(0.1 * x + 1.0, t, x, eta=0.0, return_dict=False)[0]
    torch.testing.assert_close(got, x)


def test_truncation_keeps_the_graph_of_the_last_steps_only():
    """With truncation N the gradient is that of the last N steps from their (detached) input: known by hand."""
    options = {"steps": 3, "eta": 0.0, "guidance_scale": 1.0}

    def grad_of(truncation):
        weight = torch.tensor(0.1, requires_grad=True)  # a trainable weight of the denoiser
        out = sample_latents(Denoiser(weight), sd15_ddim_scheduler(), _prompt(), torch.zeros(2, 3, 24, 24), _noise(3), SamplerOptions(**options, truncation=truncation))
        return torch.autograd.grad(out.sum(), weight)[0]

    def by_hand(last: int):
        weight = torch.tensor(0.1, requires_grad=True)
        ref = sd15_ddim_scheduler()
        ref.set_timesteps(3)
        x = _noise(3).initial
        for i, t in enumerate(ref.timesteps):
            if i == 3 - last:
                x = x.detach()
            with torch.set_grad_enabled(i >= 3 - last):
                x = ref.step((weight if i >= 3 - last else 0.1) * x + 1.0, t, x, eta=0.0, return_dict=False)[0]
        return torch.autograd.grad(x.sum(), weight)[0]

    for truncation, last in (("all", 3), (3, 3), (2, 2), (1, 1)):
        torch.testing.assert_close(grad_of(truncation), by_hand(last))
    assert not torch.allclose(by_hand(1), by_hand(3))


def test_strength_at_its_limits_is_accepted():
    """strength 0 (no step: the render itself) and 1 (every step, from the noise) are in [0, 1]."""
    options = SamplerOptions(steps=4, eta=0.0, guidance_scale=1.0)
    render = torch.full(SHAPE, 0.3)
    cond = torch.zeros(2, 3, 24, 24)
    assert torch.equal(sample_latents(Denoiser(), sd15_ddim_scheduler(), _prompt(), cond, _noise(4), options, render_latents=render, strength=0.0), render)
    full = Denoiser()
    sample_latents(full, sd15_ddim_scheduler(), _prompt(), cond, _noise(4), options, render_latents=render, strength=1.0)
    assert len(full.batches) == 4


def test_refinement_noises_the_render_with_the_start_noise_divided_by_init_noise_sigma():
    """SDEdit's start: the render noised to the start step's timestep with ``noise.initial / sigma_init``
    (the draw was scaled by the scheduler's init_noise_sigma; 1 for DDIM, 2 here to tell / from *)."""
    options = SamplerOptions(steps=4, eta=0.0, guidance_scale=1.0)
    scheduler = sd15_ddim_scheduler()
    scheduler.init_noise_sigma = 2.0
    render = torch.full(SHAPE, 0.3)
    noise = _noise(4)
    seen = []

    class Recording(Denoiser):
        def __call__(self, model_input, t, embeds, condition, scale):
            seen.append(model_input.clone())
            return super().__call__(model_input, t, embeds, condition, scale)

    sample_latents(Recording(), scheduler, _prompt(), torch.zeros(2, 3, 24, 24), noise, options, render_latents=render, strength=0.5)
    start = scheduler.timesteps[refine_start(4, 0.5)].reshape(1)
    want = sd15_ddim_scheduler().add_noise(render, noise.initial / 2.0, start)
    torch.testing.assert_close(seen[0], want)


def test_a_partial_keep_mask_blends_the_noised_render_into_the_latent_before_every_step():
    """x <- m known_t + (1 - m) x, known_t the render noised to step t, then the DDIM step (by hand);
    m = 0, 0.25 and 1 in different latent pixels."""
    options = SamplerOptions(steps=3, eta=0.0, guidance_scale=1.0)
    render = torch.full(SHAPE, 0.3)
    noise = _noise(3)
    mask = torch.zeros(2, 1, 3, 3)
    mask[:, :, 0], mask[:, :, 1] = 0.25, 1.0
    got = sample_latents(Denoiser(), sd15_ddim_scheduler(), _prompt(), torch.zeros(2, 3, 24, 24), noise, options, mask, render)
    ref = sd15_ddim_scheduler()
    ref.set_timesteps(3)
    x = noise.initial
    for i, t in enumerate(ref.timesteps):
        known = ref.add_noise(render, noise.blend[i], t.reshape(1))
        x = mask * known + (1.0 - mask) * x
        x = ref.step(0.1 * x + 1.0, t, x, eta=0.0, return_dict=False)[0]
    torch.testing.assert_close(got, x)


def test_classifier_free_guidance_on_a_batch_of_three():
    """A batch of 3 samples: one denoiser call of 6 rows, split into the unconditional and conditional halves."""
    shape = (3, 4, 3, 3)
    prompt = PromptEmbedding(cond=torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1).expand(3, 3, 4), uncond=torch.full((3, 3, 4), -1.0))
    initial = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    denoiser = Denoiser()
    options = SamplerOptions(steps=2, eta=0.0, guidance_scale=7.5)
    got = sample_latents(denoiser, sd15_ddim_scheduler(), prompt, torch.zeros(3, 3, 24, 24), SamplerNoise(initial, [], []), options)
    assert denoiser.batches == [6, 6]
    ref = sd15_ddim_scheduler()
    ref.set_timesteps(2)
    x, text = initial, torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1)
    for t in ref.timesteps:
        cond, uncond = 0.1 * x + text, 0.1 * x - 1.0
        x = ref.step(uncond + 7.5 * (cond - uncond), t, x, eta=0.0, return_dict=False)[0]
    torch.testing.assert_close(got, x)
