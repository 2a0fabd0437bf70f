"""A mesh file's own texture (`Mesh.texture`): GLB base colour, OBJ map_Kd, constant colours,
several materials packed into one atlas, and the ways a file's texture can be missing.

Every fixture is built in code. The main check is "what a viewer shows": for each face of the
loaded mesh, the texture texkit read, sampled at the loaded UVs, equals the file's own texture
sampled at the file's own UVs (OBJ/glTF convention: v upward, image row 0 at the top), at points
inside the face; faces are matched by position, since loading merges and reorders vertices.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image
from scipy.spatial import cKDTree

from texkit.cameras import Cameras
from texkit.geometry.mesh import Mesh
from texkit.geometry.mesh_texture import CONSTANT_SIZE, TextureProblem, linear_to_srgb, srgb_to_linear
from texkit.geometry.primitives import load_mesh
from texkit.types import Texture
from texkit.uv import sample_texture

BARY = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.2, 0.2, 0.6]], dtype=torch.float64)

# a 3 x 2 grid of quads (12 triangles) in the z = 0 plane, its UVs an asymmetric layout inside (0.1, 0.9)
GRID_V = np.array([[x, y, 0.0] for y in range(3) for x in range(4)], dtype=np.float64)
GRID_F = np.array([f for y in range(2) for x in range(3) for f in ([y * 4 + x, y * 4 + x + 1, y * 4 + x + 5], [y * 4 + x, y * 4 + x + 5, y * 4 + x + 4])])
GRID_UV = np.stack((0.1 + 0.8 * (GRID_V[:, 0] / 3) ** 1.3, 0.1 + 0.8 * GRID_V[:, 1] / 2 * 0.9 + 0.02 * GRID_V[:, 0]), axis=-1)


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """An asymmetric ``(h, w, 3)`` uint8 image (random texels: any flip or shift shows)."""
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _write_obj(folder: Path, name: str, verts: np.ndarray, faces: np.ndarray, uvs: np.ndarray | None, mtl: str | None, groups: list[tuple[str, np.ndarray]] | None = None) -> Path:
    """An OBJ (1-based, ``f v/vt``); ``groups``: ``[(material, face indices)]`` with ``usemtl`` lines."""
    lines = [f"mtllib {mtl}"] if mtl else []
    lines += [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in verts]
    if uvs is not None:
        lines += [f"vt {u:.9g} {v:.9g}" for u, v in uvs]
    for material, idx in groups or [("m" if mtl else None, np.arange(len(faces)))]:
        if material is not None:
            lines.append(f"usemtl {material}")
        for f in faces[idx]:
            lines.append("f " + " ".join(f"{i + 1}/{i + 1}" if uvs is not None else f"{i + 1}" for i in f))
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _textured_obj(folder: Path, image: np.ndarray, mode: str = "RGB") -> Path:
    """The grid as OBJ + MTL (``map_Kd``) + PNG."""
    Image.fromarray(image).convert(mode).save(folder / "grid.png")
    (folder / "grid.mtl").write_text("newmtl m\nKd 1 1 1\nmap_Kd grid.png\n")
    return _write_obj(folder, "grid.obj", GRID_V, GRID_F, GRID_UV, "grid.mtl")


def _glb(path: Path, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray | None, trimesh.visual.material.Material | None]]) -> Path:
    """A GLB of one node per part ``(vertices, faces, uvs, material)`` written by trimesh."""
    meshes = []
    for verts, faces, uvs, material in parts:
        visual = trimesh.visual.TextureVisuals(uv=uvs, material=material) if uvs is not None or material is not None else None
        meshes.append(trimesh.Trimesh(verts, faces, visual=visual, process=False))
    scene = trimesh.Scene(meshes)
    path.write_bytes(scene.export(file_type="glb"))
    return path


def _to_source(mesh: Mesh) -> np.ndarray:
    """``(F, 3, 3)`` face corner positions in the file's coordinates."""
    verts = mesh.vertices.double().numpy() * mesh.source_scale + np.asarray(mesh.source_offset)
    return verts[mesh.faces.numpy()]


