"""Z-buffer rasterisation in plain PyTorch, split like nvdiffrast's primitives.

`rasterize` finds, for every pixel centre, the nearest triangle covering it (not
differentiable: a discrete choice). `barycentrics` then recomputes the perspective-correct
barycentric coordinates of each covered pixel from the clip-space vertex positions, so gradients
flow to vertex positions and through them to camera parameters. `interpolate` blends vertex
attributes with them, and `antialias` blends silhouette pixels with their background
neighbours by the analytic position of the silhouette edge (the idea of Laine et al., "Modular
Primitives for High-Performance Differentiable Rendering", SIGGRAPH Asia 2020), which gives the
silhouette gradients with respect to the geometry.

Screen convention: pixel (row, col) has its centre at x = col + 0.5, y = row + 0.5; row 0 is the
top of the image (NDC y = +1).
"""

from __future__ import annotations

import torch

__all__ = ["clip_to_screen", "rasterize", "barycentrics", "interpolate", "antialias", "edge_neighbors"]

_MAX_CANDIDATES = 2_000_000  # pixel/triangle candidate pairs processed at once (bounds memory)
_INSIDE_TOLERANCE = 1e-6  # barycentric slack: pixel centres on a shared edge belong to both triangles


def clip_to_screen(clip: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(..., 4)`` clip-space positions -> ``(..., 3)`` screen x (columns), y (rows, down), NDC z."""
    w = clip[..., 3:4]
    ndc = clip[..., :3] / w
    return torch.stack(((ndc[..., 0] + 1.0) * 0.5 * width, (1.0 - ndc[..., 1]) * 0.5 * height, ndc[..., 2]), dim=-1)


@torch.no_grad()
def rasterize(clip: torch.Tensor, faces: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Visible triangle per pixel centre (z-buffer; not differentiable: a discrete choice).

    Every triangle enumerates the pixels of its screen bounding box (``repeat_interleave``), tests
    their centres against its three edge functions and keeps the covered ones; a ``scatter_reduce``
    of depth (``amin``) per pixel then picks the nearest. All views are rasterised together, in
    chunks of at most a few million pixel/triangle candidates to bound memory.

    Args:
        clip: ``(V, 4)`` or ``(N, V, 4)`` clip-space vertex positions (one set per view).
        faces: ``(F, 3)`` long vertex indices.
        height: image size.
        width: image size.

    Returns:
        ``(H, W)`` or ``(N, H, W)`` long tensor of triangle indices, -1 where no triangle covers the
        pixel centre. Triangles with a vertex behind the camera (w <= 0), outside the depth range or
        of zero screen area are skipped. Among triangles at exactly the same depth the larger index wins.
    """
    single = clip.dim() == 2
    clip = clip.unsqueeze(0) if single else clip
    n_views, n_faces = clip.shape[0], faces.shape[0]
    device = clip.device
    screen = clip_to_screen(clip.double(), height, width)
    tri = screen[:, faces].reshape(n_views * n_faces, 3, 3)  # (N*F, corner, xyz)
    xy = tri[..., :2]
    lo = torch.floor(xy.amin(dim=1) - 0.5).clamp_min(0)
    coef, area = _plane_coefficients(tri, lo + 0.5)
    valid = (clip[:, faces][..., 3] > 1e-6).all(dim=-1).reshape(-1)
    valid &= (tri[..., 2].abs() <= 1.0 + 1e-6).all(dim=-1) & (area.abs() > 1e-12)
    hi = torch.ceil(xy.amax(dim=1) - 0.5)
    hi = torch.stack((hi[:, 0].clamp_max(width - 1), hi[:, 1].clamp_max(height - 1)), dim=-1)
    extent = (hi - lo + 1).clamp_min(0).long()
    lo = lo.long()
    view_of = torch.arange(n_views, device=device).repeat_interleave(n_faces)
    corner = view_of * (height * width) + lo[:, 1] * width + lo[:, 0]  # flat index of each box's top-left pixel
    counts = extent[:, 0] * extent[:, 1] * valid.long()
    zbuf = torch.full((n_views * height * width,), float("inf"), dtype=torch.float32, device=device)
    fbuf = torch.full((n_views * height * width,), -1, dtype=torch.long, device=device)
    tri_ids = torch.nonzero(counts > 0).squeeze(1)
    if tri_ids.numel() > 0:
        cum = torch.cumsum(counts[tri_ids], 0)
        bounds = [0]
        while bounds[-1] < tri_ids.numel():  # chunk boundaries, found on the CPU in one transfer
            base = cum[bounds[-1] - 1] if bounds[-1] > 0 else 0
            bounds.append(max(int(torch.searchsorted(cum, base + _MAX_CANDIDATES, right=True)), bounds[-1] + 1))
        for a, b in zip(bounds[:-1], bounds[1:]):
            _raster_chunk(tri_ids[a:b], coef, corner, extent, counts, zbuf, fbuf, width)
    fbuf = torch.where(fbuf >= 0, fbuf % n_faces, fbuf).view(n_views, height, width)
    return fbuf[0] if single else fbuf


def _plane_coefficients(tri: torch.Tensor, origin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Screen-space planes of barycentrics and depth of ``(T, 3, 3)`` triangles.

    Args:
        tri: ``(T, 3, 3)`` screen x, y and NDC z of the corners (float64).
        origin: ``(T, 2)`` per-triangle origin of the local pixel-centre coordinates.

    Returns:
        ``(T, 3, 4)`` float32 coefficients (a, b, c) such that, at local coordinates (x, y) measured
        from ``origin``, column k = a x + b y + c is barycentric k (k = 0..2) and column 3 the NDC
        depth; and the ``(T,)`` doubled signed areas. Local coordinates keep the float32 values small.
    """
    x, y, z = tri[..., 0] - origin[:, :1], tri[..., 1] - origin[:, 1:], tri[..., 2]
    i, j = [1, 2, 0], [2, 0, 1]  # edge opposite corner k runs from corner i[k] to corner j[k]
    a = y[:, i] - y[:, j]
    b = x[:, j] - x[:, i]
    c = x[:, i] * y[:, j] - x[:, j] * y[:, i]
    area = c.sum(-1)  # edge functions sum to the doubled signed area everywhere
    inv = torch.where(area.abs() > 1e-12, 1.0 / area, torch.zeros_like(area)).unsqueeze(-1)
    bary = torch.stack((a, b, c), dim=1) * inv.unsqueeze(1)  # (T, 3 coefficients, 3 corners)
    depth = (bary * z.unsqueeze(1)).sum(-1, keepdim=True)  # (T, 3, 1)
    return torch.cat((bary, depth), dim=-1).float(), area


def _raster_chunk(chunk, coef, corner, extent, counts, zbuf, fbuf, width) -> None:
    device = coef.device
    n = counts[chunk]
    owner = torch.repeat_interleave(chunk, n)
    offsets = torch.arange(owner.numel(), device=device) - torch.repeat_interleave(torch.cumsum(n, 0) - n, n)
    nx = extent[:, 0].index_select(0, owner)
    ly = torch.div(offsets, nx, rounding_mode="floor")
    lx = offsets - ly * nx
    plane = coef.view(coef.shape[0], 12).index_select(0, owner).view(-1, 3, 4)  # index_select: fast gathers
    values = torch.addcmul(plane[:, 2], plane[:, 0], lx.float().unsqueeze(-1))
    values = torch.addcmul(values, plane[:, 1], ly.float().unsqueeze(-1))  # (P, 4): 3 barycentrics, depth
    z = values[:, 3]
    keep = (values[:, :3] >= -_INSIDE_TOLERANCE).all(dim=-1) & (z >= -1.0) & (z <= 1.0)
    kept = torch.nonzero(keep).squeeze(1)
    owner, lx, ly, z = owner[kept], lx[kept], ly[kept], z[kept]
    pix = corner.index_select(0, owner) + ly * width + lx
    # merge with the running z-buffer: nearest depth wins; among equal depths the larger face index
    zbuf.scatter_reduce_(0, pix, z, reduce="amin")
    winner = z <= zbuf[pix]
    fbuf[pix[winner]] = -1  # pixels whose nearest surface is in this chunk forget older winners
    fbuf.scatter_reduce_(0, pix[winner], owner[winner], reduce="amax")


def _edge_barycentrics(x: torch.Tensor, y: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Screen-space barycentrics of points ``(px, py)`` in triangles with corners ``(x, y)`` of shape ``(..., 3)``."""
    x0, x1, x2 = x[..., 0], x[..., 1], x[..., 2]
    y0, y1, y2 = y[..., 0], y[..., 1], y[..., 2]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    w0 = (x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)
    w1 = (x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)
    w2 = (x0 - px) * (y1 - py) - (x1 - px) * (y0 - py)
    return torch.stack((w0, w1, w2), dim=-1) / area.unsqueeze(-1)


def barycentrics(clip: torch.Tensor, faces: torch.Tensor, face_id: torch.Tensor) -> torch.Tensor:
    """Perspective-correct barycentrics of covered pixels (differentiable in ``clip``).

    Args:
        clip: ``(V, 4)`` clip-space vertex positions.
        faces: ``(F, 3)`` vertex indices.
        face_id: ``(H, W)`` output of `rasterize`.

    Returns:
        ``(P, 3)`` barycentrics of the P covered pixels (in ``face_id >= 0`` row-major order),
        weights of the triangle's 3 corners in 3D (perspective-corrected).
    """
    height, width = face_id.shape
    rows, cols = torch.nonzero(face_id >= 0, as_tuple=True)
    tri_clip = clip[faces[face_id[rows, cols]]]  # (P, 3, 4)
    screen = clip_to_screen(tri_clip, height, width)
    b = _edge_barycentrics(screen[..., 0], screen[..., 1], cols.to(clip.dtype) + 0.5, rows.to(clip.dtype) + 0.5)
    b = b / tri_clip[..., 3]
    return b / b.sum(-1, keepdim=True)


def interpolate(attr: torch.Tensor, attr_faces: torch.Tensor, face_id: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
    """Interpolate per-corner attributes at covered pixels into a full image.

    Args:
        attr: ``(A, C)`` attribute table (positions, normals, UVs, ...).
        attr_faces: ``(F, 3)`` indices into ``attr`` per face corner.
        face_id: ``(H, W)`` visible face per pixel (-1 background).
        bary: ``(P, 3)`` from `barycentrics`.

    Returns:
        ``(H, W, C)`` image; background pixels are 0.
    """
    height, width = face_id.shape
    mask = face_id >= 0
    values = (attr[attr_faces[face_id[mask]]] * bary.unsqueeze(-1)).sum(1)
    out = torch.zeros(height * width, attr.shape[1], dtype=values.dtype, device=values.device)
    out = out.index_put((torch.nonzero(mask.reshape(-1)).squeeze(1),), values)
    return out.view(height, width, -1)


def edge_neighbors(faces: torch.Tensor) -> torch.Tensor:
    """For each face and each corner k, the face across the edge opposite corner k.

    Args:
        faces: ``(F, 3)`` vertex indices.

    Returns:
        ``(F, 3)`` long face indices, -1 on boundary edges (and on edges shared by more than two faces).
    """
    n_faces = faces.shape[0]
    a = faces[:, [1, 2, 0]]
    b = faces[:, [2, 0, 1]]
    lo, hi = torch.minimum(a, b).reshape(-1), torch.maximum(a, b).reshape(-1)
    key = lo * (int(faces.max()) + 1) + hi
    order = torch.argsort(key)
    sorted_key = key[order]
    same_next = sorted_key[1:] == sorted_key[:-1]
    neighbors = torch.full((n_faces * 3,), -1, dtype=torch.long, device=faces.device)
    first, second = order[:-1][same_next], order[1:][same_next]
    neighbors[first] = second // 3
    neighbors[second] = first // 3
    return neighbors.view(n_faces, 3)


def _find_silhouette_crossing(
    screen: torch.Tensor,
    front: torch.Tensor,
    neighbors: torch.Tensor,
    face: torch.Tensor,
    p: torch.Tensor,
    q: torch.Tensor,
    max_steps: int = 4,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Walk from the covered pixel's triangle along the segment p -> q to the silhouette edge it crosses.

    Thin triangles near a silhouette often let the segment leave the first triangle through an
    interior edge into a front-facing neighbour; the walk follows such neighbours (at most
    ``max_steps`` triangles) until the exit edge is a silhouette edge.

    Args:
        screen: ``(F, 3, 3)`` screen positions of every face's corners (no gradient needed).
        front: ``(F,)`` bool, face points towards the camera.
        neighbors: ``(F, 3)`` from `edge_neighbors`.
        face: ``(P,)`` triangle covering each p.
        p: ``(P, 2)`` screen positions of the covered and uncovered pixel centres.
        q: ``(P, 2)`` screen positions of the covered and uncovered pixel centres.

    Returns:
        ``(P,)`` face owning the crossed edge, ``(P,)`` index k of that edge (opposite corner k), and
        ``(P,)`` bool: True where a silhouette edge was found.
    """
    found = torch.zeros_like(face, dtype=torch.bool)
    edge = torch.zeros_like(face)
    active = torch.ones_like(found)
    for _ in range(max_steps):
        tri = screen[face]
        bp = _edge_barycentrics(tri[..., 0], tri[..., 1], p[:, 0], p[:, 1])
        bq = _edge_barycentrics(tri[..., 0], tri[..., 1], q[:, 0], q[:, 1])
        # the segment leaves the triangle where the first decreasing barycentric reaches 0
        leaving = bq < bp
        t_exit = torch.where(leaving, bp / (bp - bq).clamp_min(1e-12), torch.full_like(bp, float("inf")))
        k = t_exit.argmin(dim=-1)
        across = neighbors.gather(0, face.unsqueeze(-1).expand(-1, 3)).gather(1, k.unsqueeze(-1)).squeeze(-1)
        is_silhouette = (across < 0) | ~front[across.clamp_min(0)]
        newly = active & is_silhouette
        edge = torch.where(newly, k, edge)
        found |= newly
        active &= ~is_silhouette
        face = torch.where(active, across.clamp_min(0), face)
        if not active.any():
            break
    return face, edge, found


def antialias(
    color: torch.Tensor,
    face_id: torch.Tensor,
    clip: torch.Tensor,
    faces: torch.Tensor,
    neighbors: torch.Tensor | None = None,
    walk_steps: int = 4,
) -> torch.Tensor:
    """Blend silhouette pixels by the analytic edge position (differentiable in ``clip`` and ``color``).

    For every pair of horizontally or vertically adjacent pixels where exactly one is covered, the
    covered pixel's triangle edge crosses the segment between the two centres at a fraction ``t``
    (from the covered centre). The pixel on the far side of the midpoint is blended towards the
    other by ``|t - 0.5|``: the background pixel gains coverage when the edge lies past the
    midpoint, the covered pixel loses it otherwise.

    Args:
        color: ``(H, W, C)`` image to antialias (include alpha as a channel to antialias it too).
        face_id: ``(H, W)`` from `rasterize`.
        clip: ``(V, 4)`` clip-space vertex positions.
        faces: ``(F, 3)`` vertex indices.
        neighbors: ``(F, 3)`` from `edge_neighbors` (computed when None). Only silhouette
            edges (boundary edges, or edges whose other face points away from the camera) are blended.
        walk_steps: how many triangles `_find_silhouette_crossing` may visit along each pixel
            pair to reach the silhouette edge (1 = only the covered pixel's own triangle, as nvdiffrast).

    Returns:
        ``(H, W, C)`` antialiased image.
    """
    height, width = face_id.shape
    if neighbors is None:
        neighbors = edge_neighbors(faces)
    with torch.no_grad():
        screen_all = clip_to_screen(clip[faces], height, width)
        sx, sy = screen_all[..., 0], screen_all[..., 1]
        signed_area = (sx[:, 1] - sx[:, 0]) * (sy[:, 2] - sy[:, 0]) - (sx[:, 2] - sx[:, 0]) * (sy[:, 1] - sy[:, 0])
        front = signed_area < 0  # counter-clockwise in world space is clockwise with y pointing down
    covered = face_id >= 0
    out = color
    for dy, dx in ((0, 1), (1, 0)):
        a = covered[: height - dy, : width - dx]
        b = covered[dy:, dx:]
        edge = a ^ b
        if not edge.any():
            continue
        rows, cols = torch.nonzero(edge, as_tuple=True)
        a_in = a[rows, cols]
        # p = covered pixel, q = uncovered neighbour
        pr = torch.where(a_in, rows, rows + dy)
        pc = torch.where(a_in, cols, cols + dx)
        qr = torch.where(a_in, rows + dy, rows)
        qc = torch.where(a_in, cols + dx, cols)
        pxy = torch.stack((pc, pr), -1).to(clip.dtype) + 0.5
        qxy = torch.stack((qc, qr), -1).to(clip.dtype) + 0.5
        face, kk, silhouette = _find_silhouette_crossing(
            screen_all.detach(), front, neighbors, face_id[pr, pc], pxy, qxy, max(walk_steps, 1)
        )
        screen = clip_to_screen(clip[faces[face]], height, width)
        bp = _edge_barycentrics(screen[..., 0], screen[..., 1], pxy[:, 0], pxy[:, 1])
        bq = _edge_barycentrics(screen[..., 0], screen[..., 1], qxy[:, 0], qxy[:, 1])
        bp_k = bp.gather(-1, kk.unsqueeze(-1)).squeeze(-1)
        bq_k = bq.gather(-1, kk.unsqueeze(-1)).squeeze(-1)
        t = (bp_k / (bp_k - bq_k).clamp_min(1e-12)).clamp(0.0, 1.0)
        # like nvdiffrast, a mostly vertical edge is resolved by horizontal pairs and vice versa
        rows_idx = torch.arange(kk.numel(), device=kk.device)
        e0 = screen[rows_idx, (kk + 1) % 3, :2].detach()
        e1 = screen[rows_idx, (kk + 2) % 3, :2].detach()
        edge_dx, edge_dy = (e1 - e0).abs().unbind(-1)
        silhouette &= (edge_dy >= edge_dx) if dx == 1 else (edge_dx > edge_dy)
        t = torch.where(silhouette, t, torch.full_like(t, 0.5))  # 0.5 = no blending
        cp = out[pr, pc]
        cq = out[qr, qc]
        grow = (t - 0.5).clamp_min(0).unsqueeze(-1)  # background pixel gains coverage
        shrink = (0.5 - t).clamp_min(0).unsqueeze(-1)  # covered pixel loses coverage
        new_q = cq + (cp - cq) * grow
        new_p = cp + (cq - cp) * shrink
        flat = out.reshape(height * width, -1)
        idx_q = qr * width + qc
        idx_p = pr * width + pc
        delta = torch.zeros_like(flat)
        delta = delta.index_add(0, idx_q, new_q - cq).index_add(0, idx_p, new_p - cp)
        out = (flat + delta).view(height, width, -1)
    return out
