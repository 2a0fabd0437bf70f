"""A mesh file's own base-colour texture: glTF/GLB PBR materials and OBJ ``map_Kd``/``Kd`` (MTL).

`read_mesh_texture` turns the parts trimesh loaded (one ``Trimesh`` per material) into one
texture laid out for the mesh's UVs, in texkit's convention (`texkit.uv`: v upward, image row 0 at
the top; trimesh keeps UVs the same way and flips glTF's v on load and export):

* one material with a texture image: the image as is (times a glTF ``baseColorFactor`` other than
  white, in linear light), the file's UVs unchanged;
* a material with a colour and no image (glTF ``baseColorFactor`` alone, an MTL ``Kd`` alone): a
  constant `CONSTANT_SIZE` square texture of that colour (any UVs, or none, sample it the same);
* several parts with one material (instances, primitives): the image as is, each part's UVs;
* several materials, or UVs outside [0, 1] (a repeating texture): every material's image, repeated
  over the whole-number UV range its faces use, is packed into one atlas with a
  `PADDING`-texel wrapped border, and the UVs are moved into it, so every face samples what
  it sampled before (a part without a material takes glTF's default white);
* a clamped texture (a glTF sampler with ``wrapS = wrapT = CLAMP_TO_EDGE``, as `Mesh.export`
  writes; an MTL ``map_Kd -clamp on``): UVs outside [0, 1] sample its edge texels, as texkit's own
  sampling does (`texkit.uv.sample_texture`), so one such material keeps its image and the file's
  UVs; packed with others, its tile is extended by its edge texels instead of repeated;
* nothing (no material, vertex colours, trimesh's stand-in material for an OBJ without an MTL): no texture.

Images are decoded by `texkit.imageio.image_to_rgb` (16-bit and float images keep their values).
Problems that leave a mesh without its texture (a missing MTL or image file, an image that does
not decode, embedded in a GLB or named by ``map_Kd``, faces without UVs next to textured ones)
are reported as one-line notices, never replaced by a white texture; loading the geometry never
fails because of its texture.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from texkit.errors import TexkitError

__all__ = ["MeshTexture", "TextureProblem", "read_mesh_texture", "clamp_glb_textures", "part_uv", "srgb_to_linear", "linear_to_srgb", "CONSTANT_SIZE", "PADDING"]

CONSTANT_SIZE = 16
"""Side of the square texture made for a material that has a colour but no image."""

PADDING = 2
"""Texels of wrapped border around each material's image in a packed atlas (for bilinear lookups)."""

MAX_REPEATS = 8
"""Largest whole-number UV range (per axis) a repeating texture is unrolled over when packed."""

MAX_ATLAS = 8192
"""Largest side of a packed atlas."""

_EPS = 1e-6


@dataclass
class MeshTexture:
    """The texture read from a mesh file.

    Attributes:
        image: ``(H, W, 3)`` float32 sRGB in [0, 1], row 0 at the top; None when there is none.
        uv: ``(N, 2)`` float64 UVs, one per vertex of the parts concatenated in order, when the
            texture needs UVs other than the file's (a packed atlas); None to keep the file's.
        constant: the image is one colour, so it fits any UVs (also ones made by unwrapping).
    """

    image: np.ndarray | None = None
    uv: np.ndarray | None = None
    constant: bool = False


class TextureProblem(str):
    """A notice that the file names a texture texkit could not read (a ``str``, printed as is).

    Attributes:
        reason: the problem alone (the notice adds that the mesh is loaded without its texture).
    """

    reason: str

    def __new__(cls, reason: str, path: Path) -> "TextureProblem":
        notice = super().__new__(cls, f"{reason}; {path.name} is loaded without its texture")
        notice.reason = reason
        return notice


@dataclass
class _Part:
    """The base colour of one loaded part: an image, a constant colour, nothing, or a problem."""

    label: str
    image: np.ndarray | None = None  # (h, w, 3) float32 sRGB
    constant: bool = False  # image is one colour (any UVs sample it the same)
    problem: str = ""  # why the part's texture could not be read
    clamp: bool = False  # UVs outside [0, 1] sample the edge texels (else the image repeats)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear light (IEC 61966-2-1)."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] to sRGB-encoded values (IEC 61966-2-1)."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1.0 / 2.4) - 0.055)