def _assert_looks_the_same(
    mesh: Mesh,
    corners: np.ndarray,
    uvs: np.ndarray,
    reference: Callable[[np.ndarray, torch.Tensor], torch.Tensor],
    atol: float = 1e-4,
) -> None:
    """At points inside every face, ``mesh.texture`` at the loaded UVs equals the reference colours.

    Args:
        corners: ``(F0, 3, 3)`` the file's face corners (file coordinates).
        uvs: ``(F0, 3, 2)`` the file's UVs of those corners.
        reference: ``(face indices (N,), uv (N, P, 2)) -> (N, P, 3)`` colours of the file's own texture.
    """
    assert mesh.texture is not None
    loaded = _to_source(mesh)
    assert len(loaded) == len(corners)
    _, match = cKDTree(corners.mean(axis=1)).query(loaded.mean(axis=1))
    assert len(set(match.tolist())) == len(match), "faces do not match one to one"
    # corner k of loaded face f is corner perm[f, k] of the file's face match[f]
    dist = np.linalg.norm(loaded[:, :, None, :] - corners[match][:, None, :, :], axis=-1)
    perm = dist.argmin(axis=-1)
    assert dist.min(axis=-1).max() < 1e-5
    ref_uv = torch.from_numpy(np.take_along_axis(uvs[match], perm[..., None], axis=1))  # (F, 3, 2)
    our_uv = mesh.uvs.double()[mesh.uv_faces]
    points = lambda tri: torch.einsum("pk,fkc->fpc", BARY, tri)  # noqa: E731 - (F, P, 2)
    ours = sample_texture(mesh.texture.double(), points(our_uv))
    theirs = reference(match, points(ref_uv))
    assert torch.allclose(ours, theirs, atol=atol), (ours - theirs).abs().max()


def _single(image: np.ndarray) -> Callable[[np.ndarray, torch.Tensor], torch.Tensor]:
    tex = torch.from_numpy(image.astype(np.float64) / 255.0)
    return lambda faces, uv: sample_texture(tex, uv)


# -- the interface ---------------------------------------------------------------------------
def test_texture_is_carried_by_to_and_from_arrays_and_ignored_by_content_hash():
    base = load_mesh("cube")
    tex = torch.rand(5, 7, 3)
    mesh = Mesh.from_arrays(base.vertices, base.faces, base.uvs, base.uv_faces, name="c", normalize="none", texture=tex)
    plain = Mesh.from_arrays(base.vertices, base.faces, base.uvs, base.uv_faces, name="c", normalize="none")
    assert plain.texture is None and base.texture is None
    assert mesh.content_hash == plain.content_hash
    moved = mesh.to("cpu")
    assert moved.texture is not None and torch.equal(moved.texture, tex) and moved.texture.device == moved.device
    with pytest.raises(Exception, match=r"\(H, W, 3\)"):
        Mesh.from_arrays(base.vertices, base.faces, base.uvs, base.uv_faces, texture=torch.rand(4, 4))


# -- GLB ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["cube", "demo"])
def test_glb_written_by_export_reads_back_its_texture(tmp_path, spec, torch_renderer):
    mesh = load_mesh(spec)
    texture = torch.from_numpy(_image(24, 40).astype(np.float32) / 255.0)  # not square: rows and columns differ
    mesh.export(tmp_path / "m.glb", texture)
    notes: list[str] = []
    back = Mesh.load(tmp_path / "m.glb", notify=notes.append)
    assert notes == []
    assert back.texture is not None and back.texture.shape == (24, 40, 3) and back.texture.dtype == torch.float32
    assert torch.equal(back.texture, texture)
    _assert_looks_the_same(back, _to_source(mesh), (mesh.uvs.double()[mesh.uv_faces]).numpy(), _single(_image(24, 40)))
    # rendered, the read-back mesh looks like the original
    cams = Cameras.orbit(3, elevation=-25.0)
    a = torch_renderer.render(mesh, Texture(texture), cams, 48)
    b = torch_renderer.render(back, Texture(back.texture), cams, 48)
    both = (a.alpha * b.alpha) > 0.99
    assert both.sum() > 500
    diff = (a.rgb - b.rgb).abs().amax(-1, keepdim=True)[both]
    assert diff.median() < 1e-3 and (diff > 0.05).float().mean() < 0.01, (diff.median(), (diff > 0.05).float().mean())


