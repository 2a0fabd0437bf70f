"""The palette reward: known answers, coverage weighting, gradcheck, registration, public API only."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch
from texkit_reward_palette.reward import PaletteReward, palette_agreement, parse_color, soft_min_distance

import texkit

SOURCE = Path(__file__).resolve().parents[1] / "src" / "texkit_reward_palette"


def _mesh() -> texkit.Mesh:
    return texkit.Mesh.from_arrays(
        [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], [[0, 1, 2], [0, 2, 3]], uvs=[[0, 0], [1, 0], [1, 1], [0, 1]]
    )


def _score(reward: PaletteReward, image: torch.Tensor, coverage: torch.Tensor | None = None) -> texkit.RewardOutput:
    return reward(texkit.RewardContext(mesh=_mesh(), texture=texkit.Texture(image, coverage)))


def test_texture_made_of_palette_colours_scores_zero():
    red, blue = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)
    image = torch.tensor([[red, blue], [blue, red]])
    out = _score(PaletteReward(colors=[red, blue], temperature=0.01), image)
    # the other colour is at squared distance 2, so its term is exp(-200): s = 0 to double precision
    assert float(out.value) == pytest.approx(0.0, abs=1e-12)
    assert out.metrics["mean_nearest_distance"] == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(out.images["palette_map"], image)


def test_one_colour_palette_gives_minus_mean_squared_distance():
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(6, 5, 3, generator=gen)
    target = (0.2, 0.5, 0.9)
    expected = -((image - torch.tensor(target)) ** 2).sum(-1).mean()
    torch.testing.assert_close(_score(PaletteReward(colors=[target], temperature=0.3), image).value, expected)


def test_equidistant_colours_give_the_soft_min_lower_bound():
    """Two palette colours at the same squared distance d: s = d - tau ln 2."""
    grey = torch.full((1, 1, 3), 0.5)
    tau = 0.05
    value = _score(PaletteReward(colors=[(0.3, 0.5, 0.5), (0.7, 0.5, 0.5)], temperature=tau), grey).value
    assert float(value) == pytest.approx(-(0.04 - tau * math.log(2)), rel=1e-6)


def test_soft_min_lies_between_its_bounds_and_tends_to_the_hard_minimum():
    gen = torch.Generator().manual_seed(1)
    colors, palette = torch.rand(50, 3, generator=gen, dtype=torch.float64), torch.rand(4, 3, generator=gen, dtype=torch.float64)
    hard = torch.cdist(colors, palette).pow(2).min(-1).values
    for tau in (1.0, 0.1, 0.01):
        soft = soft_min_distance(colors, palette, tau)
        assert torch.all(soft <= hard + 1e-12) and torch.all(soft >= hard - tau * math.log(4) - 1e-12)
    torch.testing.assert_close(soft_min_distance(colors, palette, 1e-4), hard, atol=1e-3, rtol=0)


def test_uncovered_texels_do_not_count_and_coverage_weights():
    palette_colour = (0.0, 1.0, 0.0)
    image = torch.tensor([[palette_colour, (1.0, 0.0, 1.0)]])
    reward = PaletteReward(colors=[palette_colour])
    assert float(_score(reward, image, torch.tensor([[[1.0], [0.0]]])).value) == pytest.approx(0.0)
    # weights 1 and 0.5 on squared distances 0 and 3: -(0 + 1.5) / 1.5
    assert float(_score(reward, image, torch.tensor([[[1.0], [0.5]]])).value) == pytest.approx(-1.0)
    with pytest.raises(texkit.RewardError, match="no covered texels"):
        _score(reward, image, torch.zeros(1, 2, 1))


def test_gradcheck_wrt_texture_and_coverage():
    gen = torch.Generator().manual_seed(2)
    image = torch.rand(3, 4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    coverage = (torch.rand(3, 4, 1, generator=gen, dtype=torch.float64) + 0.1).requires_grad_(True)
    palette = torch.rand(3, 3, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda i, c: palette_agreement(i, c, palette, 0.05), (image, coverage))


def test_gradient_pulls_texels_towards_the_palette():
    image = torch.full((2, 2, 3), 0.6, requires_grad=True)
    _score(PaletteReward(colors=[(1.0, 1.0, 1.0)]), image).value.backward()
    assert torch.all(image.grad > 0)  # ascending the reward moves the grey towards white


def test_parameters_are_validated():
    assert parse_color("#ff8000") == pytest.approx((1.0, 128 / 255, 0.0))
    with pytest.raises(texkit.ConfigError, match="colors"):
        PaletteReward(colors=[(1.2, 0.0, 0.0)])
    with pytest.raises(texkit.ConfigError, match="colors"):
        PaletteReward(colors=["#12345"])
    with pytest.raises(texkit.ConfigError, match="colors"):
        PaletteReward(colors=[])
    with pytest.raises(texkit.ConfigError, match="temperature"):
        PaletteReward(temperature=0.0)
    with pytest.raises(texkit.ConfigError, match="colours"):
        PaletteReward(colours=["#000000"])


def test_registered_through_its_entry_point(monkeypatch):
    monkeypatch.setenv("TEXKIT_PLUGINS", "texkit-reward-palette")
    registry = texkit.Registry()
    assert registry.names("rewards") == ["palette"]
    assert registry.get("rewards", "palette").distribution == "texkit-reward-palette"
    reward = registry.make_reward("palette", {"colors": ["#ffffff"], "temperature": 0.1})
    assert float(_score(reward, torch.ones(2, 2, 3)).value) == pytest.approx(0.0, abs=1e-9)


def test_uses_only_the_public_texkit_api():
    """The package imports only ``texkit`` itself and reads only attributes listed in ``texkit.__all__``."""
    public = set(texkit.__all__)
    for path in SOURCE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "texkit":
                assert node.module == "texkit" and all(a.name in public for a in node.names), f"{path.name}: {ast.dump(node)}"
            if isinstance(node, ast.Import):
                assert all(a.name == "texkit" or not a.name.startswith("texkit.") for a in node.names), path.name
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "texkit":
                assert node.attr in public, f"{path.name}: texkit.{node.attr} is not public"


def test_visualize_replaces_each_texel_by_its_nearest_palette_colour():
    reward = PaletteReward(colors=["#ff0000", "#0000ff"])
    image = torch.tensor([[[0.9, 0.1, 0.2], [0.1, 0.0, 0.7]], [[0.6, 0.5, 0.4], [0.2, 0.2, 0.3]]])
    ctx = texkit.RewardContext(mesh=None, texture=texkit.Texture(image))
    picture = reward.visualize(ctx)
    red, blue = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    assert torch.equal(picture, torch.stack((torch.stack((red, blue)), torch.stack((red, blue)))))
    assert float(reward(texkit.RewardContext(mesh=None, texture=texkit.Texture(picture))).value) >= 0  # its maximum
