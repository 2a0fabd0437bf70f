"""LoRA export with alpha != rank: plain diffusers' ``load_lora_weights`` reproduces texkit's UNet,
and the folder carries a model card with the base model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import texkit
from texkit.errors import WeightsError

RANK, ALPHA = 4, 16.0


def _trained_tiny():
    gen = texkit.get_registry().make_generator("tiny", steps=1, seed=0, lora_rank=RANK, lora_alpha=ALPHA)
    with torch.no_grad():
        for i, p in enumerate(gen.trainable_parameters()):
            p.normal_(0.0, 0.2, generator=torch.Generator().manual_seed(i))
    return gen


def _unet_inputs():
    g = torch.Generator().manual_seed(7)
    latents = torch.randn(2, 4, 8, 8, generator=g)
    context = torch.randn(2, 77, 32, generator=g)
    return latents, torch.tensor([10, 500]), context


def test_alpha_survives_plain_diffusers_load_lora_weights(tmp_path):
    from diffusers import StableDiffusionPipeline
    from texkit_diffusers.lora import saved_config
    from texkit_diffusers.tiny import build_tiny_components

    gen = _trained_tiny()
    gen.save_adapter(tmp_path / "adapter")
    assert saved_config(tmp_path / "adapter" / "pytorch_lora_weights.safetensors")["lora_alpha"] == ALPHA

    parts = build_tiny_components(seed=0)  # the same base weights, no texkit code around them
    parts.pop("controlnet")
    pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    latents, t, context = _unet_inputs()
    with torch.no_grad():
        base = pipe.unet(latents, t, encoder_hidden_states=context).sample
        pipe.load_lora_weights(str(tmp_path / "adapter"))
        loaded = pipe.unet(latents, t, encoder_hidden_states=context).sample
        ours = gen.unet(latents.to(gen.unet.dtype), t, encoder_hidden_states=context.to(gen.unet.dtype)).sample.float()
    assert (ours - base).abs().max() > 1e-2  # the adapter matters ...
    assert (loaded - ours).abs().max() < 1e-4  # ... and plain diffusers applies it with texkit's scale alpha/rank


def test_model_card_names_the_base_model(tmp_path):
    from texkit_diffusers.lora import save_lora

    gen = _trained_tiny()
    gen.save_adapter(tmp_path / "tiny")
    card = (tmp_path / "tiny" / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: diffusers" in card and "- lora" in card
    assert f"rank: {RANK}, alpha: {ALPHA:g}" in card and "load_lora_weights" in card

    save_lora(gen.unet, tmp_path / "hub", base_model="stable-diffusion-v1-5/stable-diffusion-v1-5")
    card = (tmp_path / "hub" / "README.md").read_text()
    assert 'base_model: "stable-diffusion-v1-5/stable-diffusion-v1-5"' in card.split("---")[1]


def test_texkit_refuses_an_adapter_with_another_alpha(tmp_path):
    _trained_tiny().save_adapter(tmp_path / "a16")
    other = texkit.get_registry().make_generator("tiny", steps=1, seed=0, lora_rank=RANK)
    with pytest.raises(WeightsError, match="lora_alpha=16"):
        other.load_adapter(tmp_path / "a16")
    same = texkit.get_registry().make_generator("tiny", steps=1, seed=0, lora_rank=RANK, lora_alpha=ALPHA)
    same.load_adapter(tmp_path / "a16")


def test_the_model_card_names_the_base_model_folder_not_its_unet_subfolder(tmp_path):
    import types

    from texkit_diffusers.lora import _base_model

    def unet(name):
        return types.SimpleNamespace(config=types.SimpleNamespace(_name_or_path=name))

    (tmp_path / "sd15" / "unet").mkdir(parents=True)
    assert _base_model(unet(str(tmp_path / "sd15" / "unet"))) == str(tmp_path / "sd15")  # loaded with subfolder="unet"
    assert _base_model(unet(str(tmp_path / "sd15"))) == str(tmp_path / "sd15")
    assert _base_model(unet("runwayml/stable-diffusion-v1-5")) == "runwayml/stable-diffusion-v1-5"  # a hub id
    assert _base_model(unet("org/unet")) == "org/unet"  # "unet" but no such folder: a hub id as it is
    assert _base_model(unet(None)) is None and _base_model(unet("None")) is None and _base_model(unet("")) is None


def test_an_adapter_without_metadata_loads_and_another_rank_is_refused_for_its_shape(tmp_path):
    from safetensors.torch import load_file, save_file
    from texkit_diffusers.lora import WEIGHT_NAME

    saved = _trained_tiny()
    saved.save_adapter(tmp_path / "a")
    plain = tmp_path / "plain"
    plain.mkdir()
    save_file(load_file(str(tmp_path / "a" / WEIGHT_NAME)), str(plain / WEIGHT_NAME))  # as written without the LoraConfig
    fresh = texkit.get_registry().make_generator("tiny", steps=1, seed=0, lora_rank=RANK, lora_alpha=ALPHA)
    fresh.load_adapter(plain)
    for a, b in zip(fresh.trainable_parameters(), saved.trainable_parameters()):
        torch.testing.assert_close(a, b)
    other_rank = texkit.get_registry().make_generator("tiny", steps=1, seed=0, lora_rank=2)
    with pytest.raises(WeightsError, match="does not fit this model"):  # the shapes differ; the alphas are not compared
        other_rank.load_adapter(tmp_path / "a")


def test_add_lora_defaults_to_rank_4_at_scale_1():
    """The documented defaults: rank 4, lora_alpha = rank (scale 1), B zero so the model is unchanged."""
    from texkit_diffusers.lora import ADAPTER_NAME, add_lora, lora_parameters
    from texkit_diffusers.tiny import build_tiny_components

    unet = build_tiny_components(seed=0)["unet"]
    add_lora(unet)
    config = unet.peft_config[ADAPTER_NAME]
    assert config.r == 4 and config.lora_alpha == 4
    shapes = {tuple(p.shape) for n, p in unet.named_parameters() if "lora_A" in n}
    assert shapes and all(s[0] == 4 for s in shapes)
    assert all(float(p.detach().abs().sum()) == 0 for n, p in unet.named_parameters() if "lora_B" in n)
    assert len(lora_parameters(unet)) == 2 * sum(1 for n, _ in unet.named_parameters() if "lora_A" in n)


def test_model_card_loading_lines_and_scale():
    from texkit_diffusers.lora import model_card

    named = model_card("org/sd15", {"r": 8, "lora_alpha": 4, "target_modules": ["to_q", "to_v"]})
    assert 'from_pretrained("org/sd15", controlnet=controlnet)' in named
    assert "- rank: 8, alpha: 4 (scale 0.5)" in named and "- target modules: to_q, to_v" in named
    unnamed = model_card(None, {"r": 1, "lora_alpha": 2})
    assert 'from_pretrained("<the base model>", controlnet=controlnet)' in unnamed
    assert "- rank: 1, alpha: 2 (scale 2)" in unnamed and "base_model:" not in unnamed
    assert "(scale 3)" in model_card(None, {"lora_alpha": 3})  # no rank recorded: alpha itself


def test_an_adapter_with_a_key_this_model_lacks_is_refused_naming_the_key(tmp_path):
    from safetensors.torch import load_file, save_file
    from texkit_diffusers.lora import WEIGHT_NAME

    saved = _trained_tiny()
    saved.save_adapter(tmp_path / "a")
    state = load_file(str(tmp_path / "a" / WEIGHT_NAME))
    key = next(k for k in state if k.startswith("unet.") and ".to_k.lora.down." in k)
    extra = key.replace(".to_k.", ".to_extra.")
    state[extra] = state[key].clone()
    other = tmp_path / "other"
    other.mkdir()
    save_file(state, str(other / WEIGHT_NAME))
    fresh = texkit.get_registry().make_generator("tiny", steps=1, seed=0, lora_rank=RANK, lora_alpha=ALPHA)
    with pytest.raises(WeightsError, match="does not match this model") as err:
        fresh.load_adapter(other)
    assert "to_extra" in str(err.value)


def test_saving_over_an_adapter_whose_old_files_cannot_be_removed_still_saves(tmp_path, monkeypatch):
    """The previous adapter is moved aside, the new one renamed into place, then the old one deleted:
    a failure to delete it (a file the user's account may not remove) does not fail the save."""
    import os

    from safetensors.torch import load_file
    from texkit_diffusers.lora import WEIGHT_NAME

    first, second = _trained_tiny(), _trained_tiny()
    with torch.no_grad():
        for p in second.trainable_parameters():
            p.add_(1.0)
    first.save_adapter(tmp_path / "adapter")
    real_unlink = os.unlink

    def unlink(path, *args, dir_fd=None, **kwargs):
        if dir_fd is not None and str(path) == WEIGHT_NAME:  # rmtree removing the old adapter's weights
            raise PermissionError(13, "Permission denied", str(path))
        return real_unlink(path, *args, dir_fd=dir_fd, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    second.save_adapter(tmp_path / "adapter")
    monkeypatch.setattr(os, "unlink", real_unlink)
    assert load_file(str(tmp_path / "adapter" / WEIGHT_NAME))  # a complete weights file
    fresh = texkit.get_registry().make_generator("tiny", steps=1, seed=0, lora_rank=RANK, lora_alpha=ALPHA)
    fresh.load_adapter(tmp_path / "adapter")
    for a, b in zip(fresh.trainable_parameters(), second.trainable_parameters()):
        torch.testing.assert_close(a, b)  # the new adapter is the one in place


def test_model_card_base_model_line_and_a_missing_alpha():
    from texkit_diffusers.lora import model_card

    assert "- base model: `org/sd15`" in model_card("org/sd15", {"r": 4, "lora_alpha": 4})
    assert "- base model: `texkit tiny random model (built in code by texkit_diffusers.tiny)`" in model_card(None, {"r": 4, "lora_alpha": 4})
    # no lora_alpha recorded: diffusers' assumption, alpha = rank
    assert "- rank: 4, alpha: 4 (scale 1)" in model_card(None, {"r": 4})
    assert "- rank: 4, alpha: 0 (scale 0)" in model_card(None, {"r": 4, "lora_alpha": 0})  # an adapter switched off


def test_an_adapter_folder_whose_parents_do_not_exist_yet_is_created(tmp_path):
    from texkit_diffusers.lora import WEIGHT_NAME, save_lora

    path = save_lora(_trained_tiny().unet, tmp_path / "a" / "b" / "adapter")
    assert path == tmp_path / "a" / "b" / "adapter" / WEIGHT_NAME and path.is_file()


def _failing_save(monkeypatch):
    from diffusers.loaders import StableDiffusionLoraLoaderMixin

    def save_lora_weights(save_directory, **kwargs):
        (Path(save_directory) / "partial.safetensors").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(StableDiffusionLoraLoaderMixin, "save_lora_weights", staticmethod(save_lora_weights))


def test_a_failed_save_leaves_no_temporary_folder_and_raises_its_own_error(tmp_path, monkeypatch):
    from texkit_diffusers.lora import save_lora

    unet = _trained_tiny().unet
    _failing_save(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        save_lora(unet, tmp_path / "adapter")
    assert list(tmp_path.iterdir()) == []


def test_a_temporary_folder_that_cannot_be_removed_does_not_hide_the_saves_error(tmp_path, monkeypatch):
    import os

    from texkit_diffusers.lora import save_lora

    unet = _trained_tiny().unet
    _failing_save(monkeypatch)
    real = os.rmdir

    def rmdir(path, *args, **kwargs):
        if Path(path).name.startswith(".adapter."):
            raise OSError(16, "Device or resource busy", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", rmdir)
    with pytest.raises(OSError, match="No space left"):
        save_lora(unet, tmp_path / "adapter")


def test_an_adapter_that_does_not_fit_is_named_by_the_first_line_of_the_error_cut_at_160(tmp_path, monkeypatch):
    import peft.utils

    saved = _trained_tiny()
    saved.save_adapter(tmp_path / "a")
    other_rank = texkit.get_registry().make_generator("tiny", steps=1, seed=0, lora_rank=2)
    with pytest.raises(WeightsError) as err:
        other_rank.load_adapter(tmp_path / "a")
    assert "does not fit this model (Error(s) in loading state_dict for UNet2DConditionModel:); build the generator" in str(err.value)

    def too_long(*args, **kwargs):
        raise RuntimeError("  " + "s" * 200 + "\nsize mismatch for a second line")

    monkeypatch.setattr(peft.utils, "set_peft_model_state_dict", too_long)
    with pytest.raises(WeightsError) as err:
        other_rank.load_adapter(tmp_path / "a")
    assert f"does not fit this model ({'s' * 160}); build" in str(err.value)
