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


# -- paint_view / paint_texture wiring, with a recording generator over a fixed render ------------------


class _FixedRenderer:
    """Returns the same hand-built render for every call (a test double of the renderer)."""

    def __init__(self, render: RenderOutput) -> None:
        self.result = render
        self.calls = 0

    def render(self, mesh, texture, camera, resolution):
        self.calls += 1
        self.texture = texture
        return self.result


class _Recorder:
    """A generator that records what it is given and paints a flat colour (a test double)."""

    resolution = 1
    name = "recorder"

    def __init__(self, colour: float = 0.25, takes_strength: bool = True) -> None:
        self.colour = colour
        self.calls: list[dict] = []
        if not takes_strength:
            self.paint = self._paint_old  # type: ignore[method-assign]

    def paint(self, prompt, image, depth, keep_mask, generator=None, strength=1.0):
        self.calls.append({"image": image, "depth": depth, "keep": keep_mask, "generator": generator, "strength": strength})
        return torch.full((depth.shape[0], *image.shape[1:]), self.colour)  # one image per sample

    def _paint_old(self, prompt, image, depth, keep_mask, generator=None):
        self.calls.append({"image": image, "depth": depth, "keep": keep_mask, "generator": generator})
        return torch.full((depth.shape[0], *image.shape[1:]), self.colour)


class _Mesh:
    device = torch.device("cpu")


MESH = _Mesh()  # the fixed renderer never reads the mesh; paint_texture asks for its device


def _scene() -> RenderOutput:
    render = _render([(0, 0), (1, 1), (2, 2), None], view_cos=[0.9, 0.8, 0.7, 0.0], depth=[2.0, 2.5, 3.0, 0.0])
    render.rgb = torch.tensor([[[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9], [0.0, 0.0, 0.0]]]])
    render.alpha = torch.tensor([[[[1.0], [0.5], [1.0], [0.0]]]])
    return render


def test_paint_view_gives_the_generator_the_render_depth_and_keep_mask():
    from texkit.view_loop import PaintSettings, paint_view

    render, gen = _scene(), _Recorder()
    state = _state({(2, 2): (1.0, 0.95)})
    settings = PaintSettings(texture_size=T, min_level=T, background=1.0, strength=0.5)
    out = paint_view(gen, _FixedRenderer(render), None, state, None, "prompt", 7, settings)
    call = gen.calls[0]
    alpha = render.alpha[..., 0]
    want_image = render.rgb * render.alpha + 1.0 * (1.0 - render.alpha)  # composited over the background
    torch.testing.assert_close(call["image"], want_image.permute(0, 3, 1, 2))
    torch.testing.assert_close(call["depth"], controlnet_depth(render))
    torch.testing.assert_close(call["keep"], trimap(render, state, K, T).permute(0, 3, 1, 2))
    assert call["strength"] == 0.5 and call["generator"].initial_seed() == 7
    assert alpha.shape == (1, 1, 4)
    # the flat colour lands in the texels the three covered pixels see, weighted by their view cosines
    assert out.weight_sum.sum().item() == pytest.approx(0.9 + 0.8 + 0.7, rel=1e-5)
    painted = out.color_sum[..., 0] / out.weight_sum[..., 0].clamp_min(1e-12)
    assert painted[out.weight_sum[..., 0] > 0].tolist() == pytest.approx([0.25] * 3)


def test_paint_view_of_a_batch_draws_one_generator_per_seed():
    from texkit.view_loop import PaintSettings, paint_view

    gen = _Recorder()
    state = TextureState.empty(T, batch=2)
    out = paint_view(gen, _FixedRenderer(_scene()), None, state, None, "prompt", [3, 4], PaintSettings(texture_size=T, min_level=T))
    call = gen.calls[0]
    assert [g.initial_seed() for g in call["generator"]] == [3, 4]
    assert call["depth"].shape[0] == call["keep"].shape[0] == 2 and out.color_sum.shape == (T, T, 6)
    assert "strength" in call and call["strength"] == 1.0  # strength 1: the keyword is not passed
    with pytest.raises(ValueError, match="1 seeds for a batch of 2 samples"):
        paint_view(gen, _FixedRenderer(_scene()), None, state, None, "prompt", [3], PaintSettings(texture_size=T, min_level=T))


