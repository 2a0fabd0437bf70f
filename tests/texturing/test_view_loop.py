"""The view loop's masks and conditions on hand-built renders: the soft trimap's three regions and the
depth ControlNet's depth encoding (known answers from the formulas of METHOD.md sec. 2)."""

from __future__ import annotations

import math

import pytest
import torch

from texkit.back_projection import TextureState
from texkit.types import RenderOutput
from texkit.uv import texel_centers_uv
from texkit.view_loop import controlnet_depth, trimap

K = 100.0  # the method's trimap sharpness
T = 4  # texture size; min_level = T: no hole filling, the maps are read texel by texel


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _render(texels: list[tuple[int, int] | None], view_cos: list[float], depth: list[float] | None = None) -> RenderOutput:
    """A 1 x 1 x P render: pixel p sees the centre of texel ``texels[p]`` (None: background)."""
    centres = texel_centers_uv(T, T)
    uv = torch.stack([centres[t] if t is not None else torch.zeros(2) for t in texels])[None, None]
    face = torch.tensor([[[0 if t is not None else -1 for t in texels]]])
    cos = torch.tensor(view_cos, dtype=torch.float32)[None, None, :, None] * (face >= 0).unsqueeze(-1)
    d = torch.tensor(depth if depth is not None else [2.0] * len(texels), dtype=torch.float32)[None, None, :, None] * (face >= 0).unsqueeze(-1)
    n = len(texels)
    return RenderOutput(
        rgb=torch.zeros(1, 1, n, 3), alpha=(face >= 0).float().unsqueeze(-1), depth=d, normal=torch.zeros(1, 1, n, 3), uv=uv, face_id=face, view_cos=cos
    )


def _state(painted: dict[tuple[int, int], tuple[float, float]]) -> TextureState:
    """Texels ``{(row, col): (paint count, best view cosine so far)}``; the others never painted."""
    state = TextureState.empty(T)
    for (row, col), (count, cache) in painted.items():
        state.weight_sum[row, col, 0] = count
        state.color_sum[row, col] = 0.5 * count
        state.viewcos_cache[row, col, 0] = cache
    return state


def _keep(count: float, cache: float, view_cos: float, k: float = K) -> float:
    """keep = (1 - generate)(1 - refine) with the method's generate and refine (METHOD.md sec. 2)."""
    generate = 1.0 - _sigmoid(k * (count - 0.1))
    refine = _sigmoid(k * (view_cos - cache)) * (1.0 - generate)
    return (1.0 - generate) * (1.0 - refine)


def test_trimap_generates_unpainted_refines_better_seen_and_keeps_the_rest():
    # texel (0, 0) never painted; (1, 1) painted from an oblique view (cos 0.5); (2, 2) painted frontally (cos 0.9)
    state = _state({(1, 1): (1.0, 0.5), (2, 2): (1.0, 0.9)})
    render = _render([(0, 0), (1, 1), (2, 2), None], view_cos=[0.7, 0.7, 0.7, 0.7])
    keep = trimap(render, state, K, min_level=T)
    assert keep.shape == (1, 1, 4, 1)
    generate_px, refine_px, keep_px, background = keep[0, 0, :, 0].tolist()
    assert generate_px < 1e-3  # never painted: generated, not kept
    assert refine_px < 1e-3  # seen more frontally now (0.7 > 0.5): refined, not kept
    assert keep_px > 0.999  # seen less frontally now (0.7 < 0.9): kept
    assert background == 0.0


def test_trimap_values_follow_the_method_formula_with_sharpness_k():
    # moderate arguments of the sigmoids, where the exact k, the 0.1 count offset and the sign show
    painted = {(0, 1): (0.12, 0.3), (1, 2): (1.0, 0.69), (3, 3): (1.0, 0.71), (2, 0): (0.09, 0.2)}
    state = _state(painted)
    texels = list(painted)
    cos = 0.7
    keep = trimap(_render(texels, [cos] * len(texels)), state, K, min_level=T)[0, 0, :, 0]
    want = torch.tensor([_keep(count, cache, cos) for count, cache in painted.values()])
    torch.testing.assert_close(keep, want, rtol=1e-4, atol=1e-6)
    # a softer trimap (k = 10) is another known answer, not the same numbers
    soft = trimap(_render(texels, [cos] * len(texels)), state, 10.0, min_level=T)[0, 0, :, 0]
    torch.testing.assert_close(soft, torch.tensor([_keep(c, v, cos, k=10.0) for c, v in painted.values()]), rtol=1e-4, atol=1e-6)