def test_glb_base_colour_factor_multiplies_the_texture_in_linear_light(tmp_path):
    image = _image(8, 8)
    factor = [128, 255, 64, 255]
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(image), baseColorFactor=factor)
    mesh = Mesh.load(_glb(tmp_path / "f.glb", [(GRID_V, GRID_F, GRID_UV, material)]))
    expected = linear_to_srgb(srgb_to_linear(image / 255.0) * np.array(factor[:3]) / 255.0)
    assert np.allclose(mesh.texture.numpy(), expected, atol=1e-6)


def test_glb_colour_without_texture_is_a_constant_texture(tmp_path):
    material = trimesh.visual.material.PBRMaterial(baseColorFactor=[255, 51, 0, 255])
    notes: list[str] = []
    mesh = Mesh.load(_glb(tmp_path / "c.glb", [(GRID_V, GRID_F, GRID_UV, material)]), notify=notes.append)
    assert mesh.texture.shape == (CONSTANT_SIZE, CONSTANT_SIZE, 3)
    expected = np.round(linear_to_srgb(np.array([255, 51, 0]) / 255.0) * 255) / 255  # linear factor, sRGB texture
    assert np.allclose(mesh.texture.numpy(), expected, atol=1e-6)
    assert len(notes) == 1 and "constant" in notes[0] and "c.glb" in notes[0]


def test_glb_without_material_has_no_texture_and_no_notice(tmp_path):
    notes: list[str] = []
    mesh = Mesh.load(_glb(tmp_path / "plain.glb", [(GRID_V, GRID_F, None, None)]), notify=notes.append)
    assert mesh.texture is None and notes == []
    load_mesh("cube").export(tmp_path / "untextured.glb")  # what export writes without a texture
    assert Mesh.load(tmp_path / "untextured.glb", notify=notes.append).texture is None and notes == []


def test_glb_with_two_textured_parts_is_packed_into_one_atlas(tmp_path):
    a, b = _image(16, 12, 1), _image(10, 20, 2)
    right = GRID_V + [4.0, 0.0, 0.0]
    uv_b = GRID_UV[:, ::-1] * 0.9  # another layout, still inside [0, 1]
    parts = [
        (GRID_V, GRID_F, GRID_UV, trimesh.visual.material.PBRMaterial(name="left", baseColorTexture=Image.fromarray(a))),
        (right, GRID_F, uv_b, trimesh.visual.material.PBRMaterial(name="right", baseColorTexture=Image.fromarray(b))),
    ]
    notes: list[str] = []
    mesh = Mesh.load(_glb(tmp_path / "two.glb", parts), notify=notes.append)
    assert len(notes) == 1 and "2 materials" in notes[0] and "'left'" in notes[0] and "'right'" in notes[0]
    assert mesh.texture is not None and mesh.uvs.min() >= 0 and mesh.uvs.max() <= 1
    corners = np.concatenate([GRID_V[GRID_F], right[GRID_F]])
    uvs = np.concatenate([GRID_UV[GRID_F], uv_b[GRID_F]])
    texs = [torch.from_numpy(img.astype(np.float64) / 255.0) for img in (a, b)]

    def reference(faces: np.ndarray, uv: torch.Tensor) -> torch.Tensor:
        first = torch.from_numpy(faces < len(GRID_F))[:, None, None]
        return torch.where(first, sample_texture(texs[0], uv), sample_texture(texs[1], uv))

    _assert_looks_the_same(mesh, corners, uvs, reference)


# -- OBJ + MTL + PNG ---------------------------------------------------------------------------
def test_obj_mtl_png_reads_its_texture(tmp_path):
    image = _image(12, 20)
    notes: list[str] = []
    mesh = Mesh.load(_textured_obj(tmp_path, image), notify=notes.append)
    assert notes == []
    assert torch.equal(mesh.texture, torch.from_numpy(image.astype(np.float32) / 255.0))
    _assert_looks_the_same(mesh, GRID_V[GRID_F], GRID_UV[GRID_F], _single(image))


