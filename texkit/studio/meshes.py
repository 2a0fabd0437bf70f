"""Meshes in the studio: uploads kept with their side files, load notices, and a GLB for the 3D view.

An upload is one mesh file (OBJ, GLB/glTF, PLY, OFF) plus, for an OBJ or a glTF, the files it
references (its MTL, texture images, buffers), stored together in a fresh folder so the mesh finds
them. Loading goes through `texkit.geometry.primitives.load_mesh` (the CLI's loader); the notices
say what loading did to the file: unwrapped with xatlas (the file has no UVs), polygons
triangulated, and the texture notices of `texkit.geometry.Mesh.load` (a packed atlas, a constant
colour, a texture that could not be read).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path

from texkit.errors import MeshError
from texkit.geometry.mesh import SUPPORTED_SUFFIXES, Mesh
from texkit.geometry.primitives import BUILTIN_MESHES, load_mesh

__all__ = ["SIDE_SUFFIXES", "store_upload", "load_with_notices", "file_facts", "write_view_glb"]

SIDE_SUFFIXES = (".mtl", ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tga", ".bin")
"""Files accepted beside a mesh file: materials, texture images, glTF buffers."""


def _safe_name(name: str) -> str:
    """A file name without folders or odd characters (uploads keep their names, so an OBJ finds its MTL)."""
    base = Path(name).name
    return re.sub(r"[^A-Za-z0-9._-]", "_", base) or "upload"


def store_upload(files: list[Path], folder: Path) -> Path:
    """Copy an upload into ``folder`` and return its mesh file.

    Args:
        files: the uploaded files: exactly one mesh file plus side files (`SIDE_SUFFIXES`).
        folder: a new folder to hold them.

    Raises:
        MeshError: no mesh file, several, or a file that is neither a mesh nor a side file (one line).
    """
    meshes = [f for f in files if Path(f).suffix.lower() in SUPPORTED_SUFFIXES]
    others = [f for f in files if Path(f).suffix.lower() not in SUPPORTED_SUFFIXES + SIDE_SUFFIXES]
    formats = ", ".join(SUPPORTED_SUFFIXES)
    if others:
        raise MeshError(f"{Path(others[0]).name} is not a mesh file; upload a mesh ({formats}), with its .mtl and texture images for an OBJ")
    if len(meshes) != 1:
        what = "no mesh file" if not meshes else f"{len(meshes)} mesh files"
        raise MeshError(f"the upload has {what}; upload one mesh ({formats}) with its .mtl and texture images for an OBJ")
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copyfile(f, folder / _safe_name(Path(f).name))
    return folder / _safe_name(Path(meshes[0]).name)


def file_facts(path: Path) -> tuple[bool | None, int | None]:
    """``(has_uvs, polygons)`` read from the file itself, each None where the format does not tell cheaply.

    ``polygons`` counts the faces with more than three corners (OBJ, OFF, ASCII PLY).
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".obj":
            has_uvs, polygons = False, 0
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.startswith("vt "):
                        has_uvs = True
                    elif line.startswith("f ") and len(line.split()) > 4:
                        polygons += 1
            return has_uvs, polygons
        if suffix == ".off":
            return False, _off_polygons(path)
        if suffix == ".ply":
            return _ply_facts(path)
        if suffix in (".glb", ".gltf"):
            return _gltf_has_uvs(path), 0
    except (OSError, ValueError, struct.error):
        return None, None
    return None, None


def _off_polygons(path: Path) -> int | None:
    words = [line.split("#", 1)[0].split() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    words = [w for w in words if w]
    if not words or not words[0][0].upper().endswith("OFF"):
        return None
    header = words[0][1:] or words[1]
    start = 1 if words[0][1:] else 2
    n_verts, n_faces = int(header[0]), int(header[1])
    faces = words[start + n_verts : start + n_verts + n_faces]
    return sum(1 for f in faces if int(f[0]) > 3)


def _ply_facts(path: Path) -> tuple[bool | None, int | None]:
    with open(path, "rb") as fh:
        header = []
        for _ in range(200):
            line = fh.readline().decode("ascii", errors="replace").strip()
            header.append(line)
            if line == "end_header":
                break
        props = [h.split()[-1] for h in header if h.startswith("property")]
        has_uvs = bool({"s", "u", "texture_u"} & set(props)) or any(h.startswith("property list") and h.endswith("texcoord") for h in header)
        if "format ascii 1.0" not in header:
            return has_uvs, None
        counts = {h.split()[1]: int(h.split()[2]) for h in header if h.startswith("element")}
        lines = fh.read().decode("ascii", errors="replace").splitlines()
        faces = lines[counts.get("vertex", 0) : counts.get("vertex", 0) + counts.get("face", 0)]
        return has_uvs, sum(1 for f in faces if f.split() and int(f.split()[0]) > 3)


def _gltf_has_uvs(path: Path) -> bool | None:
    if path.suffix.lower() == ".gltf":
        doc = json.loads(path.read_text(encoding="utf-8"))
    else:
        with open(path, "rb") as fh:
            magic, _version, _length = struct.unpack("<4sII", fh.read(12))
            if magic != b"glTF":
                return None
            chunk_length, chunk_type = struct.unpack("<II", fh.read(8))
            if chunk_type != 0x4E4F534A:  # "JSON"
                return None
            doc = json.loads(fh.read(chunk_length))
    primitives = [p for m in doc.get("meshes", []) for p in m.get("primitives", [])]
    return bool(primitives) and all("TEXCOORD_0" in p.get("attributes", {}) for p in primitives)


def load_with_notices(spec: str, normalize: str = "unit_sphere") -> tuple[Mesh, list[str]]:
    """Load a built-in mesh or a file the way a run does, and say what loading did.

    Returns:
        The mesh (CPU) and one-line notices: size, unwrapped or file UVs, polygons triangulated,
        and the loader's texture notices.

    Raises:
        MeshError: the file is not a readable mesh (the loader's one-line message).
    """
    texture_notes: list[str] = []
    mesh = load_mesh(spec, normalize, texture_notes.append)  # type: ignore[arg-type]
    notices = [f"{mesh.name}: {mesh.num_vertices} vertices, {mesh.num_faces} triangles"]
    if spec in BUILTIN_MESHES:
        notices.append("built-in mesh with its own UVs")
        return mesh, notices
    has_uvs, polygons = file_facts(Path(spec))
    if has_uvs is False:
        notices.append("the file has no UVs: unwrapped with xatlas")
    elif has_uvs:
        notices.append("UVs from the file")
    if polygons:
        notices.append(f"{polygons} polygons triangulated")
    notices += [str(n) for n in texture_notes]
    if mesh.texture is not None:
        height, width = int(mesh.texture.shape[0]), int(mesh.texture.shape[1])
        notices.append(f"its own texture ({width}x{height}) is shown and can be refined or scored")
    return mesh, notices


def write_view_glb(mesh: Mesh, path: Path, texture_size: int = 512) -> Path:
    """A GLB of ``mesh`` for the 3D view: with its own texture, else the UV checkerboard of ``texkit render``.

    Raises:
        MeshError: the mesh cannot be exported.
    """
    from texkit.commands.rendering import checkerboard

    texture = mesh.texture.cpu() if mesh.texture is not None else checkerboard(texture_size)
    try:
        mesh.to("cpu").export(path, texture)
    except (ValueError, TypeError) as err:
        raise MeshError(f"could not write a GLB of {mesh.name} for the 3D view ({err}); check the mesh") from None
    return path
