"""Starting the view loop from an existing texture (issue 19): ``texture.init`` with ``inpaint`` and ``refine``.

Tiny generator on the CPU, two views of the demo mesh, 32-texel textures. One session is built
per module and its `Session.initial` swapped per test (a build loads the tiny model); the
config path (`Session.build` reading ``texture.init``) is exercised where it matters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from texkit.config import TextureConfig, parse_config
from texkit.errors import ConfigError, TexkitError
from texkit.geometry.primitives import load_mesh
from texkit.geometry.uv_raster import rasterize_uv
from texkit.initial_texture import FILL_WEIGHT, LOCKED_VIEWCOS, InitialTexture, load_initial_texture
from texkit.session import Session
from texkit.view_loop import accepts_strength

SIZE = 32
SEEDS = [11, 12]


def _config(**texture) -> dict:
    return {
        "mesh": {"path": "demo"},
        "prompts": {"text": ["a vase"]},
        "generator": {"name": "tiny", "options": {"steps": 4, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20, -20], "azimuth": [0, 180]}, "reward": {"elevation": [-20], "azimuth": [90]}},
        "texture": {"size": SIZE, "render_size": 32, **texture},
        "training": {"before_after": False},
        "device": "cpu",
    }


def _smooth(size: int = SIZE) -> torch.Tensor:
    """A smooth ``(T, T, 3)`` texture (small back-projection round-trip error)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return torch.stack((0.2 + 0.6 * xx, 0.8 - 0.6 * yy, 0.5 + 0.3 * torch.sin(6.0 * xx)), dim=-1)


