"""The aesthetic reward's weights from hub ids through a Hugging Face cache laid out here (offline)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from texkit_rewards_image.aesthetic import AestheticReward
from texkit_rewards_image.aesthetic_weights import hub_file, tiny_aesthetic_head, tiny_clip_vision

import texkit
from texkit.geometry.primitives import cube
from texkit.hub import cache_snapshot_folder
from texkit.types import RenderOutput, RewardContext, Texture

REV = "c" * 40
REV_OLD = "d" * 40




@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf" / "hub"
    clip = tiny_clip_vision(seed=5)
    clip.save_pretrained(str(cache_snapshot_folder(cache, "org/tiny-clip", REV)))
    head = tiny_aesthetic_head(int(clip.config.projection_dim), seed=5)
    state = {k: v.contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(_head_file(cache, REV, "main")))
    other = tiny_aesthetic_head(int(clip.config.projection_dim), seed=9)
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(_head_file(cache, REV_OLD, "old")))
    monkeypatch.setenv("HF_HOME", str(cache.parent))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def _head_file(cache, rev, ref):
    folder = cache_snapshot_folder(cache, "org/aesthetic-head", rev, ref) / "weights"
    folder.mkdir(exist_ok=True)
    return folder / "head.safetensors"


def _ctx():
    gen = torch.Generator().manual_seed(6)
    rgb = torch.rand(2, 12, 12, 3, generator=gen)
    z = torch.zeros(2, 12, 12, 1)
    renders = RenderOutput(
        rgb=rgb, alpha=torch.ones(2, 12, 12, 1), depth=z, normal=torch.zeros(2, 12, 12, 3), uv=torch.zeros(2, 12, 12, 2),
        face_id=torch.zeros(2, 12, 12, dtype=torch.long), view_cos=z,
    )
    return RewardContext(mesh=cube(), texture=Texture.constant(4), renders=renders)


def test_hub_ids_score_like_the_models_built_in_code(hub_cache):
    reward = AestheticReward(clip_path="org/tiny-clip", head_path="org/aesthetic-head/weights/head.safetensors")
    torch.testing.assert_close(reward(_ctx()).value, AestheticReward(tiny=True, seed=5)(_ctx()).value)


def test_head_revision_and_explicit_cache_dir(hub_cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(hub_cache.parent / "empty"))
    reward = AestheticReward(
        clip_path="org/tiny-clip", head_path="org/aesthetic-head/weights/head.safetensors", head_revision="old",
        cache_dir=str(hub_cache), local_files_only=True,
    )
    tiny = AestheticReward(tiny=True, seed=5)
    assert not torch.allclose(reward(_ctx()).value, tiny(_ctx()).value)


def test_offline_cache_miss_and_missing_paths_are_told_apart(hub_cache, tmp_path):
    reward = AestheticReward(clip_path="openai/clip-vit-large-patch14", head_path="org/aesthetic-head/weights/head.safetensors")
    with pytest.raises(texkit.WeightsError) as info:
        reward.models()
    msg = str(info.value)
    assert "offline (HF_HUB_OFFLINE is set)" in msg and "not in the Hugging Face cache" in msg and "openai/clip-vit-large-patch14" in msg
    assert "\n" not in msg

    reward = AestheticReward(clip_path="org/tiny-clip", head_path="org/aesthetic-head/nope.pth")
    with pytest.raises(texkit.WeightsError, match="head weights: offline"):
        reward.models()

    with pytest.raises(texkit.WeightsError, match="not a folder or a hub id"):
        AestheticReward(clip_path=str(tmp_path / "nope"), head_path="org/aesthetic-head/weights/head.safetensors")
    with pytest.raises(texkit.WeightsError, match="head_path file not found"):
        AestheticReward(clip_path="org/tiny-clip", head_path=str(tmp_path / "head.pth"))


def test_hub_file_spec():
    assert hub_file("org/name/sub/file.pth") == ("org/name", "sub/file.pth")
    assert hub_file("/abs/org/file.pth") is None and hub_file("./a/b/c.pth") is None and hub_file("file.pth") is None