def test_obj_texture_is_not_upside_down(tmp_path):
    """Top half red, bottom half blue; v = 1 at the top edge of the quad: the top face samples red."""
    image = np.zeros((8, 8, 3), np.uint8)
    image[:4, :, 0] = 255
    image[4:, :, 2] = 255
    Image.fromarray(image).save(tmp_path / "rb.png")
    (tmp_path / "rb.mtl").write_text("newmtl m\nmap_Kd rb.png\n")
    quad_v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    quad_uv = quad_v[:, :2]
    mesh = Mesh.load(_write_obj(tmp_path, "rb.obj", quad_v, np.array([[0, 1, 2], [0, 2, 3]]), quad_uv, "rb.mtl"))
    uv_top = torch.tensor([[0.5, 0.9]])
    uv_bottom = torch.tensor([[0.5, 0.1]])
    assert sample_texture(mesh.texture, uv_top)[0].tolist() == [1.0, 0.0, 0.0]
    assert sample_texture(mesh.texture, uv_bottom)[0].tolist() == [0.0, 0.0, 1.0]
    # and the loaded UVs still put v = 0.9 near the top (largest y) of the quad
    top_vertex = int(mesh.vertices[:, 1].argmax())
    assert float(mesh.uvs[mesh.uv_faces][mesh.faces == top_vertex][:, 1].min()) == pytest.approx(1.0)


@pytest.mark.parametrize(("mode", "notice"), [("RGBA", "alpha"), ("L", "converted to RGB"), ("P", "converted to RGB")])
def test_obj_texture_modes_become_rgb_with_a_notice(tmp_path, mode, notice):
    image = _image(8, 8)
    notes: list[str] = []
    mesh = Mesh.load(_textured_obj(tmp_path, image, mode), notify=notes.append)
    assert mesh.texture.shape == (8, 8, 3)
    assert len(notes) == 1 and notice in notes[0] and "grid.obj" in notes[0]
    if mode == "RGBA":
        assert torch.equal(mesh.texture, torch.from_numpy(image.astype(np.float32) / 255.0))
    if mode == "L":
        assert torch.equal(mesh.texture[..., 0], mesh.texture[..., 2])


def test_obj_kd_without_map_is_a_constant_texture(tmp_path):
    (tmp_path / "kd.mtl").write_text("newmtl m\nKd 0.8 0.2 0.1\n")
    notes: list[str] = []
    # no UVs in the file: unwrapped with xatlas, and a constant colour still fits
    mesh = Mesh.load(_write_obj(tmp_path, "kd.obj", GRID_V, GRID_F, None, "kd.mtl"), notify=notes.append)
    assert mesh.texture.shape == (CONSTANT_SIZE, CONSTANT_SIZE, 3)
    assert np.allclose(mesh.texture.numpy(), np.round(np.array([0.8, 0.2, 0.1]) * 255) / 255)
    assert len(notes) == 1 and "#cc331a" in notes[0]


def test_obj_with_two_materials_and_repeating_uvs_is_packed(tmp_path):
    a, b = _image(8, 8, 3), _image(6, 10, 4)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    (tmp_path / "ab.mtl").write_text("newmtl wood\nmap_Kd a.png\nnewmtl paint\nKd 0 0.5 1\nnewmtl tiles\nmap_Kd b.png\n")
    uv = GRID_UV.copy()
    uv[:, 0] = uv[:, 0] * 2.5 - 0.2  # u from -0.2 to 2.05: the texture repeats
    groups = [("wood", np.arange(0, 4)), ("paint", np.arange(4, 8)), ("tiles", np.arange(8, 12))]
    notes: list[str] = []
    mesh = Mesh.load(_write_obj(tmp_path, "ab.obj", GRID_V, GRID_F, uv, "ab.mtl", groups), notify=notes.append)
    assert len(notes) == 1 and "3 materials" in notes[0] and "repeating" in notes[0], notes
    assert mesh.uvs.min() >= 0 and mesh.uvs.max() <= 1

    def unrolled(img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.tile(img.astype(np.float64) / 255.0, (1, 4, 1)))  # u in [-1, 3): 4 repeats

    tex = {"wood": unrolled(a), "tiles": unrolled(b)}
    colour = torch.tensor([0.0, 128 / 255, 1.0], dtype=torch.float64)

    def reference(faces: np.ndarray, uv: torch.Tensor) -> torch.Tensor:
        out = torch.empty(*uv.shape[:-1], 3, dtype=torch.float64)
        shifted = torch.stack(((uv[..., 0] + 1.0) / 4.0, uv[..., 1]), dim=-1)  # [-1, 3) -> [0, 1)
        for name, idx in groups:
            sel = torch.from_numpy(np.isin(faces, idx))
            out[sel] = sample_texture(tex[name], shifted[sel]) if name in tex else colour
        return out

    _assert_looks_the_same(mesh, GRID_V[GRID_F], uv[GRID_F], reference)