def _png(path: Path, rgb: torch.Tensor, alpha: torch.Tensor | None = None) -> Path:
    arr = (rgb.clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    if alpha is not None:
        arr = np.concatenate([arr, (alpha.numpy()[..., None] * 255).astype(np.uint8)], axis=-1)
    Image.fromarray(arr).save(path)
    return path


def _quantised(rgb: torch.Tensor) -> torch.Tensor:
    """What a PNG of ``rgb`` reads back as."""
    return (rgb.clamp(0, 1) * 255).round() / 255


@pytest.fixture(scope="module")
def session() -> Session:
    return Session.build(parse_config(_config()), need_rewards=False)


@pytest.fixture(scope="module")
def islands() -> torch.Tensor:
    """``(T, T)`` bool: texels inside the demo mesh's UV islands."""
    return rasterize_uv(load_mesh("demo"), SIZE).mask


def _paint(session: Session, initial: InitialTexture | None, prompt: str | list[str] = "a vase", seeds=SEEDS):
    session.initial = initial
    try:
        with torch.no_grad():
            return session.paint(prompt, seeds)
    finally:
        session.initial = None


def _initial(tmp_path: Path, mode: str, strength: float = 0.5, **extra) -> InitialTexture:
    path = _png(tmp_path / "init.png", _smooth())
    cfg = TextureConfig(size=SIZE, init=str(path), mode=mode, strength=strength, **extra)
    return load_initial_texture(cfg, load_mesh("demo"))


# -- refine --------------------------------------------------------------------------------
def test_refine_strength_0_returns_the_input_where_it_was_painted(session, islands, tmp_path):
    init = _initial(tmp_path, "refine", 0.0)
    out = _paint(session, init).image
    error = (out - init.image).abs()[islands]
    assert error.mean() < 0.005 and error.max() < 0.05, (float(error.mean()), float(error.max()))  # round trip only


def test_refine_strength_1_equals_painting_from_scratch_with_the_same_seed(session, tmp_path):
    path = _png(tmp_path / "init.png", _smooth())
    refined = Session.build(parse_config(_config(init=str(path), mode="refine", strength=1.0)), need_rewards=False)
    assert refined.initial is not None and refined.initial.mode == "refine"
    with torch.no_grad():
        from_init = refined.paint("a vase", SEEDS).image
    scratch = _paint(session, None).image
    assert torch.equal(from_init, scratch)


def test_refine_stays_closer_to_the_input_at_lower_strength(session, islands, tmp_path):
    distance = {}
    for strength in (0.0, 0.25, 0.75, 1.0):
        init = _initial(tmp_path, "refine", strength)
        distance[strength] = float((_paint(session, init).image - init.image).abs()[islands].mean())
    assert distance[0.0] < distance[0.25] < distance[0.75] < distance[1.0], distance


# -- inpaint -------------------------------------------------------------------------------
def test_inpaint_changes_no_texel_outside_the_unpainted_and_mask_region(session, islands, tmp_path):
    rgb = _smooth()
    alpha = torch.ones(SIZE, SIZE)
    alpha[:, SIZE // 2 :] = 0.0  # right half unpainted
    mask = torch.zeros(SIZE, SIZE, 3)
    mask[4:12, 4:12] = 1.0  # white square: repaint
    cfg = TextureConfig(size=SIZE, init=str(_png(tmp_path / "init.png", rgb, alpha)), mode="inpaint", mask=str(_png(tmp_path / "mask.png", mask)))
    init = load_initial_texture(cfg, load_mesh("demo"))
    keep = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    keep[:, : SIZE // 2] = True
    keep[4:12, 4:12] = False
    assert torch.equal(init.painted[..., 0].bool(), keep)
    out = _paint(session, init, ["a vase", "a jar"], [[11, 21], [12, 22]])  # a batch of two samples
    for b in range(2):
        image = out.image[b]
        assert torch.equal(image[keep], _quantised(rgb)[keep])  # bit for bit
        changed = (image - _quantised(rgb)).abs().amax(-1) > 0.05
        assert changed[~keep & islands].float().mean() > 0.5  # the rest was generated
    assert out.coverage[:, keep].min() == 1.0


def test_inpaint_of_a_fully_painted_texture_keeps_it(session, tmp_path):
    init = _initial(tmp_path, "inpaint")
    out = _paint(session, init).image
    painted = init.painted[..., 0].bool()
    assert painted.float().mean() > 0.9
    assert torch.equal(out[painted], init.image[painted])


# -- gradients -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["inpaint", "refine"])
def test_gradients_reach_lora_and_cameras(tmp_path, mode):
    from texkit.training import Trainer

    alpha = torch.ones(SIZE, SIZE)
    alpha[:, SIZE // 2 :] = 0.0
    path = _png(tmp_path / "init.png", _smooth(), alpha if mode == "inpaint" else None)
    data = _config(init=str(path), mode=mode, strength=0.5)
    data.update(rewards={"curvature_color": {}}, output={"dir": str(tmp_path / "run")})
    data["cameras"]["learn"] = ["paint"]
    data["generator"]["options"]["steps"] = 2
    trainer = Trainer(parse_config(data), tmp_path / "run")
    prompt, seeds = trainer.session.draw(0)
    texture = trainer.session.paint(prompt, seeds)
    total, _ = trainer.session.score(texture, prompt)
    (-total).backward()
    lora = trainer.session.generator.trainable_parameters()
    assert sum(p.grad is not None and p.grad.abs().sum() > 0 for p in lora) >= len(lora) // 2  # the B matrices
    for name in ("paint_elevation", "paint_azimuth"):
        grad = trainer.session.angles[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


# -- reading the initial texture -----------------------------------------------------------
def test_painted_texels_come_from_alpha_else_from_the_uv_islands(tmp_path, islands):
    mesh = load_mesh("demo")
    opaque = load_initial_texture(TextureConfig(size=SIZE, init=str(_png(tmp_path / "a.png", _smooth())), mode="inpaint"), mesh)
    assert torch.equal(opaque.painted[..., 0].bool(), islands)
    alpha = torch.zeros(SIZE, SIZE)
    alpha[::2] = 1.0
    holed = load_initial_texture(TextureConfig(size=SIZE, init=str(_png(tmp_path / "b.png", _smooth(), alpha)), mode="refine"), mesh)
    assert torch.equal(holed.painted[..., 0], alpha)
    assert holed.state().weight_sum.max() == pytest.approx(0.5)  # refine: weight 1 - strength
    assert load_initial_texture(TextureConfig(size=SIZE), mesh) is None


def test_unpainted_texels_start_with_the_input_pulled_in_at_a_tiny_weight():
    image = torch.rand(SIZE, SIZE, 3)
    painted = torch.zeros(SIZE, SIZE, 1)
    painted[:, : SIZE // 2] = 1.0
    state = InitialTexture(image, painted, "inpaint").state(batch=2)
    assert state.batch == 2 and torch.equal(state.weight_sum[:, : SIZE // 2], painted[:, : SIZE // 2])
    assert torch.allclose(state.weight_sum[:, SIZE // 2 :], torch.full_like(state.weight_sum[:, SIZE // 2 :], FILL_WEIGHT))
    assert state.viewcos_cache[:, : SIZE // 2].min() == LOCKED_VIEWCOS and state.viewcos_cache[:, SIZE // 2 :].max() == 0
    texture = state.texture(min_level=4, background=1.0)
    assert texture.coverage.min() == 1.0  # no background (white) texel for the render to show
    assert torch.allclose(texture.image[0, :, : SIZE // 2], image[:, : SIZE // 2], atol=1e-6)
    assert state.paint_count(4)[:, SIZE // 2 + 1 :].max() < 0.01  # far below the trimap's 0.1: generated


def test_an_image_of_another_size_is_resized_with_a_notice(tmp_path):
    notes: list[str] = []
    path = _png(tmp_path / "big.png", _smooth(48))
    init = load_initial_texture(TextureConfig(size=SIZE, init=str(path), mode="refine"), load_mesh("demo"), notes.append)
    assert init.image.shape == (SIZE, SIZE, 3)
    assert len(notes) == 1 and "48x48" in notes[0] and f"resized to {SIZE}x{SIZE}" in notes[0] and "big.png" in notes[0]


def test_the_mesh_own_texture_is_used_for_init_mesh():
    mesh = load_mesh("demo")
    with pytest.raises(TexkitError, match="no texture of its own"):
        load_initial_texture(TextureConfig(size=SIZE, init="mesh", mode="refine"), mesh)
    mesh.texture = _smooth(64)
    notes: list[str] = []
    init = load_initial_texture(TextureConfig(size=SIZE, init="mesh", mode="refine"), mesh, notes.append)
    assert init.image.shape == (SIZE, SIZE, 3) and len(notes) == 1 and "resized" in notes[0]


@pytest.mark.parametrize(
    ("texture", "message"),
    [
        ({"init": "x.png"}, "texture.init needs texture.mode"),
        ({"mode": "refine"}, "set texture.init"),
        ({"mask": "m.png"}, "texture.mask needs texture.init"),
        ({"init": "nowhere.png", "mode": "inpaint"}, "not found"),
    ],
)
def test_incomplete_settings_are_one_line_errors(tmp_path, monkeypatch, texture, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TexkitError, match=message) as info:
        load_initial_texture(TextureConfig(size=SIZE, **texture), load_mesh("demo"))
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ConfigError) == ("nowhere" not in str(texture))


def test_strength_outside_0_1_is_a_config_error():
    with pytest.raises(ConfigError, match="texture.strength"):
        parse_config(_config(init="a.png", mode="refine", strength=1.5))


def test_generators_without_strength_are_called_as_before():
    class Old:
        def paint(self, prompt, image, depth, keep_mask, generator=None):
            return image

    class New:
        def paint(self, prompt, image, depth, keep_mask, generator=None, strength=1.0):
            return image

    assert not accepts_strength(Old()) and accepts_strength(New())


# -- a mesh written by `texkit generate` -----------------------------------------------------
def test_the_texture_of_a_generated_mesh_glb_is_refined(tmp_path, islands):
    from texkit.commands.generate import generate

    out = generate(parse_config({**_config(), "output": {"dir": str(tmp_path / "gen"), "grid_views": 1}}))
    mesh = load_mesh(str(out / "mesh.glb"))
    assert mesh.texture is not None, "the texture of the mesh.glb that texkit generate wrote was not read back"
    data = _config(init="mesh", mode="refine", strength=0.0)
    data["mesh"] = {"path": str(out / "mesh.glb")}
    refined = Session.build(parse_config(data), need_rewards=False)
    with torch.no_grad():
        texture = refined.paint("a vase", SEEDS).image
    written = torch.from_numpy(np.asarray(Image.open(out / "texture.png").convert("RGB"), dtype=np.float32) / 255)
    error = (texture - written).abs()[rasterize_uv(mesh, SIZE).mask]
    assert error.mean() < 0.02, float(error.mean())