def read_mesh_texture(
    path: Path,
    parts: list[Any],
    notify: Callable[[str], None] | None = None,
) -> MeshTexture:
    """The base-colour texture of the parts trimesh loaded from ``path``.

    Args:
        path: the mesh file (its suffix picks glTF or OBJ rules; other formats have no texture).
        parts: the ``trimesh.Trimesh`` parts in the order their vertices are concatenated.
        notify: receives one-line notices (a constant colour used, materials packed, an image
            converted, a texture that could not be read and why).

    Returns:
        The texture, and the UVs to use instead of the file's when it was packed.
    """
    say = notify or (lambda message: None)
    suffix = path.suffix.lower()
    if suffix in (".glb", ".gltf"):
        gltf = _GltfFile.read(path)
        problem = gltf.problem(path) if gltf is not None else ""
        if problem:
            say(TextureProblem(problem, path))
            return MeshTexture()
        found = [_gltf_part(path, p, i, len(parts), gltf, say) for i, p in enumerate(parts)]
    elif suffix == ".obj":
        library = _ObjMaterials.read(path)
        found = [_obj_part(path, p, i, len(parts), library, say) for i, p in enumerate(parts)]
    else:
        return MeshTexture()
    if all(f is None for f in found):
        return MeshTexture()
    problems = [f.problem for f in found if f is not None and f.problem]
    if problems:
        say(TextureProblem(problems[0], path))
        return MeshTexture()
    uvs = [part_uv(p) for p in parts]
    if len(parts) == 1:
        part = found[0]
        if part is None or part.image is None:  # pragma: no cover - a part without a problem has an image
            return MeshTexture()
        if part.constant:
            colour = "#" + "".join(f"{round(float(c) * 255):02x}" for c in part.image[0, 0])
            say(f"{path.name}: {part.label} has a colour ({colour}) and no texture image; a constant {CONSTANT_SIZE}x{CONSTANT_SIZE} texture of it is used")
            return MeshTexture(part.image, constant=True)
        uv = uvs[0]
        if uv is None:
            say(TextureProblem(f"{path.name}: {part.label} has a texture image but the mesh has no usable UVs", path))
            return MeshTexture()
        if part.clamp or _in_unit_square(uv):
            return MeshTexture(part.image)
    white = _Part("the default material (white)", np.ones((CONSTANT_SIZE, CONSTANT_SIZE, 3), np.float32), constant=True)
    found = [f if f is not None else white for f in found]
    if any(uv is None for uv in uvs):
        what = next(f.label for f, uv in zip(found, uvs) if uv is None)
        say(TextureProblem(f"{path.name}: the faces of {what} have no UVs, so its materials cannot share one texture "
                           "(bake them into one texture and re-export it)", path))
        return MeshTexture()
    if len({_tile_key(f) for f in found}) == 1 and (found[0].clamp or all(_in_unit_square(uv) for uv in uvs)):
        # parts sharing one material (or a colour): the image as is, the file's UVs in part order
        return MeshTexture(found[0].image, np.concatenate(uvs), constant=found[0].constant)
    return _pack(path, found, uvs, say)


# -- glTF ----------------------------------------------------------------------------------
def _gltf_part(path: Path, part: Any, index: int, count: int, gltf: "_GltfFile | None", say: Callable[[str], None]) -> _Part | None:
    """The base colour of a glTF primitive: ``baseColorTexture`` times ``baseColorFactor``."""
    material = getattr(getattr(part, "visual", None), "material", None)
    if material is None or getattr(part.visual, "kind", None) != "texture":
        return None
    label = _label(material, index, count)
    image = getattr(material, "baseColorTexture", None)
    factor = getattr(material, "baseColorFactor", None)
    factor_rgb = None if factor is None else np.asarray(factor, dtype=np.float64).reshape(-1)[:3] / 255.0
    clamp = gltf is not None and gltf.clamped()
    if image is not None:
        from texkit.imageio import texture_from_image

        try:
            rgb = texture_from_image(image, f"the texture of {path.name} ({label})", say).numpy()
        except (OSError, ValueError, TexkitError) as err:
            return _Part(label, problem=f"{path.name}: the texture image of {label} does not decode ({_reason(err)})")
        if factor_rgb is not None and not np.all(factor_rgb >= 1.0):
            rgb = linear_to_srgb(srgb_to_linear(rgb) * factor_rgb).astype(np.float32)
        return _Part(label, rgb, clamp=clamp)
    if gltf is not None and gltf.names_texture(getattr(material, "name", None)):
        # the file gives this material an image that trimesh did not read: never white instead
        return _Part(label, problem=f"{path.name}: the texture image of {label} could not be read")
    if factor_rgb is not None:
        return _Part(label, _constant(linear_to_srgb(factor_rgb)), constant=True)
    return None


