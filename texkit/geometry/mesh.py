"""Triangle meshes with UVs: loading (trimesh), unwrapping (xatlas), normalisation, hashing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from texkit.errors import MeshError

__all__ = ["Mesh", "vertex_normals", "SUPPORTED_SUFFIXES"]

SUPPORTED_SUFFIXES = (".obj", ".glb", ".gltf", ".ply", ".off")
Normalize = Literal["unit_sphere", "extent", "none"]


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted vertex normals.

    Args:
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` long vertex indices (counter-clockwise = outward).

    Returns:
        ``(V, 3)`` unit normals (differentiable with respect to ``vertices``).
    """
    v0, v1, v2 = (vertices[faces[:, i]] for i in range(3))
    face_n = torch.cross(v1 - v0, v2 - v0, dim=-1)  # length = 2 * area
    acc = torch.zeros_like(vertices).index_add(0, faces.reshape(-1), face_n.repeat_interleave(3, dim=0))
    return torch.nn.functional.normalize(acc, dim=-1, eps=1e-12)


@dataclass
class Mesh:
    """A triangle mesh with per-face UV indices (so UV seams are kept).

    Attributes:
        vertices: ``(V, 3)`` float32 positions.
        faces: ``(F, 3)`` long indices into ``vertices``, counter-clockwise seen from outside.
        uvs: ``(T, 2)`` float32 texture coordinates (v upward, see `texkit.uv`).
        uv_faces: ``(F, 3)`` long indices into ``uvs``; corner k of face f has UV ``uvs[uv_faces[f, k]]``.
        normals: ``(V, 3)`` unit vertex normals.
        name: a label (the file stem for loaded meshes).
        source_offset: with ``source_scale``, the normalisation done at load undone: positions in
            the input file are ``vertices * source_scale + source_offset`` (``export`` writes those).
        source_scale: see ``source_offset``; 1 for meshes built with ``normalize="none"``.
        texture: the mesh's own base-colour texture, ``(H, W, 3)`` float32 in [0, 1] (sRGB, row 0
            at the top, on the mesh's device), laid out for ``uvs``/``uv_faces`` in texkit's UV
            convention (see `texkit.uv`), so sampling it with `texkit.uv.sample_texture` at the
            corner UVs gives the colours a viewer shows; None when the file has none (see
            `Mesh.load`). Not part of `content_hash`: the geometry cache ignores it.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    uvs: torch.Tensor
    uv_faces: torch.Tensor
    normals: torch.Tensor
    name: str = "mesh"
    source_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    source_scale: float = 1.0
    texture: torch.Tensor | None = None

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        vertices: Any,
        faces: Any,
        uvs: Any = None,
        uv_faces: Any = None,
        name: str = "mesh",
        normalize: Normalize = "unit_sphere",
        texture: torch.Tensor | None = None,
    ) -> "Mesh":
        """Build a mesh from arrays; polygons with more than 3 corners are not accepted here
        (use `load` for files with quads).

        Args:
            vertices: ``(V, 3)`` positions.
            faces: ``(F, 3)`` vertex indices.
            uvs: ``(T, 2)`` texture coordinates, or None to unwrap with xatlas (cached on disk under
                ``$TEXKIT_CACHE_DIR``, see `texkit.geometry.unwrap`).
            uv_faces: ``(F, 3)`` UV indices; defaults to ``faces`` when ``uvs`` has one entry per vertex.
            normalize: ``"unit_sphere"`` (centre the bounding box, farthest vertex at distance 1),
                ``"extent"`` (the method's: largest bounding-box side 1.6) or ``"none"``.
            texture: optional ``(H, W, 3)`` texture in [0, 1] laid out for ``uvs`` (see `Mesh.texture`).

        Raises:
            MeshError: empty mesh, NaN/inf values, indices out of range, a texture of another shape.
        """
        try:
            verts = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
            tris = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
        except (ValueError, TypeError):
            raise MeshError(f"mesh '{name}' has malformed vertices or faces (3 coordinates per vertex, 3 indices per triangle); re-export it") from None
        if len(verts) == 0 or len(tris) == 0:
            raise MeshError(f"mesh '{name}' has no triangles; check that the file holds a surface mesh")
        if not np.isfinite(verts).all():
            bad = int((~np.isfinite(verts)).any(axis=1).sum())
            raise MeshError(f"mesh '{name}' has {bad} vertices with NaN or inf coordinates; repair or re-export it")
        if tris.min() < 0 or tris.max() >= len(verts):
            raise MeshError(f"mesh '{name}' has faces that index missing vertices; the file is corrupt or truncated")
        if uvs is None:
            uv_arr, uv_tris = _unwrap(verts, tris)
        else:
            uv_arr = np.asarray(uvs, dtype=np.float64).reshape(-1, 2)
            uv_tris = tris if uv_faces is None else np.asarray(uv_faces, dtype=np.int64).reshape(-1, 3)
            if uv_tris.shape != tris.shape or uv_tris.min() < 0 or uv_tris.max() >= len(uv_arr):
                raise MeshError(f"mesh '{name}' has UV indices that do not match its faces; re-export its UVs")
            if not np.isfinite(uv_arr).all():
                raise MeshError(f"mesh '{name}' has NaN or inf texture coordinates; re-export its UVs")
        if texture is not None:
            texture = torch.as_tensor(texture, dtype=torch.float32)
            if texture.dim() != 3 or texture.shape[-1] != 3 or min(texture.shape[:2]) < 1:
                raise MeshError(f"mesh '{name}': its texture must be an (H, W, 3) image, not {tuple(texture.shape)}")
        verts, offset, scale = _normalized(verts, normalize)
        v = torch.from_numpy(verts).float()
        f = torch.from_numpy(tris).long()
        return cls(
            vertices=v,
            faces=f,
            uvs=torch.from_numpy(uv_arr).float(),
            uv_faces=torch.from_numpy(uv_tris).long(),
            normals=vertex_normals(v, f),
            name=name,
            source_offset=offset,
            source_scale=scale,
            texture=texture,
        )

    @classmethod
    def load(cls, path: str | Path, normalize: Normalize = "unit_sphere", notify: Callable[[str], None] | None = None) -> "Mesh":
        """Read OBJ, GLB/GLTF, PLY or OFF through trimesh.

        Quads and polygons are triangulated; the file's UVs are kept with their seams (a vertex
        split by trimesh at a seam is merged back, so ``faces`` index unique positions and
        ``uv_faces`` index the UVs); a mesh without UVs is unwrapped with xatlas.

        The file's own base colour becomes ``texture`` (see `texkit.geometry.mesh_texture`): a
        GLB/glTF material's ``baseColorTexture`` (times its ``baseColorFactor``) or an OBJ
        material's ``map_Kd`` image from its MTL, with the file's UVs; a colour without an image
        (``baseColorFactor``, ``Kd``) gives a constant 16x16 texture; several materials, or a
        texture repeating over UVs outside [0, 1], are packed into one atlas and the UVs moved to
        it. ``texture`` is None for a mesh without any (and for PLY/OFF). Normalisation changes
        positions only, never the UVs or the texture.

        Args:
            path: the mesh file.
            normalize: see `Mesh.from_arrays`.
            notify: receives one-line notices about the texture: a constant colour or a packed
                atlas used, an image converted to RGB, or why the file's texture could not be read
                (a missing MTL or image file, faces without UVs). The texture never makes loading fail.

        Raises:
            MeshError: missing file, unsupported suffix, unreadable or corrupt content, NaN vertices.
        """
        import trimesh

        path = Path(path)
        if not path.exists():
            raise MeshError(f"mesh file not found: {path}; pass an existing mesh file or a built-in name (demo, sphere, cylinder, cube)")
        if path.is_dir():
            raise MeshError(f"mesh path {path} is a folder; pass a mesh file ({', '.join(SUPPORTED_SUFFIXES)}) or a built-in name")
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            raise MeshError(f"unsupported mesh format '{suffix}' for {path}; use one of {', '.join(SUPPORTED_SUFFIXES)}")
        if suffix == ".obj":
            _check_obj_indices(path)
        try:
            loaded = trimesh.load(str(path), process=False, maintain_order=False)
        except Exception as err:
            reason = " ".join(str(err).split())[:200]
            raise MeshError(f"could not read mesh {path} ({type(err).__name__}: {reason}); check that it is a valid {suffix} file or re-export it") from None
        if isinstance(loaded, trimesh.Scene):
            parts = [g for g in _scene_parts(loaded) if isinstance(g, trimesh.Trimesh)] if loaded.geometry else []
            if not parts:
                raise MeshError(f"{path} contains no triangle mesh; export the surface as a triangle or polygon mesh")
        elif isinstance(loaded, trimesh.Trimesh) and len(loaded.faces) > 0:
            parts = [loaded]
        else:
            raise MeshError(f"{path} contains no triangles (a point cloud or an empty/corrupt file?); export the surface as a triangle or polygon mesh")
        from texkit.geometry.mesh_texture import part_uv as _part_uv

        texture = _read_texture(path, parts, notify)
        if texture.uv is not None:  # a packed atlas: the parts' vertices in order, with the atlas UVs
            offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
            raw_verts = np.concatenate([np.asarray(p.vertices, dtype=np.float64) for p in parts])
            raw_faces = np.concatenate([np.asarray(p.faces, dtype=np.int64) + o for p, o in zip(parts, offsets)])
            uv = texture.uv
        else:
            loaded = trimesh.util.concatenate(parts) if len(parts) > 1 else parts[0]
            if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
                raise MeshError(f"{path} contains no triangles (a point cloud or an empty/corrupt file?); export the surface as a triangle or polygon mesh")
            raw_verts = np.asarray(loaded.vertices, dtype=np.float64)
            raw_faces = np.asarray(loaded.faces, dtype=np.int64)
            uv = getattr(loaded.visual, "uv", None)
            if len(parts) > 1 and any(_part_uv(p) is None for p in parts):
                uv = None  # trimesh puts every UV of a part without UVs on one point: unwrap instead
        if not np.isfinite(raw_verts).all():
            bad = int((~np.isfinite(raw_verts)).any(axis=1).sum())
            raise MeshError(f"{path}: {bad} vertices have NaN or inf coordinates; repair or re-export the mesh")
        image = None if texture.image is None else torch.from_numpy(np.ascontiguousarray(texture.image, dtype=np.float32))
        if uv is not None and len(uv) == len(raw_verts):
            # trimesh splits vertices at UV seams: merge equal positions back into one vertex.
            uniq, inverse = np.unique(raw_verts, axis=0, return_inverse=True)
            faces = inverse.reshape(-1)[raw_faces]
            uniq_uv, uv_inverse = np.unique(np.asarray(uv, dtype=np.float64), axis=0, return_inverse=True)
            uv_faces = uv_inverse.reshape(-1)[raw_faces]
            return cls.from_arrays(uniq, faces, uniq_uv, uv_faces, name=path.stem, normalize=normalize, texture=image)
        image = image if texture.constant else None  # unwrapped UVs: only a constant colour still fits
        return cls.from_arrays(raw_verts, raw_faces, None, None, name=path.stem, normalize=normalize, texture=image)

    # -- properties ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Device of the tensors."""
        return self.vertices.device

    @property
    def num_vertices(self) -> int:
        """V."""
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        """F."""
        return int(self.faces.shape[0])

    @property
    def content_hash(self) -> str:
        """SHA-256 (hex, 16 chars) of positions, faces and UVs; keys the geometry cache."""
        digest = hashlib.sha256()
        for t in (self.vertices, self.faces, self.uvs, self.uv_faces):
            digest.update(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes())
        return digest.hexdigest()[:16]

    def to(self, device: Any) -> "Mesh":
        """A copy on ``device`` (the texture, when there is one, moves with it)."""
        return Mesh(
            self.vertices.to(device),
            self.faces.to(device),
            self.uvs.to(device),
            self.uv_faces.to(device),
            self.normals.to(device),
            self.name,
            self.source_offset,
            self.source_scale,
            None if self.texture is None else self.texture.to(device),
        )

    def face_uvs(self) -> torch.Tensor:
        """``(F, 3, 2)`` UVs of each face corner."""
        return self.uvs[self.uv_faces]

    def export(self, path: str | Path, texture: torch.Tensor | None = None, coordinates: str = "source") -> None:
        """Write a textured GLB/OBJ through trimesh (vertices are split at UV seams on export).

        An OBJ with a texture gets ``<stem>.mtl`` (``map_Kd``) and ``<stem>.png`` beside it.

        The material is glTF PBR as a viewer expects for a painted texture: base colour factor
        white times the texture, metallic 0, roughness 1 (lighting is baked into the texture). A
        GLB's texture sampler clamps UVs to the edge, as texkit samples (glTF's default repeats), so
        faces whose UVs leave [0, 1] look the same in a viewer and read back the same.

        Args:
            path: output file; written to a temporary name first, then renamed.
            texture: optional ``(H, W, 3)`` texture in [0, 1].
            coordinates: ``"source"`` (default): the input file's own positions, units and up axis
                (the load-time normalisation undone); ``"normalized"``: texkit's working coordinates.
        """
        import trimesh
        from PIL import Image

        from texkit.io import atomic_path

        if coordinates not in ("source", "normalized"):
            raise ValueError(f"coordinates must be 'source' or 'normalized', not {coordinates!r}")
        verts = self.vertices.detach().cpu().double().numpy()[self.faces.cpu().numpy().reshape(-1)]
        if coordinates == "source":
            verts = verts * self.source_scale + np.asarray(self.source_offset, dtype=np.float64)
        uvs = self.uvs.detach().cpu().numpy()[self.uv_faces.cpu().numpy().reshape(-1)]
        tris = np.arange(len(verts)).reshape(-1, 3)
        visual = None
        if texture is not None:
            img = Image.fromarray((texture.detach().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8))
            material = trimesh.visual.material.PBRMaterial(
                name="texkit",
                baseColorTexture=img,
                baseColorFactor=[255, 255, 255, 255],
                metallicFactor=0.0,
                roughnessFactor=1.0,
                doubleSided=False,
            )
            visual = trimesh.visual.TextureVisuals(uv=uvs, material=material)
        out = trimesh.Trimesh(verts, tris, visual=visual, process=False)
        out.merge_vertices(merge_tex=False, merge_norm=True)
        path = Path(path)
        if path.suffix.lower() == ".obj" and texture is not None:
            _export_textured_obj(out, path)
            return
        with atomic_path(path) as tmp:
            data = out.export(file_type=path.suffix.lstrip(".").lower())
            data = data if isinstance(data, bytes) else data.encode()
            if path.suffix.lower() == ".glb" and texture is not None:
                from texkit.geometry.mesh_texture import clamp_glb_textures

                data = clamp_glb_textures(data)  # texkit samples clamped; glTF's default repeats
            Path(tmp).write_bytes(data)