def test_refining_with_a_generator_that_takes_no_strength_is_refused_in_one_line():
    from texkit.back_projection import TexturingError
    from texkit.view_loop import PaintSettings, paint_view

    old = _Recorder(takes_strength=False)
    settings = PaintSettings(texture_size=T, min_level=T, strength=0.5)
    with pytest.raises(TexturingError, match="generator 'recorder' cannot refine .*texture.mode = \"inpaint\""):
        paint_view(old, _FixedRenderer(_scene()), None, TextureState.empty(T), None, "prompt", 1, settings)
    paint_view(old, _FixedRenderer(_scene()), None, TextureState.empty(T), None, "prompt", 1, PaintSettings(texture_size=T, min_level=T))
    assert len(old.calls) == 1 and "strength" not in old.calls[0]  # strength 1: called as before


def test_accepts_strength_by_name_or_keywords_only():
    from texkit.view_loop import accepts_strength

    class Named:
        def paint(self, prompt, image, depth, keep_mask, generator=None, strength=1.0): ...

    class Keywords:
        def paint(self, prompt, image, depth, keep_mask, **options): ...

    class Old:
        def paint(self, prompt, image, depth, keep_mask, generator=None, *args): ...

    class NotInspectable:
        paint = 3

    assert accepts_strength(Named()) and accepts_strength(Keywords())
    assert not accepts_strength(Old()) and not accepts_strength(NotInspectable())


def test_paint_texture_runs_every_view_and_checks_its_initial_state():
    from texkit import Cameras
    from texkit.back_projection import TexturingError
    from texkit.view_loop import PaintSettings, paint_texture

    renderer, gen = _FixedRenderer(_scene()), _Recorder()
    cams = Cameras.from_angles([0.0, -10.0, -20.0], [0.0, 90.0, 180.0])
    seen: list[int] = []
    settings = PaintSettings(texture_size=T, min_level=T, checkpoint_views=False)
    state = paint_texture(gen, renderer, MESH, cams, ["p"] * 3, [1, 2, 3], settings, progress=seen.append)
    assert seen == [0, 1, 2] and renderer.calls == 3 and [c["generator"].initial_seed() for c in gen.calls] == [1, 2, 3]
    assert state.batch == 1 and state.weight_sum.sum().item() == pytest.approx(3 * (0.9 + 0.8 + 0.7), rel=1e-5)
    batch = paint_texture(_Recorder(), _FixedRenderer(_scene()), MESH, cams[:1], ["p"], [[5, 6]], settings)
    assert batch.batch == 2
    with pytest.raises(TexturingError, match="initial texture state of 1 sample"):
        paint_texture(gen, renderer, MESH, cams, ["p"] * 3, [[1, 2]] * 3, settings, initial=TextureState.empty(T))
    with pytest.raises(TexturingError, match="size 8"):
        paint_texture(gen, renderer, MESH, cams, ["p"] * 3, [1, 2, 3], settings, initial=TextureState.empty(8))
    started = paint_texture(_Recorder(), _FixedRenderer(_scene()), MESH, cams[:1], ["p"], [1], settings, initial=state)
    assert started.weight_sum.sum().item() == pytest.approx(4 * (0.9 + 0.8 + 0.7), rel=1e-5)


def test_checkpointed_views_give_the_same_texture_and_gradients():
    from texkit import Cameras
    from texkit.view_loop import PaintSettings, paint_texture

    cams = Cameras.from_angles([0.0, -10.0], [0.0, 90.0])
    results = []
    for checkpointed in (True, False):
        render = _scene()
        render.view_cos = render.view_cos.clone().requires_grad_(True)
        settings = PaintSettings(texture_size=T, min_level=T, checkpoint_views=checkpointed)
        state = paint_texture(_Recorder(), _FixedRenderer(render), MESH, cams, ["p"] * 2, [1, 2], settings)
        state.weight_sum.sum().backward()
        results.append((state.weight_sum.detach(), render.view_cos.grad))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def test_paint_settings_defaults_are_the_methods():
    from texkit.view_loop import PaintSettings

    s = PaintSettings()
    assert (s.texture_size, s.cos_thresh, s.sharpness, s.min_level, s.background, s.checkpoint_views, s.strength) == (512, 0.0, 100.0, 128, 1.0, True, 1.0)