_CLAMP_TO_EDGE = 33071  # glTF sampler wrap mode (the default, 10497, repeats)
_LINEAR = 9729  # glTF sampler filter


def clamp_glb_textures(glb: bytes) -> bytes:
    """A GLB whose textures all use one sampler that clamps UVs to the edge (bilinear, no repeat).

    texkit samples textures with clamped edges (`texkit.uv.sample_texture`); glTF's default
    sampler repeats them, so a mesh whose UVs leave [0, 1] would look different in a viewer, and
    read back as a repeating texture. The JSON chunk is rewritten (padded with spaces to 4 bytes),
    the binary chunk is kept byte for byte.

    Args:
        glb: a GLB file's bytes.

    Returns:
        The GLB with ``samplers = [{wrapS, wrapT: CLAMP_TO_EDGE, LINEAR filters}]`` and every
        texture's ``sampler`` set to it; ``glb`` itself when it has no textures.
    """
    (length,) = struct.unpack_from("<I", glb, 12)
    doc = json.loads(glb[20 : 20 + length])
    if not doc.get("textures"):
        return glb
    doc["samplers"] = [{"magFilter": _LINEAR, "minFilter": _LINEAR, "wrapS": _CLAMP_TO_EDGE, "wrapT": _CLAMP_TO_EDGE}]
    for texture in doc["textures"]:
        texture["sampler"] = 0
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    rest = glb[20 + length :]
    head = struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(text) + len(rest))
    return head + struct.pack("<II", len(text), 0x4E4F534A) + text + rest


@dataclass
class _GltfFile:
    """The JSON of a glTF/GLB file and its binary chunk: which images the materials use, and how."""

    doc: dict[str, Any]
    binary: bytes
    folder: Path

    @classmethod
    def read(cls, path: Path) -> "_GltfFile | None":
        """The file's JSON (and a GLB's binary chunk); None when it cannot be parsed (trimesh said why)."""
        try:
            data = path.read_bytes()
            if data[:4] == b"glTF":  # GLB: 12-byte header, then chunks of (length, type, data)
                doc, binary, offset = None, b"", 12
                while offset + 8 <= len(data):
                    length, kind = struct.unpack_from("<II", data, offset)
                    chunk = data[offset + 8 : offset + 8 + length]
                    if kind == 0x4E4F534A:
                        doc = json.loads(chunk)
                    elif kind == 0x004E4942:
                        binary = chunk
                    offset += 8 + length
            else:
                doc, binary = json.loads(data), b""
        except (OSError, ValueError, struct.error):
            return None
        return cls(doc, binary, path.parent) if isinstance(doc, dict) else None

    def _list(self, key: str) -> list[Any]:
        value = self.doc.get(key)
        return value if isinstance(value, list) else []

    def _item(self, key: str, index: Any) -> dict[str, Any]:
        items = self._list(key)
        item = items[index] if isinstance(index, int) and 0 <= index < len(items) else None
        return item if isinstance(item, dict) else {}

    def _base_colour_textures(self) -> list[tuple[str, dict[str, Any]]]:
        """``(material name, texture)`` for every material with a ``baseColorTexture``."""
        out = []
        for number, material in enumerate(self._list("materials")):
            info = material.get("pbrMetallicRoughness", {}) if isinstance(material, dict) else {}
            ref = info.get("baseColorTexture") if isinstance(info, dict) else None
            if isinstance(ref, dict):
                name = material.get("name") if isinstance(material.get("name"), str) else f"material {number + 1}"
                out.append((name, self._item("textures", ref.get("index"))))
        return out

    def names_texture(self, material_name: str | None) -> bool:
        """Whether the file gives the material ``material_name`` (any material when None) a base-colour image."""
        return any(material_name is None or name == material_name for name, _ in self._base_colour_textures())

    def clamped(self) -> bool:
        """Every base-colour texture's sampler clamps both axes to the edge (no repeat)."""
        textures = [texture for _, texture in self._base_colour_textures()]
        samplers = [self._item("samplers", texture.get("sampler")) for texture in textures]
        return bool(samplers) and all(s.get("wrapS") == _CLAMP_TO_EDGE and s.get("wrapT") == _CLAMP_TO_EDGE for s in samplers)

    def problem(self, path: Path) -> str:
        """Why a base-colour image cannot be read (missing file, does not decode), or ``""``."""
        from urllib.parse import unquote

        from PIL import Image

        for name, texture in self._base_colour_textures():
            sources = [texture.get("source")] + [ext.get("source") for ext in texture.get("extensions", {}).values() if isinstance(ext, dict)]
            index = next((i for i in sources if isinstance(i, int)), None)
            image = self._item("images", index)
            uri = image.get("uri")
            if isinstance(uri, str) and not uri.startswith("data:") and not (self.folder / unquote(uri)).is_file():
                return f"{path.name} names the image {uri}, which is missing"
            data = self._image_bytes(image)
            what = f"the texture image of material '{name}' in {path.name}"
            if data is None:
                return f"{what} cannot be found in the file"
            try:
                with Image.open(io.BytesIO(data)) as decoded:
                    decoded.load()
            except Exception as err:  # noqa: BLE001 - any decoder failure means the same to the user
                return f"{what} does not decode ({type(err).__name__})"
        return ""

    def _image_bytes(self, image: dict[str, Any]) -> bytes | None:
        """The encoded bytes of a glTF image (a data URI, a file next to the glTF, or a buffer view)."""
        from urllib.parse import unquote

        uri = image.get("uri")
        try:
            if isinstance(uri, str):
                if uri.startswith("data:"):
                    return base64.b64decode(uri.split(",", 1)[1])
                return (self.folder / unquote(uri)).read_bytes()
            view = self._item("bufferViews", image.get("bufferView"))
            if not view:
                return None
            buffer = self._item("buffers", view.get("buffer"))
            if "uri" in buffer:
                blob = self._image_bytes({"uri": buffer["uri"]}) or b""
            else:
                blob = self.binary
            start = int(view.get("byteOffset", 0))
            end = start + int(view.get("byteLength", 0))
            return blob[start:end] if end <= len(blob) else None
        except (OSError, ValueError, IndexError):
            return None


