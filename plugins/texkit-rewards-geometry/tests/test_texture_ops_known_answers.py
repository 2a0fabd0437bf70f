"""The texture-space operations every geometry reward is built from, as known answers."""

from __future__ import annotations

import math
import types

import pytest
import torch
from texkit_rewards_geometry.texture_ops import (
    apply_reference_settings,
    colourfulness,
    erode,
    extremes_held_constant,
    gradient_magnitude,
    grey,
    minmax,
    reference_lookup_uv,
    sobel_uv,
    weighted_mean,
)


def test_grey_weights_bt601_and_the_reference_codes():
    texture = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]])
    assert grey(texture)[0].tolist() == pytest.approx([0.299, 0.587, 0.114, 1.0])
    assert grey(texture, "reference")[0].tolist() == pytest.approx([0.2989, 0.587, 0.114, 0.9999])


def test_sobel_of_ramps_in_uv_axes():
    cols = torch.arange(5.0).expand(5, 5)  # grows by 1 per column: d/du = 1
    grad = sobel_uv(cols)
    torch.testing.assert_close(grad[1:-1, 1:-1, 0], torch.ones(3, 3))  # Sobel / 8 of a unit ramp: 1 per texel
    torch.testing.assert_close(grad[..., 1], torch.zeros(5, 5))
    assert grad[2, 0, 0].item() == pytest.approx(0.5)  # replicated border: half the difference
    rows = torch.arange(5.0)[:, None].expand(5, 5)  # grows downward, so v (upward) sees it fall
    torch.testing.assert_close(sobel_uv(rows)[1:-1, 1:-1, 1], torch.full((3, 3), -1.0))
    flat = torch.ones(4, 4)
    assert sobel_uv(flat).abs().max() == 0.0
    zeros = sobel_uv(flat, padding="zeros")  # the reference's padding: the border is an edge to black
    assert zeros[1, 0, 0].item() == pytest.approx(0.5) and zeros[0, 1, 1].item() == pytest.approx(-0.5)
    assert zeros[0, 0, 0].item() == pytest.approx(3 / 8) and zeros[1:-1, 1:-1].abs().max() == 0.0


def test_gradient_magnitude_and_weighted_mean():
    grad = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert gradient_magnitude(grad, 1e-3).tolist() == pytest.approx([math.sqrt(25 + 1e-6), 1e-3])
    values, weights = torch.tensor([1.0, 3.0, 10.0]), torch.tensor([1.0, 3.0, 0.0])
    assert weighted_mean(values, weights).item() == pytest.approx(2.5)
    assert weighted_mean(values, torch.zeros(3)).item() == 0.0
    # weights summing to less than 1 (e.g. half-painted texels): still the weighted mean
    assert weighted_mean(values, torch.tensor([0.1, 0.3, 0.0])).item() == pytest.approx(2.5)


def test_minmax_over_weighted_texels_both_styles():
    values = torch.tensor([[1.0, 2.0], [3.0, 9.0]])
    weights = torch.tensor([[1.0, 1.0], [1.0, 0.0]])  # 9 has no weight: the range is [1, 3]
    torch.testing.assert_close(minmax(values, weights), torch.tensor([[0.0, 0.5], [1.0, 4.0]]))
    torch.testing.assert_close(minmax(values, weights, "add"), (values - 1.0) / (2.0 + 1e-8))
    flat = torch.full((2, 2), 5.0)
    assert minmax(flat, torch.ones(2, 2)).abs().max() == 0.0  # a zero range is clamped, no NaN
    assert minmax(values, torch.zeros(2, 2)).abs().max() == 0.0