@pytest.mark.parametrize("checkpointed, grad, calls", [(True, True, 4), (False, True, 2), (True, False, 2)])
def test_views_are_recomputed_in_the_backward_pass_only_when_checkpointed(checkpointed, grad, calls):
    """Per-view checkpointing renders each view again in the backward pass (memory flat in the views);
    without it, or without gradients, each view renders once."""
    from texkit import Cameras
    from texkit.view_loop import PaintSettings, paint_texture

    render = _scene()
    render.view_cos = render.view_cos.clone().requires_grad_(grad)
    renderer = _FixedRenderer(render)
    settings = PaintSettings(texture_size=T, min_level=T, checkpoint_views=checkpointed)
    with torch.set_grad_enabled(grad):
        state = paint_texture(_Recorder(), renderer, MESH, Cameras.from_angles([0.0, -10.0], [0.0, 90.0]), ["p"] * 2, [1, 2], settings)
    if grad:
        state.weight_sum.sum().backward()
    assert renderer.calls == calls


def test_a_batch_gets_the_depth_and_keep_mask_of_the_whole_view():
    """Each of B samples gets the (1, R, R) depth and keep mask of the shared geometry, for R > 1."""
    from texkit.view_loop import PaintSettings, paint_view

    flat = _scene()
    square = RenderOutput(**{f: getattr(flat, f).reshape(1, 2, 2, *getattr(flat, f).shape[3:]) for f in flat.__dataclass_fields__})
    gen = _Recorder()
    paint_view(gen, _FixedRenderer(square), MESH, TextureState.empty(T, batch=3), None, "p", [1, 2, 3], PaintSettings(texture_size=T, min_level=T))
    call = gen.calls[0]
    assert call["depth"].shape == call["keep"].shape == (3, 1, 2, 2)
    for b in range(3):
        torch.testing.assert_close(call["depth"][b], controlnet_depth(square)[0])


class _BatchRenderer:
    """Like the real renderer for a batch of B textures: B copies of one view, sample-major (the same
    surface, each sample's own colours)."""

    def __init__(self, render: RenderOutput) -> None:
        self.result = render

    def render(self, mesh, texture, camera, resolution):
        batch = texture.image.shape[0] if texture.image.dim() == 4 else 1
        fields = {f: getattr(self.result, f) for f in self.result.__dataclass_fields__}
        out = {f: torch.cat([v] * batch) if torch.is_tensor(v) else v for f, v in fields.items()}
        out["rgb"] = torch.cat([self.result.rgb * (b + 1) / batch for b in range(batch)])
        return RenderOutput(**out)


def test_a_batch_is_painted_over_the_renders_of_one_view_and_splatted_as_one_view():
    """A batch-of-3 render has 3 views of the same surface: the trimap, depth and splat use one of them,
    so every sample's colours land where a batch of one puts them."""
    from texkit.view_loop import PaintSettings, paint_view

    settings = PaintSettings(texture_size=T, min_level=T)
    one = paint_view(_Recorder(), _BatchRenderer(_scene()), MESH, TextureState.empty(T), None, "p", 1, settings)
    gen = _Recorder()
    three = paint_view(gen, _BatchRenderer(_scene()), MESH, TextureState.empty(T, batch=3), None, "p", [1, 2, 3], settings)
    call = gen.calls[0]
    assert call["depth"].shape[0] == call["keep"].shape[0] == 3
    assert three.color_sum.shape == (T, T, 9)
    torch.testing.assert_close(three.weight_sum, one.weight_sum)
    for b in range(3):
        torch.testing.assert_close(three.color_sum[..., 3 * b : 3 * b + 3], one.color_sum)
