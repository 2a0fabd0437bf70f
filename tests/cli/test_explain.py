"""``texkit explain``: what a reward asks for and what gradient ascent on the texture alone reaches.

Known answers: Adam through `optimize_texture` reaches the maximiser of a quadratic; the optimum of
``curvature_color`` is red where its ``visualize()`` target is red and blue where it is blue; the
third-party ``palette`` reward's optimum is made of palette colours; a reward that is not
differentiable gets its note and no optimum; a reward read from renders is ascended
through the renderer; usage errors are one line and exit 2.
"""

from __future__ import annotations

import json

import pytest
import torch

import texkit
from texkit.commands.cli import main
from texkit.explain import explain_reward, optimize_texture, start_logits
from texkit.imageio import read_image
from texkit.registry import get_registry


def test_optimize_texture_reaches_the_maximiser_of_a_quadratic():
    target = torch.tensor([0.9, 0.2, 0.6])

    def score(texture):
        return -((texture.image - target) ** 2).mean()

    texture, values = optimize_texture(score, size=8, steps=300, lr=0.1)
    assert texture.shape == (8, 8, 3)
    assert torch.allclose(texture, target.expand(8, 8, 3), atol=0.02)
    assert len(values) == 301 and values[-1] > values[0] and values[-1] > -1e-3


def test_start_is_grey_with_a_little_seeded_noise():
    logits = start_logits(64)
    grey = torch.sigmoid(logits)
    assert torch.equal(logits, start_logits(64))
    assert abs(float(grey.mean()) - 0.5) < 0.01 and 0.02 < float(grey.std()) < 0.08


def test_curvature_color_optimum_follows_its_target(tmp_path):
    result = explain_reward("curvature_color", "demo", tmp_path, steps=60, size=32, views=2)
    assert result.target == tmp_path / "target.png" and result.optimum == tmp_path / "optimum.png"
    assert result.final_value > result.start_value + 0.5
    record = json.loads((tmp_path / "explain.json").read_text())
    assert record["target"] == "target.png" and record["steps"] == 60 and record["notes"] == []
    for path in (result.target, result.optimum):
        assert read_image(path).shape == (32, 2 * 32 + 2, 3)  # two views side by side

    # the optimised texture is red (R > B) where visualize() asks for red, blue where it asks for blue
    from texkit.geometry import GeometryCache
    from texkit.geometry.primitives import load_mesh
    from texkit.types import RewardContext, Texture

    reward = get_registry().make_reward("curvature_color")
    mesh = load_mesh("demo")
    cache = GeometryCache(mesh)
    reward.prepare(mesh, cache)
    wanted = reward.visualize(RewardContext(mesh, Texture.constant(32), geometry=cache))
    optimum = read_image(result.optimum_texture)
    asks_red = (wanted[..., 0] > 0.9) & (wanted[..., 2] < 0.5)
    asks_blue = (wanted[..., 2] > 0.9) & (wanted[..., 0] < 0.5)
    assert asks_red.sum() > 50 and asks_blue.sum() > 5
    assert bool((optimum[..., 0] > optimum[..., 2])[asks_red].float().mean() > 0.95)
    assert bool((optimum[..., 2] > optimum[..., 0])[asks_blue].float().mean() > 0.95)


def test_third_party_palette_optimum_is_made_of_palette_colours(tmp_path, capsys):
    main(["explain", "palette", "demo", "--out", str(tmp_path), "--steps", "150", "--size", "24", "--views", "1"])
    out = capsys.readouterr()
    assert "wrote" in out.out and "palette:" in out.out and out.err == ""
    assert (tmp_path / "target.png").is_file()  # its visualize(): the nearest palette colours
    colours = get_registry().make_reward("palette").params.palette()
    optimum = read_image(tmp_path / "optimum_texture.png").reshape(-1, 3)
    nearest = torch.cdist(optimum, colours).min(dim=1).values
    assert float(nearest.max()) < 0.1


class RenderRedness(texkit.Reward):
    """A third-party-style reward read from the renders, without visualize(): mean (R - B) over the silhouettes."""

    name = "test_render_redness"
    description = "mean red minus blue of the renders"
    needs_renders = True

    def __call__(self, ctx):
        rgb, alpha = ctx.renders.rgb, ctx.renders.alpha
        return texkit.RewardOutput(value=((rgb[..., 0] - rgb[..., 2]) * alpha[..., 0]).sum() / alpha.sum())


def test_reward_on_renders_without_visualize_is_ascended_through_the_renderer(register_rewards, tmp_path, capsys):
    register_rewards(RenderRedness)
    main(["explain", "test_render_redness", "demo", "--out", str(tmp_path), "--steps", "80", "--size", "24", "--views", "2"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "test_render_redness has no visualize(): no target picture" in err
    assert not (tmp_path / "target.png").exists() and (tmp_path / "optimum.png").is_file()
    record = json.loads((tmp_path / "explain.json").read_text())
    assert record["final_value"] > 0.9 and abs(record["start_value"]) < 0.05  # red everywhere the cameras see
    views = read_image(tmp_path / "optimum.png")
    seen = (views.sum(-1) < 2.9)  # not the white background
    assert bool((views[..., 0] - views[..., 2])[seen].mean() > 0.8)


def test_non_differentiable_reward_gets_a_note_and_no_optimum(tmp_path, capsys):
    main(["explain", "jpeg_compressibility", "demo", "--out", str(tmp_path), "--size", "24", "--views", "1"])
    err = capsys.readouterr().err
    assert "not differentiable (scoring only)" in err and "Traceback" not in err
    assert not (tmp_path / "optimum.png").exists()
    assert json.loads((tmp_path / "explain.json").read_text())["final_value"] is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["explain", "no_such_reward", "--out", "x"], "no_such_reward"),
        (["explain", "curvature_color", "no_such_mesh.obj", "--out", "x"], "no_such_mesh.obj"),
        (["explain", "curvature_color", "--out", "x", "--param", "tau=oops"], "tau"),
        (["explain", "aesthetic", "--out", "x"], "weights"),
    ],
)
def test_usage_errors_are_one_line(args, says, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith("texkit: error:") and err.count("\n") == 1 and says in err, err