def _export_textured_obj(mesh: Any, path: Path) -> None:
    """Write ``path`` (OBJ) with ``<stem>.mtl`` and ``<stem>.png`` beside it, each atomically.

    The MTL and the PNG are written first, so the OBJ that names them never exists without them.
    """
    from trimesh.exchange.obj import export_obj

    from texkit.io import atomic_path

    text, files = export_obj(mesh, include_normals=False, return_texture=True, mtl_name=f"{path.stem}.mtl")
    image_names = [name for name in files if not name.endswith(".mtl")]
    renames = {name: f"{path.stem}{Path(name).suffix}" for name in image_names}
    for name, data in files.items():
        if name.endswith(".mtl"):
            text_mtl = data.decode() if isinstance(data, bytes) else data
            for old, new in renames.items():
                text_mtl = text_mtl.replace(f"map_Kd {old}", f"map_Kd {new}")
            data, target = text_mtl.encode(), path.with_name(name)
        else:
            target = path.with_name(renames[name])
        with atomic_path(target) as tmp:
            Path(tmp).write_bytes(data)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(text.encode())


def _scene_parts(scene: Any) -> list[Any]:
    """The parts of a trimesh scene, placed (``Scene.dump``); an embedded image that does not decode
    (trimesh opens images lazily, copying one decodes it) is dropped so the geometry still loads:
    `texkit.geometry.mesh_texture` then reports that image as a problem."""
    try:
        return list(scene.dump())
    except (OSError, ValueError, SyntaxError):
        for geometry in scene.geometry.values():
            material = getattr(getattr(geometry, "visual", None), "material", None)
            for image in ("baseColorTexture", "image"):
                if getattr(material, image, None) is not None:
                    setattr(material, image, None)
        return list(scene.dump())


