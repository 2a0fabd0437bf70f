"""The two registered factories, ``tiny`` and ``stable-diffusion``: options reach the generator the same way.

The ``stable-diffusion`` factory is exercised without real weights by saving the tiny components
in the diffusers folder layout and loading them back through it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import texkit
from texkit.errors import ConfigError

SEED = 0


@pytest.fixture(scope="module")
def saved_tiny_weights(tmp_path_factory) -> tuple[str, str]:
    """``(model folder, controlnet folder)`` holding the tiny components in diffusers format."""
    from texkit_diffusers.tiny import build_tiny_components

    root = tmp_path_factory.mktemp("tiny-sd")
    for part, component in build_tiny_components(SEED).items():
        component.save_pretrained(str(root / ("controlnet" if part == "controlnet" else f"sd/{part}")))
    return str(root / "sd"), str(root / "controlnet")


def _lora_shapes(gen) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p.shape) for name, p in gen.unet.named_parameters() if p.requires_grad}


def test_stable_diffusion_factory_on_tiny_weights_builds_the_tiny_generator(saved_tiny_weights, paint_view):
    model, controlnet = saved_tiny_weights
    registry = texkit.get_registry()
    shared = {"steps": 2, "eta": 0.5, "guidance_scale": 3.0, "conditioning_scale": 0.8, "truncation": 1, "lora_rank": 2}
    tiny = registry.make_generator("tiny", seed=SEED, **shared)
    full = registry.make_generator(
        "stable-diffusion", model=model, controlnet=controlnet, resolution=64, checkpointing=False,
        device="cpu", dtype="fp32", **shared,
    )
    assert (tiny.name, full.name) == ("tiny", "stable-diffusion")
    assert full.options == tiny.options
    assert (full.options.steps, full.options.eta, full.options.truncation) == (2, 0.5, 1)
    for attribute in ("resolution", "condition_kind", "device", "dtype", "attention_backend", "vae_scale_factor"):
        assert getattr(full, attribute) == getattr(tiny, attribute), attribute
    assert _lora_shapes(full) == _lora_shapes(tiny) and all(2 in shape for shape in _lora_shapes(full).values())
    assert torch.allclose(paint_view(full), paint_view(tiny), atol=1e-5)  # LoRA B starts at zero: same weights, same view


def test_factories_pass_lora_targets_checkpointing_and_condition_through():
    gen = texkit.get_registry().make_generator(
        "tiny", steps=1, lora_targets=["to_q"], lora_alpha=8.0, checkpointing=True, condition="depth"
    )
    lora_names = [name for name, p in gen.unet.named_parameters() if p.requires_grad]
    assert lora_names and all(".to_q." in name for name in lora_names)
    assert gen.condition_kind == "depth" and gen.controlnet.config.conditioning_channels == 3
    assert gen.unet.is_gradient_checkpointing and gen.controlnet.is_gradient_checkpointing


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"truncation": -1}, "non-negative integer or 'all'"),
        ({"truncation": "last"}, "non-negative integer or 'all'"),
        ({"dtype": "fp8"}, "option 'dtype': Input should be 'fp32', 'fp16' or 'bf16'"),
    ],
)
def test_both_factories_reject_bad_options_with_one_line_config_errors(saved_tiny_weights, options, message):
    model, controlnet = saved_tiny_weights
    registry = texkit.get_registry()
    with pytest.raises(ConfigError, match=message):
        registry.make_generator("tiny", steps=1, **options)
    with pytest.raises(ConfigError, match=message):
        registry.make_generator("stable-diffusion", model=model, controlnet=controlnet, device="cpu", **options)


def test_stable_diffusion_factory_needs_model_and_controlnet(tmp_path: Path):
    with pytest.raises(ConfigError, match="needs options.model"):
        texkit.get_registry().make_generator("stable-diffusion", controlnet=str(tmp_path))
    with pytest.raises(ConfigError, match="options.controlnet"):
        texkit.get_registry().make_generator("stable-diffusion", model=str(tmp_path))