# -- OBJ + MTL -----------------------------------------------------------------------------
@dataclass
class _ObjMaterials:
    """The materials of an OBJ's material library (what trimesh reads: the first ``mtllib``)."""

    library: str = ""  # the file named by mtllib ("" when none)
    problem: str = ""  # the library is missing or unreadable
    materials: dict[str, dict[str, Any]] | None = None  # name -> {"kd": (3,) | None, "map_kd": str | None}

    @classmethod
    def read(cls, obj_path: Path) -> "_ObjMaterials":
        library = ""
        try:
            with open(obj_path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.startswith("mtllib"):
                        library = line[6:].strip()
                        break
        except OSError:
            return cls()
        if not library:
            return cls()
        mtl = obj_path.parent / library
        if not mtl.is_file():
            return cls(library, f"{obj_path.name} names the material library {library}, which is missing")
        try:
            text = mtl.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            return cls(library, f"the material library {library} of {obj_path.name} cannot be read ({err.strerror or err})")
        materials: dict[str, dict[str, Any]] = {}
        current: dict[str, Any] | None = None
        for line in text.splitlines():
            words = line.strip().split()
            if len(words) < 2:
                continue
            key = words[0].lower()
            if key == "newmtl":
                current = materials.setdefault(" ".join(words[1:]), {"kd": None, "map_kd": None})
            elif current is None:
                continue
            elif key == "kd":
                try:
                    values = [float(w) for w in words[1:4]]
                except ValueError:
                    continue
                current["kd"] = np.asarray((values * 3)[:3] if len(values) == 1 else values[:3], dtype=np.float64)
            elif key == "map_kd":
                current["map_kd"] = line.strip()[6:].strip()
        return cls(library, "", materials)


def _obj_part(path: Path, part: Any, index: int, count: int, library: _ObjMaterials, say: Callable[[str], None]) -> _Part | None:
    """The base colour of one OBJ material: its ``map_Kd`` image, else its ``Kd`` colour."""
    material = getattr(getattr(part, "visual", None), "material", None)
    name = getattr(material, "name", None)
    materials = library.materials or {}
    if material is None or name not in materials:
        # trimesh gives faces without a known material a default grey material of its own
        return _Part(f"material {name!r}", problem=library.problem) if library.problem else None
    label = f"material '{name}'"
    entry = materials[name]
    if entry["map_kd"]:
        from PIL import Image

        from texkit.imageio import texture_from_image

        what = f"the texture of {path.name} ({label})"
        image = getattr(material, "image", None)
        clamp = _map_kd_clamped(entry["map_kd"])
        try:
            if image is not None:
                return _Part(label, texture_from_image(image, what, say).numpy(), clamp=clamp)
            file = _map_kd_file(path.parent, entry["map_kd"])
            if file is None:
                return _Part(label, problem=f"the texture image {entry['map_kd']} of {label} in {library.library} is missing")
            # trimesh reads map_Kd as one file name: options (-clamp on, -s ...) before it are read here
            with Image.open(file) as opened:
                return _Part(label, texture_from_image(opened, what, say).numpy(), clamp=clamp)
        except (OSError, ValueError, TexkitError) as err:
            return _Part(label, problem=f"the texture image {entry['map_kd']} of {label} in {library.library} does not decode ({_reason(err)})")
    if entry["kd"] is not None:
        return _Part(label, _constant(np.clip(entry["kd"], 0.0, 1.0)), constant=True)
    return None


def _map_kd_clamped(value: str) -> bool:
    """Whether a ``map_Kd`` value has the option ``-clamp on`` (UVs outside [0, 1] sample the edge)."""
    words = value.lower().split()
    return any(word == "-clamp" and nxt == "on" for word, nxt in zip(words, words[1:]))


def _map_kd_file(folder: Path, value: str) -> Path | None:
    """The image file a ``map_Kd`` value names (options such as ``-s 1 1 1`` before it), if it exists."""
    for candidate in (value, value.split()[-1] if value.split() else value):
        file = folder / candidate.replace("\\", "/")
        if file.is_file():
            return file
    return None


# -- packing -------------------------------------------------------------------------------
def _pack(path: Path, parts: list[_Part], uvs: list[np.ndarray | None], say: Callable[[str], None]) -> MeshTexture:
    """Pack every part's image, over the whole-number UV range its faces use, into one atlas.

    A repeating image is tiled over that range; a clamped one sits in its [0, 1] cell, the rest
    of the range filled with its edge texels (what clamped sampling returns there).
    """
    # parts sharing an image share a tile spanning the union of their UV ranges
    tiles: dict[bytes, dict[str, Any]] = {}
    keys = []
    for part, uv in zip(parts, uvs):
        key = _tile_key(part)
        keys.append(key)
        if uv is None or len(uv) == 0:
            lo, hi = np.zeros(2), np.ones(2)
        else:
            lo = np.floor(uv.min(axis=0) + _EPS)
            hi = np.maximum(np.ceil(uv.max(axis=0) - _EPS), lo + 1)
        if part.clamp:  # the range holds the image's own cell
            lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 1.0)
        tile = tiles.setdefault(key, {"part": part, "lo": lo, "hi": hi})
        tile["lo"], tile["hi"] = np.minimum(tile["lo"], lo), np.maximum(tile["hi"], hi)
    for tile in tiles.values():
        reps = (tile["hi"] - tile["lo"]).astype(int)
        if reps.max() > MAX_REPEATS:
            say(TextureProblem(f"{path.name}: the texture of {tile['part'].label} repeats {reps[0]}x{reps[1]} times over its UVs "
                               f"(more than {MAX_REPEATS} per axis cannot be unrolled into one texture)", path))
            return MeshTexture()
        image = tile["part"].image
        if tile["part"].clamp:
            h, w = image.shape[:2]
            lo, hi = tile["lo"].astype(int), tile["hi"].astype(int)
            tile["image"] = np.pad(image, ((int(hi[1] - 1) * h, int(-lo[1]) * h), (int(-lo[0]) * w, int(hi[0] - 1) * w), (0, 0)), mode="edge")
        else:
            tile["image"] = np.tile(image, (reps[1], reps[0], 1))
    layout = _shelf_pack([t["image"].shape[:2] for t in tiles.values()])
    if layout is None:
        say(TextureProblem(f"{path.name}: its textures do not fit in one {MAX_ATLAS}x{MAX_ATLAS} atlas", path))
        return MeshTexture()
    (atlas_h, atlas_w), corners = layout
    atlas = np.zeros((atlas_h, atlas_w, 3), np.float32)
    for tile, (y, x) in zip(tiles.values(), corners):
        img = tile["image"]
        h, w = img.shape[:2]
        border = "edge" if tile["part"].clamp else "wrap"
        atlas[y : y + h + 2 * PADDING, x : x + w + 2 * PADDING] = np.pad(img, ((PADDING, PADDING), (PADDING, PADDING), (0, 0)), mode=border)
        tile["origin"] = (x + PADDING, y + PADDING)
    out = []
    for part, key, uv in zip(parts, keys, uvs):
        tile = tiles[key]
        h, w = part.image.shape[:2]  # type: ignore[union-attr]
        x0, y0 = tile["origin"]
        if uv is None:
            uv = np.zeros((0, 2))
        px = x0 + (uv[:, 0] - tile["lo"][0]) * w
        py = y0 + (tile["hi"][1] - uv[:, 1]) * h
        out.append(np.stack((px / atlas_w, 1.0 - py / atlas_h), axis=-1))
    names = ", ".join(t["part"].label for t in tiles.values())
    repeats = [(t["hi"] - t["lo"]).astype(int) for t in tiles.values()]
    if len(tiles) > 1:
        repeating = " with repeating textures" if any(r.max() > 1 and not t["part"].clamp for r, t in zip(repeats, tiles.values())) else ""
        say(f"{path.name} has {len(tiles)} materials ({names}){repeating}; packed into one {atlas_w}x{atlas_h} texture, its UVs moved to match")
    else:
        say(f"{path.name} has a repeating texture ({names}, {repeats[0][0]}x{repeats[0][1]} times over its UVs); "
            f"unrolled into one {atlas_w}x{atlas_h} texture, its UVs moved to match")
    return MeshTexture(atlas, np.concatenate(out, axis=0))