# -- a texture named but missing ---------------------------------------------------------------
def _problem_cases(folder: Path) -> dict[str, tuple[Path, str]]:
    (folder / "img.mtl").write_text("newmtl m\nmap_Kd nothere.png\n")
    (folder / "bad.mtl").write_text("newmtl m\nmap_Kd broken.png\n")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.fromarray(_image(4, 4)).save(folder / "ok.png")
    (folder / "ok.mtl").write_text("newmtl m\nmap_Kd ok.png\n")
    return {
        "mtl-missing": (_write_obj(folder, "a.obj", GRID_V, GRID_F, GRID_UV, "gone.mtl"), "gone.mtl"),
        "image-missing": (_write_obj(folder, "b.obj", GRID_V, GRID_F, GRID_UV, "img.mtl"), "nothere.png"),
        "image-broken": (_write_obj(folder, "c.obj", GRID_V, GRID_F, GRID_UV, "bad.mtl"), "broken.png"),
        "image-without-uvs": (_write_obj(folder, "d.obj", GRID_V, GRID_F, None, "ok.mtl"), "no usable UVs"),
    }


@pytest.mark.parametrize("case", ["mtl-missing", "image-missing", "image-broken", "image-without-uvs"])
def test_a_texture_that_cannot_be_read_is_a_notice_and_the_geometry_loads(tmp_path, case):
    path, named = _problem_cases(tmp_path)[case]
    notes: list[str] = []
    mesh = Mesh.load(path, notify=notes.append)
    assert mesh.texture is None and mesh.num_faces == len(GRID_F)
    assert len(notes) == 1 and isinstance(notes[0], TextureProblem), notes
    assert named in notes[0].reason and "loaded without its texture" in notes[0] and "\n" not in notes[0]
    assert Mesh.load(path).texture is None  # no notify: silent


def test_parts_without_uvs_next_to_textured_ones_keep_a_usable_unwrap(tmp_path):
    """trimesh gives a part without UVs one UV point; such a mesh is unwrapped instead, without texture."""
    (tmp_path / "k.mtl").write_text("newmtl red\nKd 1 0 0\nnewmtl blue\nKd 0 0 1\n")
    groups = [("red", np.arange(0, 6)), ("blue", np.arange(6, 12))]
    notes: list[str] = []
    mesh = Mesh.load(_write_obj(tmp_path, "k.obj", GRID_V, GRID_F, None, "k.mtl", groups), notify=notes.append)
    assert mesh.texture is None and len(notes) == 1 and "no UVs" in notes[0]
    uv = mesh.uvs.double()[mesh.uv_faces]
    area = ((uv[:, 1] - uv[:, 0])[:, 0] * (uv[:, 2] - uv[:, 0])[:, 1] - (uv[:, 1] - uv[:, 0])[:, 1] * (uv[:, 2] - uv[:, 0])[:, 0]).abs()
    assert (area > 1e-6).all()


def test_normalisation_moves_positions_not_uvs_or_texture(tmp_path):
    path = _textured_obj(tmp_path, _image(8, 8))
    meshes = [Mesh.load(path, normalize=n) for n in ("unit_sphere", "extent", "none")]
    for other in meshes[1:]:
        assert torch.equal(other.uvs, meshes[0].uvs) and torch.equal(other.texture, meshes[0].texture)


def test_parts_sharing_one_material_keep_the_image_and_their_uvs(tmp_path):
    image = _image(12, 16, 5)
    material = trimesh.visual.material.PBRMaterial(name="shared", baseColorTexture=Image.fromarray(image))
    right = GRID_V + [4.0, 0.0, 0.0]
    notes: list[str] = []
    mesh = Mesh.load(_glb(tmp_path / "shared.glb", [(GRID_V, GRID_F, GRID_UV, material), (right, GRID_F, GRID_UV[:, ::-1], material)]), notify=notes.append)
    assert notes == [] and torch.equal(mesh.texture, torch.from_numpy(image.astype(np.float32) / 255.0))
    corners = np.concatenate([GRID_V[GRID_F], right[GRID_F]])
    uvs = np.concatenate([GRID_UV[GRID_F], GRID_UV[:, ::-1][GRID_F]])
    _assert_looks_the_same(mesh, corners, uvs, _single(image))