def test_minmax_styles_differ_on_a_range_near_1e8():
    """"clamp": (x - min) / max(range, 1e-8); "add": (x - min) / (range + 1e-8) (float64 known answers)."""
    tiny = torch.tensor([0.0, 1e-8, 2e-8], dtype=torch.float64)
    weights = torch.ones(3, dtype=torch.float64)
    torch.testing.assert_close(minmax(tiny, weights, "clamp"), torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    torch.testing.assert_close(minmax(tiny, weights, "add"), torch.tensor([0.0, 1 / 3, 2 / 3], dtype=torch.float64))
    tinier = tiny / 4  # range 5e-9: "clamp" divides by 1e-8
    torch.testing.assert_close(minmax(tinier, weights, "clamp"), torch.tensor([0.0, 0.25, 0.5], dtype=torch.float64))


def test_minmax_gradient_reaches_the_extremes_unless_held_constant():
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    minmax(values, torch.ones(2, 2))[0, 1].backward()  # (x - lo) / (hi - lo) at x = 2
    torch.testing.assert_close(values.grad, torch.tensor([[-2 / 9, 1 / 3], [0.0, -1 / 9]]))
    values.grad = None
    with extremes_held_constant():
        minmax(values, torch.ones(2, 2))[0, 1].backward()
    torch.testing.assert_close(values.grad, torch.tensor([[0.0, 1 / 3], [0.0, 0.0]]))
    minmax(values.detach().requires_grad_(), torch.ones(2, 2))  # the flag is off again after the block
    values.grad = None
    minmax(values, torch.ones(2, 2))[0, 1].backward()
    assert values.grad[0, 0].item() != 0.0


def test_colourfulness_known_answer():
    # two texels: pure red and pure blue, equal weight
    texture = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    # rg = (1, 0), yb = (0.5, -1): std_rg = 0.5, std_yb = 0.75, means 0.5 and -0.25
    want = 0.5 + 0.75 + 0.3 * (0.5 + 0.25)
    assert colourfulness(texture, torch.ones(1, 2)).item() == pytest.approx(want, rel=1e-5)
    grey_texture = torch.full((1, 2, 3), 0.4)
    assert colourfulness(grey_texture, torch.ones(1, 2)).item() == pytest.approx(2e-6, abs=1e-5)


def test_reference_lookup_reads_the_mirrored_texel_centre():
    uv = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.25]])
    got = reference_lookup_uv(uv, height=5, width=3)
    want = torch.tensor([[0.5 / 3, 1 - 0.5 / 5], [2.5 / 3, 1 - 4.5 / 5], [1.5 / 3, 1 - 1.5 / 5]])
    torch.testing.assert_close(got, want)


def test_erode_takes_the_minimum_over_the_box():
    coverage = torch.ones(5, 5, 1)
    coverage[2, 2] = 0.0
    eroded = erode(coverage, 1)
    assert eroded.shape == (5, 5, 1)
    assert eroded[1:4, 1:4].max() == 0.0 and eroded[0, 0, 0] == 1.0 and eroded[..., 0].sum() == 16
    assert torch.equal(erode(coverage, 0), coverage) and erode(coverage[..., 0], 2).shape == (5, 5)
    assert erode(coverage[..., 0], 2)[0, 4] == 0.0  # the box of radius 2 around a corner reaches (2, 2)


def test_reference_settings_fill_only_unset_fields():
    import pydantic

    class Params(pydantic.BaseModel):
        compat: str = "texkit"
        padding: str = "replicate"
        epsilon: float = 1e-3

    reference = {"padding": "zeros", "epsilon": 1e-6}
    assert apply_reference_settings(Params(), reference).padding == "replicate"
    params = apply_reference_settings(Params(compat="reference", epsilon=0.5), reference)
    assert (params.padding, params.epsilon) == ("zeros", 0.5)
    assert apply_reference_settings(types.SimpleNamespace(), reference) is not None


class _CountingReward:
    """Records its prepare calls the way geometry rewards do (``_prepared = (mesh, content hash)``)."""

    def __init__(self) -> None:
        self.caches = []

    def prepare(self, mesh, cache) -> None:
        self.caches.append(cache)
        self._prepared = (mesh, mesh.content_hash)


def test_a_reward_is_prepared_once_per_mesh_content(gourd):
    import copy

    from texkit_rewards_geometry.texture_ops import ensure_prepared

    reward = _CountingReward()
    ctx = types.SimpleNamespace(mesh=gourd, geometry=None)
    ensure_prepared(reward, ctx)
    assert len(reward.caches) == 1 and reward.caches[0].root is None  # no context cache: a memory-only one
    ensure_prepared(reward, ctx)  # the same mesh again
    twin = copy.deepcopy(gourd)  # another object with the same content
    ensure_prepared(reward, types.SimpleNamespace(mesh=twin, geometry=None))
    assert len(reward.caches) == 1 and reward._prepared[0] is twin
    with torch.no_grad():
        twin.vertices.mul_(1.01)  # the same object, changed in place: still the mesh it was prepared for
    ensure_prepared(reward, types.SimpleNamespace(mesh=twin, geometry=None))
    assert len(reward.caches) == 1
    other = copy.deepcopy(gourd)
    other.vertices = other.vertices * 1.5
    ensure_prepared(reward, types.SimpleNamespace(mesh=other, geometry="the context's cache"))
    assert len(reward.caches) == 2 and reward.caches[1] == "the context's cache"