def _shelf_pack(sizes: list[tuple[int, int]]) -> tuple[tuple[int, int], list[tuple[int, int]]] | None:
    """Place ``(h, w)`` tiles (plus padding) on shelves; returns ``((H, W), [(y, x) per tile])`` or None if too large."""
    padded = [(h + 2 * PADDING, w + 2 * PADDING) for h, w in sizes]
    width = max(max(w for _, w in padded), math.ceil(math.sqrt(sum(h * w for h, w in padded))))
    order = sorted(range(len(padded)), key=lambda i: -padded[i][0])
    corners: list[tuple[int, int]] = [(0, 0)] * len(padded)
    x = y = shelf = 0
    for i in order:
        h, w = padded[i]
        if x + w > width:
            y, x, shelf = y + shelf, 0, 0
        corners[i] = (y, x)
        x, shelf = x + w, max(shelf, h)
    height = y + shelf
    if max(height, width) > MAX_ATLAS:
        return None
    return (height, width), corners


# -- helpers -------------------------------------------------------------------------------
def part_uv(part: Any) -> np.ndarray | None:
    """A part's ``(N, 2)`` UVs when it has one per vertex, else None."""
    uv = getattr(getattr(part, "visual", None), "uv", None)
    if uv is None:
        return None
    uv = np.asarray(uv, dtype=np.float64)
    if uv.ndim != 2 or uv.shape[1] != 2 or len(uv) != len(part.vertices) or not np.isfinite(uv).all():
        return None
    return uv