def _read_texture(path: Path, parts: list[Any], notify: Callable[[str], None] | None) -> Any:
    """The file's own texture (`texkit.geometry.mesh_texture`); a failure there is a notice, never an error."""
    from texkit.geometry.mesh_texture import MeshTexture, TextureProblem, read_mesh_texture

    try:
        return read_mesh_texture(path, parts, notify)
    except Exception as err:  # noqa: BLE001 - the geometry loads whatever its material holds
        if notify is not None:
            reason = " ".join(str(err).split())[:160]
            notify(TextureProblem(f"the texture of {path.name} could not be read ({type(err).__name__}: {reason})", path))
        return MeshTexture()


def _normalized(verts: np.ndarray, normalize: Normalize) -> tuple[np.ndarray, tuple[float, float, float], float]:
    """Normalised positions, and the offset and scale that undo it (``verts = out * scale + offset``)."""
    if normalize == "none":
        return verts, (0.0, 0.0, 0.0), 1.0
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    centred = verts - (lo + hi) / 2.0
    if normalize == "unit_sphere":
        scale = np.linalg.norm(centred, axis=1).max()
    elif normalize == "extent":
        scale = (hi - lo).max() / 1.6
    else:
        raise MeshError(f"unknown normalisation '{normalize}' (use unit_sphere, extent or none)")
    if scale <= 0:
        raise MeshError("mesh is degenerate: all vertices coincide")
    centre = (lo + hi) / 2.0
    return centred / scale, (float(centre[0]), float(centre[1]), float(centre[2])), float(scale)


