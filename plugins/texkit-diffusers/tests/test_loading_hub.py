"""Weights the diffusers way: hub ids through a Hugging Face cache laid out here (offline), local
folders, revision, variant, and messages that tell offline/not cached from not found."""

from __future__ import annotations

import pytest
import torch
from texkit_diffusers.loading import check_controlnet, is_single_file, load_components

from texkit.errors import ConfigError, WeightsError
from texkit.hub import HubOptions, cache_snapshot_folder, describe_failure

REV_MAIN = "a" * 40
REV_V2 = "b" * 40




@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """An HF cache with org/tiny-sd (main; v2 with an fp16 unet), org/tiny-cn (6 ch) and two 3-channel ControlNets."""
    from texkit_diffusers.tiny import build_tiny_components

    cache = tmp_path_factory.mktemp("hf") / "hub"
    parts = build_tiny_components(seed=0)
    for rev, ref in ((REV_MAIN, "main"), (REV_V2, "v2")):
        snap = cache_snapshot_folder(cache, "org/tiny-sd", rev, ref)
        for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
            parts[name].save_pretrained(snap / name)
    v2 = cache / "models--org--tiny-sd" / "snapshots" / REV_V2
    for name in ("unet", "vae", "text_encoder"):
        parts[name].to(torch.float16).save_pretrained(v2 / name, variant="fp16")
        parts[name].float()
    parts["controlnet"].save_pretrained(cache_snapshot_folder(cache, "org/tiny-cn", REV_MAIN))
    three = build_tiny_components(seed=0, conditioning_channels=3)["controlnet"]
    three.save_pretrained(cache_snapshot_folder(cache, "org/control_v11p_sd15_inpaint", REV_MAIN))
    three.save_pretrained(cache_snapshot_folder(cache, "org/control_sd15_depth", REV_MAIN))
    return cache


@pytest.fixture
def offline(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(hub_cache.parent))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hub_cache


def test_hub_ids_load_from_the_cache_offline(offline):
    parts = load_components("org/tiny-sd", "org/tiny-cn", torch.float32, condition="inpaint")
    assert set(parts) == {"unet", "vae", "text_encoder", "tokenizer", "scheduler", "controlnet"}
    assert type(parts["scheduler"]).__name__ == "DDIMScheduler"
    assert parts["controlnet"].config.conditioning_channels == 6


def test_revision_variant_and_cache_dir(offline, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(offline.parent / "elsewhere"))  # only the explicit cache_dir has it
    parts = load_components(
        "org/tiny-sd", "org/tiny-cn", torch.float16, revision="v2", variant="fp16", cache_dir=str(offline), local_files_only=True
    )
    assert parts["unet"].dtype == torch.float16
    with pytest.raises(WeightsError) as info:  # main has no fp16 variant
        load_components("org/tiny-sd", "org/tiny-cn", torch.float16, variant="fp16", cache_dir=str(offline))
    assert "no 'fp16' variant" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(WeightsError, match="revision 'nope'.*not in the Hugging Face cache"):
        load_components("org/tiny-sd", "org/tiny-cn", torch.float32, revision="nope", cache_dir=str(offline))


def test_offline_cache_miss_is_told_apart_from_a_missing_folder(offline, tmp_path):
    with pytest.raises(WeightsError) as info:
        load_components("org/not-downloaded", "org/tiny-cn", torch.float32)
    msg = str(info.value)
    assert "offline (HF_HUB_OFFLINE is set)" in msg and "not in the Hugging Face cache" in msg and str(offline) in msg
    assert "hf download org/not-downloaded" in msg and "\n" not in msg

    with pytest.raises(WeightsError, match="local_files_only=true"):
        load_components("org/not-downloaded", "org/tiny-cn", torch.float32, local_files_only=True)

    with pytest.raises(WeightsError) as info:
        load_components(str(tmp_path / "sd15"), "org/tiny-cn", torch.float32)
    assert "no such folder" in str(info.value) and "offline (" not in str(info.value)

    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "unet").mkdir()
    with pytest.raises(WeightsError, match="has no vae/, text_encoder/, tokenizer/, scheduler/"):
        load_components(str(tmp_path / "half"), "org/tiny-cn", torch.float32)

    with pytest.raises(WeightsError, match="ControlNet: no such folder"):
        load_components("org/tiny-sd", str(tmp_path / "cn"), torch.float32)


