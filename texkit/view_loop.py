"""The differentiable view loop: render -> paint -> back-project, view after view (METHOD.md sec. 2).

For each painting camera the current texture is rendered; the method's soft trimap (steep
sigmoids, k = 100) splits the view into pixels to generate (never painted), to refine (seen more
frontally now than before) and to keep; the generator paints the view conditioned on the render,
its depth and the keep mask; the painted view is back-projected into the texture. Everything
stays differentiable, and with ``checkpoint_views`` each view is a gradient checkpoint whose
recomputation receives exactly the tensors of the forward pass (texture sums, camera angles) and
re-creates its random numbers from the view's seed, so memory does not grow with the number of
views and the recomputed graph is the one that ran.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from texkit.back_projection import BackProjection, TextureState, TexturingError, back_project
from texkit.batching import stack_samples
from texkit.cameras import Cameras
from texkit.geometry.mesh import Mesh
from texkit.types import Generator, PromptEmbedding, Renderer, RenderOutput
from texkit.uv import sample_texture

__all__ = ["PaintSettings", "trimap", "controlnet_depth", "paint_view", "paint_texture", "accepts_strength", "cannot_refine"]


@dataclass
class PaintSettings:
    """Settings of the view loop.

    Attributes:
        texture_size: UV texture size T.
        cos_thresh: back-projection view-cosine threshold.
        sharpness: k of the trimap sigmoids.
        min_level: coarsest mip level of the hole filling.
        background: grey level behind the object and of unpainted texels.
        checkpoint_views: gradient checkpoint around each painted view.
        strength: SDEdit strength in [0, 1] every view is painted with (``texture.mode =
            "refine"``); 1 paints from pure noise and calls the generator without it.
    """

    texture_size: int = 512
    cos_thresh: float = 0.0
    sharpness: float = 100.0
    min_level: int = 128
    background: float = 1.0
    checkpoint_views: bool = True
    strength: float = 1.0


def accepts_strength(generator: Any) -> bool:
    """Whether ``generator.paint`` takes the optional ``strength`` keyword (refinement, SDEdit).

    The keyword is optional in the `Generator` protocol; generators written before it existed are
    only ever called without it.
    """
    try:
        params = inspect.signature(generator.paint).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "strength" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def cannot_refine(name: str) -> str:
    """The one-line message for refinement asked of generator ``name`` whose ``paint`` takes no ``strength``."""
    return (
        f"generator '{name}' cannot refine (its paint takes no strength); use texture.mode = \"inpaint\", "
        "texture.strength = 1 or another generator"
    )


def trimap(render: RenderOutput, state: TextureState, sharpness: float, min_level: int) -> torch.Tensor:
    """The keep mask of the method's soft trimap.

    generate = 1 - sigmoid(k (count - 0.1)); refine = sigmoid(k (viewcos - viewcos_cache)) (1 - generate);
    keep = (1 - generate)(1 - refine), with count and viewcos_cache read from the texture state
    through the render's UVs.

    Returns:
        ``(N, R, R, 1)`` keep mask in [0, 1] (0 on background pixels).
    """
    count = sample_texture(state.paint_count(min_level), render.uv) * render.mask
    cache = sample_texture(state.viewcos_map(min_level), render.uv)
    generate = 1.0 - torch.sigmoid(sharpness * (count - 0.1))
    refine = torch.sigmoid(sharpness * (render.view_cos - cache)) * (1.0 - generate)
    return (1.0 - generate) * (1.0 - refine) * render.mask


def controlnet_depth(render: RenderOutput) -> torch.Tensor:
    """Depth for a depth ControlNet: ``(N, 1, R, R)`` in [0, 1], 1 at the nearest object point,
    0.2 at the farthest, 0 on the background (the MiDaS-like convention depth ControlNets use)."""
    mask = render.mask
    depth = render.depth
    inf = torch.finfo(depth.dtype).max
    near = torch.where(mask, depth, torch.full_like(depth, inf)).amin(dim=(1, 2, 3), keepdim=True)
    far = torch.where(mask, depth, torch.full_like(depth, -inf)).amax(dim=(1, 2, 3), keepdim=True)
    scaled = 1.0 - 0.8 * (depth - near) / (far - near).clamp_min(1e-6)
    return (scaled * mask).permute(0, 3, 1, 2)


def paint_view(
    generator: Generator,
    renderer: Renderer,
    mesh: Mesh,
    state: TextureState,
    camera: Cameras,
    prompt: PromptEmbedding,
    seed: int | Sequence[int],
    settings: PaintSettings,
) -> BackProjection:
    """Paint one view of each of the state's B samples over its texture and back-project them.

    The B samples share the mesh and the camera, so the render's geometry, the trimap and the
    splat positions are computed once; the generator paints B images in one call (2B with CFG).

    Args:
        camera: one camera.
        prompt: the encoded prompts of this view, ``(B, L, D)`` (or batch 1, broadcast).
        seed: one seed per sample (an int for B = 1); sample b's noise comes from a fresh
            ``torch.Generator`` seeded with ``seed[b]``, so it equals a batch-1 run with that seed.
        settings: the view loop's settings (with ``strength != 1`` the generator is called with
            ``strength=settings.strength``).

    Returns:
        The splatted sums, colours stacked along channels ``(T, T, 3B)``.

    Raises:
        TexturingError: ``settings.strength != 1`` for a generator whose ``paint`` takes no ``strength``.
    """
    seeds = [seed] if isinstance(seed, int) else list(seed)
    batch = state.batch
    if len(seeds) != batch:
        raise ValueError(f"{len(seeds)} seeds for a batch of {batch} samples; give one seed per sample")
    texture = state.texture(settings.min_level, settings.background)
    render = renderer.render(mesh, texture, camera, generator.resolution)  # (B, R, R, .) sample-major
    geometry = render[0:1]  # every sample sees the same surface
    keep = trimap(geometry, state, settings.sharpness, settings.min_level).permute(0, 3, 1, 2)
    image = render.rgb * render.alpha + settings.background * (1.0 - render.alpha)
    rngs = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
    extra: dict[str, float] = {}
    if settings.strength != 1.0:  # only then: third-party generators may not take the keyword
        if not accepts_strength(generator):
            raise TexturingError(cannot_refine(getattr(generator, "name", type(generator).__name__)))
        extra["strength"] = settings.strength
    painted = generator.paint(
        prompt,
        image.permute(0, 3, 1, 2),
        controlnet_depth(geometry).expand(batch, -1, -1, -1),
        keep.expand(batch, -1, -1, -1),
        generator=rngs[0] if batch == 1 else rngs,
        **extra,
    )
    stacked, _ = stack_samples(painted.permute(0, 2, 3, 1).to(image.dtype))  # (R, R, 3B)
    return back_project(geometry, stacked.unsqueeze(0), state.size, settings.cos_thresh)


def paint_texture(
    generator: Generator,
    renderer: Renderer,
    mesh: Mesh,
    cameras: Cameras,
    prompts: list[PromptEmbedding],
    seeds: Sequence[int] | Sequence[Sequence[int]],
    settings: PaintSettings,
    progress: Any = None,
    initial: TextureState | None = None,
) -> TextureState:
    """Run the view loop over ``cameras`` from an empty texture (or ``initial``), for B samples at once.

    Args:
        cameras: N painting cameras (may require grad), shared by the samples.
        prompts: N encoded prompts (one per view), each ``(B, L, D)``.
        seeds: N seeds (B = 1) or N lists of B seeds (``seeds[view][sample]``).
        progress: optional callable ``progress(view_index)`` after each view.
        initial: the state to start from (an existing texture, `texkit.initial_texture`), of
            B samples and size ``settings.texture_size``; None: an empty texture.

    Returns:
        The final `TextureState` of B samples (differentiable in
        the LoRA weights and cameras).

    Raises:
        TexturingError: ``initial`` has another batch or size.
    """
    first = seeds[0] if len(seeds) else 0
    batch = 1 if isinstance(first, int) else len(first)
    if initial is None:
        state = TextureState.empty(settings.texture_size, device=mesh.device, batch=batch)
    elif initial.batch != batch or initial.size != settings.texture_size:
        raise TexturingError(
            f"initial texture state of {initial.batch} sample(s), size {initial.size}, for a loop of {batch} sample(s), "
            f"size {settings.texture_size}; build it with TextureState.from_texture(..., batch={batch}) at that size"
        )
    else:
        state = initial
    for k in range(len(cameras)):
        camera = cameras[k]

        def one_view(color_sum, weight_sum, viewcos_cache, azimuth, elevation, k=k, camera=camera):
            view_state = TextureState(color_sum, weight_sum, viewcos_cache)
            cam = Cameras(azimuth, elevation, camera.radius, camera.fov)
            bp = paint_view(generator, renderer, mesh, view_state, cam, prompts[k], seeds[k], settings)
            return bp.color_sum, bp.weight_sum, bp.viewcos_max

        inputs = (state.color_sum, state.weight_sum, state.viewcos_cache, camera.azimuth, camera.elevation)
        if settings.checkpoint_views and torch.is_grad_enabled():
            outs = checkpoint(one_view, *inputs, use_reentrant=False)
        else:
            outs = one_view(*inputs)
        state = state.accumulate(BackProjection(*outs))
        if progress is not None:
            progress(k)
    return state