def _unwrap(verts: np.ndarray, tris: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UV-unwrap with xatlas, cached on disk (`texkit.geometry.unwrap`): ``(T, 2)`` UVs and ``(F, 3)`` UV indices."""
    from texkit.geometry.unwrap import unwrap

    return unwrap(verts, tris)


def _check_obj_indices(path: Path) -> None:
    """Reject OBJ files whose faces index vertices or UVs the file does not define (truncation).

    The text is decoded tolerantly: OBJ keywords and numbers are ASCII, and comments, names and
    material paths may be in any encoding (bytes that are not UTF-8 are replaced, never rejected).
    """
    n_v = n_vt = 0
    max_v = max_vt = 0
    lineno = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, start=1):  # noqa: B007 (read in the except below)
                if line.startswith("v "):
                    n_v += 1
                    if len(line.split()) < 4:
                        raise MeshError(f"{path} line {lineno}: a vertex needs 3 coordinates; re-export the mesh")
                elif line.startswith("vt "):
                    n_vt += 1
                elif line.startswith("f "):
                    for corner in line.split()[1:]:
                        parts = corner.split("/")
                        iv = int(parts[0])
                        max_v = max(max_v, iv if iv > 0 else 0)
                        if len(parts) > 1 and parts[1]:
                            it = int(parts[1])
                            max_vt = max(max_vt, it if it > 0 else 0)
    except ValueError:
        raise MeshError(f"{path} is not a valid OBJ file (line {lineno}: a face index is not a number); re-export it") from None
    except OSError as err:
        raise MeshError(f"could not read mesh {path}: {err.strerror or err}; check the file") from None
    if max_v > n_v or max_vt > n_vt:
        raise MeshError(
            f"{path} is corrupt or truncated: faces reference vertex {max_v} / uv {max_vt} but the file defines "
            f"{n_v} vertices / {n_vt} uvs; re-export the mesh"
        )