def test_trimap_reads_the_maps_with_hole_filling_from_min_level():
    # an 8 x 8 state painted everywhere except texel (0, 0): with min_level 4 the hole takes its
    # count and cache from the coarser level, so the pixel there is kept like its neighbours
    size = 8
    state = TextureState.empty(size)
    state.weight_sum[:] = 1.0
    state.color_sum[:] = 0.5
    state.viewcos_cache[:] = 0.9
    state.weight_sum[0, 0] = 0.0
    state.viewcos_cache[0, 0] = 0.0
    centre = texel_centers_uv(size, size)[0, 0]
    render = RenderOutput(
        rgb=torch.zeros(1, 1, 1, 3), alpha=torch.ones(1, 1, 1, 1), depth=torch.ones(1, 1, 1, 1), normal=torch.zeros(1, 1, 1, 3),
        uv=centre[None, None, None], face_id=torch.zeros(1, 1, 1, dtype=torch.long), view_cos=torch.full((1, 1, 1, 1), 0.5),
    )
    filled = trimap(render, state, K, min_level=4)
    unfilled = trimap(render, state, K, min_level=size)
    assert filled.item() > 0.99 and unfilled.item() < 1e-3


def test_controlnet_depth_two_planes_near_is_bright():
    # left half of each row on a plane at depth 2, right half on a plane at depth 3, last pixel background
    texels = [(0, 0)] * 7
    depth = [2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 0.0]
    render = _render(texels[:6] + [None], [1.0] * 7, depth)
    encoded = controlnet_depth(render)
    assert encoded.shape == (1, 1, 1, 7)  # channels first, as the ControlNet condition
    values = encoded[0, 0, 0].tolist()
    assert values[:3] == pytest.approx([1.0] * 3)  # nearest plane: white (the MiDaS-like convention)
    assert values[3:6] == pytest.approx([0.2] * 3)  # farthest plane: 0.2
    assert values[6] == 0.0  # background: black


def test_controlnet_depth_is_linear_between_near_and_far_per_view():
    # two views of different depth ranges: each is normalised on its own
    render = _render([(0, 0)] * 3, [1.0] * 3, [1.0, 1.5, 2.0])
    other = _render([(0, 0)] * 3, [1.0] * 3, [4.0, 7.0, 10.0])
    both = RenderOutput(**{f: torch.cat([getattr(render, f), getattr(other, f)]) for f in render.__dataclass_fields__})
    encoded = controlnet_depth(both)[:, 0, 0]
    torch.testing.assert_close(encoded, torch.tensor([[1.0, 0.6, 0.2], [1.0, 0.6, 0.2]]))


def test_controlnet_depth_of_a_flat_view_is_white_not_nan():
    render = _render([(0, 0)] * 2 + [None], [1.0] * 3, [2.0, 2.0, 0.0])
    encoded = controlnet_depth(render)[0, 0, 0]
    assert encoded.tolist() == pytest.approx([1.0, 1.0, 0.0])


def test_controlnet_depth_on_a_rendered_two_plane_scene(torch_renderer):
    """Two squares facing the camera, the left one nearer: the nearer one is the brighter in the condition."""
    from texkit import Cameras, Mesh
    from texkit.types import Texture

    def square(x0: float, z: float) -> tuple[list[list[float]], list[list[int]]]:
        return [[x0, -0.4, z], [x0 + 0.8, -0.4, z], [x0 + 0.8, 0.4, z], [x0, 0.4, z]], [[0, 1, 2], [0, 2, 3]]

    (va, fa), (vb, fb) = square(-0.9, 0.5), square(0.1, -0.5)
    verts = torch.tensor(va + vb)
    faces = torch.tensor(fa + [[i + 4 for i in f] for f in fb])
    uvs = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]] * 2)
    mesh = Mesh.from_arrays(verts, faces, uvs, faces, normalize="none")
    texture = Texture(torch.full((8, 8, 3), 0.5), torch.ones(8, 8, 1))
    render = torch_renderer.render(mesh, texture, Cameras.from_angles([0.0], [0.0], radius=3.0), 32)
    encoded = controlnet_depth(render)[0, 0]
    near = encoded[:, :16][render.mask[0, :, :16, 0]]
    far = encoded[:, 16:][render.mask[0, :, 16:, 0]]
    assert near.numel() > 20 and far.numel() > 20
    assert near.mean() > 0.95 and far.mean() < 0.25  # near plane 1, far plane 0.2
    assert encoded[~render.mask[0, ..., 0]].abs().max() == 0.0