def _tile_key(part: _Part) -> bytes:
    """A digest of a part's texels, shape and wrap mode (parts with equal keys share one atlas tile)."""
    data = np.ascontiguousarray(part.image, dtype=np.float32)
    return hashlib.blake2b(memoryview(data).cast("B"), digest_size=16).digest() + str(data.shape).encode() + (b"clamp" if part.clamp else b"")


def _reason(err: Exception) -> str:
    """Why an image did not decode, for a notice: texkit's own line, else the exception's type."""
    return " ".join(str(err).split()) if isinstance(err, TexkitError) else type(err).__name__


def _in_unit_square(uv: np.ndarray | None) -> bool:
    """Every UV in [0, 1] (up to float noise): the texture needs no unrolling."""
    return uv is not None and (len(uv) == 0 or (uv.min() >= -_EPS and uv.max() <= 1.0 + _EPS))


def _constant(rgb: np.ndarray) -> np.ndarray:
    """A `CONSTANT_SIZE` square ``(S, S, 3)`` float32 image of one sRGB colour (quantised to 8 bits)."""
    colour = np.round(np.asarray(rgb, dtype=np.float64).reshape(3) * 255.0) / 255.0
    return np.broadcast_to(colour.astype(np.float32), (CONSTANT_SIZE, CONSTANT_SIZE, 3)).copy()


def _label(material: Any, index: int, count: int) -> str:
    """How messages name a material: its name, else its position."""
    name = getattr(material, "name", None)
    if name:
        return f"material '{name}'"
    return "its material" if count == 1 else f"material {index + 1} of {count}"