def test_one_repeating_texture_is_unrolled(tmp_path):
    image = _image(8, 6, 6)
    uv = np.stack((GRID_UV[:, 0], GRID_UV[:, 1] * 2.5), axis=-1)  # v up to 2.25: 3 repeats upward
    material = trimesh.visual.material.PBRMaterial(name="tiles", baseColorTexture=Image.fromarray(image))
    notes: list[str] = []
    mesh = Mesh.load(_glb(tmp_path / "rep.glb", [(GRID_V, GRID_F, uv, material)]), notify=notes.append)
    assert len(notes) == 1 and "repeating texture (material 'tiles', 1x3 times" in notes[0] and "unrolled" in notes[0], notes
    tiled = torch.from_numpy(np.tile(image.astype(np.float64) / 255.0, (3, 1, 1)))  # row 0 is the top repeat (v in [2, 3])
    _assert_looks_the_same(mesh, GRID_V[GRID_F], uv[GRID_F], lambda faces, p: sample_texture(tiled, torch.stack((p[..., 0], p[..., 1] / 3), -1)))


def test_an_obj_export_writes_mtl_and_png_and_reads_back_its_texture(tmp_path):
    from texkit.geometry.primitives import load_mesh

    mesh = load_mesh("demo")
    texture = torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(2))
    mesh.export(tmp_path / "painted.obj", texture=texture)
    assert (tmp_path / "painted.mtl").exists() and (tmp_path / "painted.png").exists()
    assert "map_Kd painted.png" in (tmp_path / "painted.mtl").read_text()
    back = Mesh.load(tmp_path / "painted.obj")
    assert back.texture is not None
    torch.testing.assert_close(back.texture, (texture * 255).round() / 255, atol=1e-6, rtol=0)
    assert back.num_faces == mesh.num_faces
    # the UVs still point at the same texels: colour at each face's UV centroid, before and after
    def centroid_colours(m: Mesh, tex: torch.Tensor) -> torch.Tensor:
        return sample_texture(tex, m.uvs[m.uv_faces].mean(dim=1))  # (F, 3)

    before = centroid_colours(mesh, (texture * 255).round() / 255)
    after = centroid_colours(back, back.texture)
    order = cKDTree(mesh.vertices[mesh.faces].mean(dim=1).numpy()).query(back.vertices[back.faces].mean(dim=1).numpy())[1]
    torch.testing.assert_close(after, before[torch.as_tensor(order)], atol=1e-5, rtol=0)


# -- issue 26: an embedded image that does not decode; clamped textures ------------------------
def _glb_image_span(path: Path) -> tuple[int, int]:
    """``(start, length)`` in the file of the first embedded image's bytes."""
    import json
    import struct

    data = path.read_bytes()
    (length,) = struct.unpack_from("<I", data, 12)
    doc = json.loads(data[20 : 20 + length])
    view = doc["bufferViews"][doc["images"][0]["bufferView"]]
    return 20 + length + 8 + view.get("byteOffset", 0), view["byteLength"]


@pytest.mark.parametrize("damage", ["header", "pixels"])
def test_glb_embedded_image_that_does_not_decode_is_a_problem_never_white(tmp_path, damage):
    """Issue 26: trimesh drops an image it cannot open and kept the white baseColorFactor, which
    was scored as a constant white texture."""
    path = tmp_path / "bad.glb"
    load_mesh("cube").export(path, torch.from_numpy(_image(16, 16).astype(np.float32) / 255.0))
    data = bytearray(path.read_bytes())
    start, length = _glb_image_span(path)
    if damage == "header":
        data[start : start + 8] = b"NOTAPNG!"
    else:  # a valid header, the compressed pixels replaced
        idat = bytes(data[start : start + length]).index(b"IDAT")
        data[start + idat + 4 : start + length - 12] = b"\x00" * (length - 16 - idat)
    path.write_bytes(bytes(data))
    notes: list[str] = []
    mesh = Mesh.load(path, notify=notes.append)
    assert mesh.texture is None and mesh.num_faces == 12
    assert len(notes) == 1 and isinstance(notes[0], TextureProblem) and "does not decode" in notes[0].reason and "bad.glb" in notes[0], notes


