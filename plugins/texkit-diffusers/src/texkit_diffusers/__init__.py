"""Stable Diffusion + ControlNet generator for texkit (registered as ``tiny`` and ``stable-diffusion``)."""

from texkit_diffusers.generator import DiffusionGenerator, SamplerOptions

__all__ = ["DiffusionGenerator", "SamplerOptions"]