def test_local_snapshot_folders_load_too(offline):
    snap = offline / "models--org--tiny-sd" / "snapshots" / REV_MAIN
    cn = offline / "models--org--tiny-cn" / "snapshots" / REV_MAIN
    parts = load_components(str(snap), str(cn), torch.float32)
    assert parts["unet"].config.cross_attention_dim == 32


def test_controlnet_advice_fits_the_controlnet(offline):
    with pytest.raises(ConfigError) as info:
        load_components("org/tiny-sd", "org/control_v11p_sd15_inpaint", torch.float32, condition="inpaint")
    msg = str(info.value)
    assert "3-channel inpainting ControlNet" in msg and "depth-aware" in msg
    assert "use condition='depth'" not in msg  # an inpainting ControlNet must not be fed depth

    with pytest.raises(ConfigError, match="use condition='depth' with it"):
        load_components("org/tiny-sd", "org/control_sd15_depth", torch.float32, condition="inpaint")
    load_components("org/tiny-sd", "org/control_sd15_depth", torch.float32, condition="depth")

    with pytest.raises(ConfigError, match="condition='inpaint'"):
        check_controlnet(6, "org/tiny-cn", "depth")
    with pytest.raises(ConfigError, match="takes 9 input channels"):
        check_controlnet(9, "org/other", "inpaint")


def test_single_file_checkpoints_go_through_from_single_file(monkeypatch, tmp_path):
    from diffusers import ControlNetModel

    assert is_single_file("model.safetensors") and is_single_file("https://huggingface.co/o/n/blob/main/x.ckpt")
    assert not is_single_file("org/name")
    seen = {}

    def fake(source, **kwargs):
        seen.update(kwargs, source=source)
        raise OSError("boom")

    monkeypatch.setattr(ControlNetModel, "from_single_file", fake)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ckpt = tmp_path / "cn.safetensors"
    ckpt.write_bytes(b"")
    from texkit_diffusers.loading import _load_controlnet

    with pytest.raises(WeightsError, match="ControlNet"):
        _load_controlnet(str(ckpt), torch.float32, HubOptions(token="hf_x", revision="r1"))
    assert seen["source"] == str(ckpt) and seen["local_files_only"] is True and seen["token"] == "hf_x" and seen["revision"] == "r1"


def _named(name: str, *bases: type) -> BaseException:
    return type(name, bases or (Exception,), {})("detail")


@pytest.mark.parametrize(
    "error,expected",
    [
        (_named("GatedRepoError"), "gated repository"),
        (_named("RepositoryNotFoundError"), "no repository 'org/x' on the hub"),
        (_named("RevisionNotFoundError"), "has no revision"),
        (_named("ConnectError"), "could not reach the hub"),
    ],
)
def test_online_failures_are_named(error, expected, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    msg = describe_failure(error, "SD model", "org/x", HubOptions(revision="r"))
    assert expected in msg and "offline" not in msg.split(";")[0]


def test_stable_diffusion_generator_takes_hub_ids_offline(offline):
    import texkit

    gen = texkit.get_registry().make_generator(
        "stable-diffusion", model="org/tiny-sd", controlnet="org/tiny-cn", resolution=64, steps=1, device="cpu", dtype="fp32"
    )
    assert gen.name == "stable-diffusion" and gen.controlnet.config.conditioning_channels == 6
    with pytest.raises(ConfigError, match="3-channel inpainting ControlNet"):
        texkit.get_registry().make_generator(
            "stable-diffusion", model="org/tiny-sd", controlnet="org/control_v11p_sd15_inpaint", resolution=64, device="cpu", dtype="fp32"
        )