def test_glb_naming_a_missing_image_file_is_a_problem(tmp_path):
    gltf = {
        "asset": {"version": "2.0"},
        "images": [{"uri": "gone.png"}],
        "textures": [{"source": 0}],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}],
    }
    import json

    from texkit.geometry.mesh_texture import _GltfFile

    (tmp_path / "m.gltf").write_text(json.dumps(gltf))
    assert _GltfFile.read(tmp_path / "m.gltf").problem(tmp_path / "m.gltf") == "m.gltf names the image gone.png, which is missing"


def test_glb_export_clamps_its_sampler_and_uvs_outside_0_1_read_back_unchanged(tmp_path):
    """texkit samples clamped; its GLB says so (glTF's default repeats), so a mesh whose UVs leave
    [0, 1] (the cow's do) reads back with the same image and UVs, not an unrolled atlas."""
    from texkit.geometry.mesh_texture import _GltfFile

    base = load_mesh("demo")
    uvs = base.uvs * 1.2 - 0.1  # every island moved partly outside [0, 1]
    mesh = Mesh.from_arrays(base.vertices, base.faces, uvs, base.uv_faces, name="out", normalize="none")
    texture = torch.from_numpy(_image(16, 16).astype(np.float32) / 255.0)
    mesh.export(tmp_path / "out.glb", texture)
    assert _GltfFile.read(tmp_path / "out.glb").clamped()
    notes: list[str] = []
    back = Mesh.load(tmp_path / "out.glb", notify=notes.append)
    assert notes == [] and torch.equal(back.texture, texture)
    assert float(back.uvs.min()) < -0.05 and float(back.uvs.max()) > 1.05  # the file's UVs, not moved into an atlas
    trimesh.load(str(tmp_path / "out.glb"))  # still a GLB trimesh reads


def test_clamped_textures_packed_with_others_extend_their_edge_texels(tmp_path):
    """Two clamped materials, UVs outside [0, 1]: each tile is its image in its [0, 1] cell with edge
    texels around it (what clamped sampling returns), not the image repeated."""
    import json
    import struct

    a, b = _image(8, 8, 7), _image(6, 10, 8)
    uv = GRID_UV.copy()
    uv[:, 0] = uv[:, 0] * 1.5 - 0.3  # u from -0.15 to 1.05
    ma = trimesh.visual.material.PBRMaterial(name="a", baseColorTexture=Image.fromarray(a))
    mb = trimesh.visual.material.PBRMaterial(name="b", baseColorTexture=Image.fromarray(b))
    path = _glb(tmp_path / "two.glb", [(GRID_V, GRID_F, uv, ma), (GRID_V + [4.0, 0, 0], GRID_F, uv, mb)])
    data = path.read_bytes()
    (length,) = struct.unpack_from("<I", data, 12)
    doc = json.loads(data[20 : 20 + length])
    doc["samplers"] = [{"wrapS": 33071, "wrapT": 33071}]
    for texture in doc["textures"]:
        texture["sampler"] = 0
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    rest = data[20 + length :]
    path.write_bytes(struct.pack("<4sIIII", b"glTF", 2, 20 + len(text) + len(rest), len(text), 0x4E4F534A) + text + rest)
    notes: list[str] = []
    mesh = Mesh.load(path, notify=notes.append)
    assert len(notes) == 1 and "2 materials" in notes[0] and "repeating" not in notes[0], notes
    tex = {0: torch.from_numpy(a.astype(np.float64) / 255.0), 1: torch.from_numpy(b.astype(np.float64) / 255.0)}
    corners = np.concatenate([GRID_V[GRID_F], (GRID_V + [4.0, 0, 0])[GRID_F]])

    def clamped(faces: np.ndarray, p: torch.Tensor) -> torch.Tensor:
        out = torch.empty(*p.shape[:-1], 3, dtype=torch.float64)
        for part in (0, 1):
            sel = torch.from_numpy((faces >= len(GRID_F)) == bool(part))
            out[sel] = sample_texture(tex[part], p[sel])  # sample_texture clamps at the edges
        return out

    _assert_looks_the_same(mesh, corners, np.concatenate([uv[GRID_F], uv[GRID_F]]), clamped)
