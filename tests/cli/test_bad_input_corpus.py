"""The bad-input corpus: every command x every input kind, each ending in one line and exit 2.

Each case builds its input in a fresh workspace that also holds earlier outputs, runs ``texkit``
as a user would, and checks the contract of :func:`conftest.assert_clean_error`: exit 2, one
``texkit: error:`` line naming the input and saying what to do, no traceback, nothing under the
workspace changed. Inputs that texkit now accepts (a Latin-1 comment in an OBJ, a texture of
another size or mode) are in ``ACCEPTED`` and must succeed with a one-line notice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TETRA = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"


def _config(ws: Path, **sections: dict) -> dict:
    cfg = {
        "mesh": {"path": "demo"},
        "prompts": {"text": ["a vase"]},
        "generator": {"name": "tiny", "options": {"steps": 1, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20], "azimuth": [0]}, "reward": {"elevation": [-20], "azimuth": [90]}},
        "texture": {"size": 32, "render_size": 32},
        "rewards": {"curvature_color": {"weight": 1.0}},
        "training": {"steps": 1, "checkpoint_every": 1, "before_after": False},
        "output": {"dir": str(ws / "run"), "grid_views": 1},
        "device": "cpu",
    }
    for key, value in sections.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    return cfg


def _toml(data: dict, prefix: str = "") -> str:
    """A small TOML writer (tables, strings, numbers, booleans, lists) for the test configs."""
    scalars, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            scalars.append(f"{key} = {json.dumps(value)}")
    out = ([f"[{prefix}]"] if prefix and (scalars or not tables) else []) + scalars
    for key, value in tables:
        out.append(_toml(value, f"{prefix}.{key}" if prefix else key))
    return "\n".join(out) + "\n"


def write_config(ws: Path, name: str = "run.toml", **sections: dict) -> Path:
    path = ws / name
    path.write_text(_toml(_config(ws, **sections)))
    return path


def _png(path: Path, size: tuple[int, int] = (32, 32), mode: str = "RGB") -> Path:
    arr = (np.random.default_rng(0).random((size[1], size[0], 4)) * 255).astype(np.uint8)
    Image.fromarray(arr, "RGBA").convert(mode).save(path)
    return path


class _Payload:
    """Unpickling this creates a file: a stand-in for arbitrary code in a checkpoint."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _run_folder(ws: Path, state_bytes: bytes | None = None) -> Path:
    """A run folder of an earlier run (run.json, metrics, one checkpoint) in ``ws/run``."""
    import hashlib

    run = ws / "run"
    ckpt = run / "checkpoints" / "step_000001"
    (ckpt / "adapter").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"run_id": "earlier"}))
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "reward/total": 0.1}) + "\n")
    data = state_bytes if state_bytes is not None else b"not a checkpoint"
    (ckpt / "state.pt").write_bytes(data)
    meta = {"format": 2, "step": 1, "run_id": "earlier", "state_sha256": hashlib.sha256(data).hexdigest()}
    (ckpt / "meta.json").write_text(json.dumps(meta))
    (run / "checkpoints" / "latest").write_text("step_000001\n")
    return run


def _pickled_state(ws: Path) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    torch.save({"step": 1, "evil": _Payload(str(ws / "PWNED"))}, buf)
    return buf.getvalue()


@dataclass
class Case:
    """One bad input: builds its files in the workspace and returns ``(argv, names the line must contain)``."""

    id: str
    command: str
    kind: str
    build: Callable[[Path], tuple[list, list[str]]]


def _file(ws: Path, name: str, content: str | bytes) -> Path:
    path = ws / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


QUAD_VT = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nf 1/1 2/2 3/3\nf 1/1 3/3 4/4\n"


def _obj_with_mtl(ws: Path, map_line: str, *_made: Path) -> Path:
    """A textured quad OBJ whose MTL has ``map_line`` (the image it names may be missing or broken)."""
    _file(ws, "q.mtl", f"newmtl m\n{map_line}\n")
    return _file(ws, "q.obj", "mtllib q.mtl\nusemtl m\n" + QUAD_VT)


def _untextured_glb(path: Path) -> Path:
    from texkit.geometry.primitives import load_mesh

    load_mesh("cube").export(path)
    return path


def _dir(ws: Path, name: str) -> Path:
    path = ws / name
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- images that do not decode faithfully, embedded or referenced (issue 26) ----------------
def _glb_with_broken_image(ws: Path, name: str = "bad.glb", damage: str = "header") -> Path:
    """A textured GLB written by texkit whose embedded PNG is damaged: its header, or its pixels
    behind a valid header (trimesh then keeps the image and fails only when it is decoded)."""
    import struct

    import torch

    from texkit.geometry.primitives import load_mesh

    path = ws / name
    load_mesh("cube").export(path, torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(0)))
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack_from("<I", data, 12)
    doc = json.loads(data[20 : 20 + length])
    view = doc["bufferViews"][doc["images"][0]["bufferView"]]
    start, size = 20 + length + 8 + view.get("byteOffset", 0), view["byteLength"]
    if damage == "header":
        data[start : start + 8] = b"NOTAPNG!"
    else:
        idat = bytes(data[start : start + size]).index(b"IDAT")
        data[start + idat + 4 : start + size - 12] = b"\x00" * (size - 16 - idat)
    path.write_bytes(bytes(data))
    return path


def _gltf_missing_image(ws: Path) -> Path:
    """A .gltf (JSON + .bin) whose material names an image file ``tex.png`` that is not there."""
    import trimesh

    quad = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
    image = Image.fromarray((np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8))
    quad.visual = trimesh.visual.TextureVisuals(uv=[[0, 0], [1, 0], [1, 1], [0, 1]], material=trimesh.visual.material.PBRMaterial(baseColorTexture=image))
    for name, data in quad.export(file_type="gltf").items():
        if name.endswith(".gltf"):
            doc = json.loads(data)
            doc["images"] = [{"uri": "tex.png"}]
            data = json.dumps(doc).encode()
        _file(ws, name, data)
    return ws / "model.gltf"


def _broken_pixels_png(ws: Path, name: str) -> Path:
    """A PNG with a valid header whose compressed pixels are zeros (opens, does not decode)."""
    data = bytearray(_png(ws / f"ok-{name}").read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 4 : len(data) - 12] = b"\x00" * (len(data) - 16 - idat)
    return _file(ws, name, bytes(data))


def _tiff(ws: Path, name: str, values: np.ndarray, mode: str) -> Path:
    Image.fromarray(values, mode).save(ws / name)
    return ws / name


def _nan_tiff(ws: Path, name: str = "nan.tif") -> Path:
    return _tiff(ws, name, np.full((16, 16), np.nan, np.float32), "F")


def _cut_16_bit_png(ws: Path, name: str = "cut16.png") -> Path:
    Image.fromarray(np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60).save(ws / f"whole-{name}")
    return _file(ws, name, (ws / f"whole-{name}").read_bytes()[:80])


def _init_mesh(ws: Path, mesh: Path) -> Path:
    """A config refining the texture of ``mesh`` (texture.init = "mesh")."""
    return write_config(ws, mesh={"path": str(mesh)}, texture={"size": 32, "render_size": 32, "init": "mesh", "mode": "refine"})


S = ["--reward", "symmetry"]


R = ["render", "demo", "--out"]  # + out folder

CASES = [
    # -- render ----------------------------------------------------------------------------
    Case("render-size-negative", "render", "option", lambda ws: ([*R, ws / "out", "--size", "-5"], ["--size"])),
    Case("render-size-text", "render", "option", lambda ws: ([*R, ws / "out", "--size", "big"], ["--size"])),
    Case("render-views-zero", "render", "option", lambda ws: ([*R, ws / "out", "--views", "0"], ["--views"])),
    Case("render-no-mesh-argument", "render", "option", lambda ws: (["render"], ["MESH"])),
    Case("render-mesh-missing", "render", "mesh", lambda ws: (["render", ws / "nope.obj", "--out", ws / "out"], ["nope.obj"])),
    Case("render-mesh-is-folder", "render", "mesh", lambda ws: (["render", _dir(ws, "x.obj"), "--out", ws / "out"], ["x.obj", "folder"])),
    Case("render-mesh-suffix", "render", "mesh", lambda ws: (["render", _file(ws, "m.stl", "solid x"), "--out", ws / "out"], ["m.stl"])),
    Case("render-mesh-truncated", "render", "mesh", lambda ws: (["render", _file(ws, "t.obj", TETRA + "f 1 2 9\n"), "--out", ws / "out"], ["t.obj"])),
    Case("render-mesh-nan", "render", "mesh", lambda ws: (["render", _file(ws, "n.obj", TETRA.replace("v 1 0 0", "v nan 0 0")), "--out", ws / "out"], ["n.obj"])),
    Case("render-mesh-no-faces", "render", "mesh", lambda ws: (["render", _file(ws, "e.obj", "v 0 0 0\nv 1 0 0\n"), "--out", ws / "out"], ["e.obj"])),
    Case("render-mesh-bad-face", "render", "mesh", lambda ws: (["render", _file(ws, "b.obj", TETRA + "f a b c\n"), "--out", ws / "out"], ["b.obj"])),
    Case("render-mesh-garbage-glb", "render", "mesh", lambda ws: (["render", _file(ws, "g.glb", b"\x00\x01garbage" * 10), "--out", ws / "out"], ["g.glb"])),
    Case("render-out-is-file", "render", "output", lambda ws: ([*R, _file(ws, "taken.png", b"keep me")], ["--out", "taken.png"])),
    Case("render-out-under-file", "render", "output", lambda ws: ([*R, _file(ws, "f.txt", b"keep") / "sub"], ["f.txt"])),
    Case("render-texture-missing", "render", "texture", lambda ws: ([*R, ws / "out", "--texture", ws / "none.png"], ["none.png"])),
    Case("render-texture-not-image", "render", "texture", lambda ws: ([*R, ws / "out", "--texture", _file(ws, "fake.png", "hello")], ["fake.png"])),
    Case("render-texture-folder", "render", "texture", lambda ws: ([*R, ws / "out", "--texture", _dir(ws, "tex.png")], ["tex.png"])),
    Case("render-renderer-unknown", "render", "option", lambda ws: ([*R, ws / "out", "--renderer", "nosuch"], ["nosuch"])),
    # -- score -----------------------------------------------------------------------------
    Case("score-size-zero", "score", "option", lambda ws: (["score", "demo", _png(ws / "t.png"), "--reward", "symmetry", "--size", "0"], ["--size"])),
    Case("score-mesh-without-own-texture", "score", "texture", lambda ws: (["score", "demo", "--reward", "symmetry"], ["demo", "no texture", "TEXTURE"])),
    Case("score-obj-without-texture", "score", "texture", lambda ws: (["score", _file(ws, "plain.obj", TETRA), "--reward", "symmetry"], ["plain.obj", "no texture", "TEXTURE"])),
    Case("score-glb-without-texture", "score", "texture", lambda ws: (["score", _untextured_glb(ws / "plain.glb"), "--reward", "symmetry"], ["plain.glb", "TEXTURE"])),
    Case("score-obj-mtl-missing", "score", "texture", lambda ws: (["score", _file(ws, "m.obj", "mtllib gone.mtl\nusemtl m\n" + QUAD_VT), "--reward", "symmetry"], ["m.obj", "gone.mtl", "TEXTURE"])),
    Case("score-obj-mtl-image-missing", "score", "texture", lambda ws: (["score", _obj_with_mtl(ws, "map_Kd nothere.png"), "--reward", "symmetry"], ["nothere.png", "missing", "TEXTURE"])),
    Case("score-obj-mtl-image-broken", "score", "texture", lambda ws: (["score", _obj_with_mtl(ws, "map_Kd cut.png", _file(ws, "cut.png", b"\x89PNG\r\n\x1a\n cut")), "--reward", "symmetry"], ["cut.png", "TEXTURE"])),
    Case("score-missing-reward-option", "score", "option", lambda ws: (["score", "demo", _png(ws / "t.png")], ["--reward"])),
    Case("score-reward-unknown", "score", "option", lambda ws: (["score", "demo", _png(ws / "t.png"), "--reward", "symetry"], ["symetry"])),
    Case("score-param-malformed", "score", "option", lambda ws: (["score", "demo", _png(ws / "t.png"), "--reward", "symmetry", "--param", "oops"], ["oops"])),
    Case("score-param-unknown", "score", "option", lambda ws: (["score", "demo", _png(ws / "t.png"), "--reward", "symmetry", "--param", "nosuch=1"], ["nosuch"])),
    Case("score-views-unknown", "score", "option", lambda ws: (["score", "demo", _png(ws / "t.png"), "--reward", "symmetry", "--views", "nope"], ["nope"])),
    Case("score-texture-missing", "score", "texture", lambda ws: (["score", "demo", ws / "gone.png", "--reward", "symmetry"], ["gone.png"])),
    Case("score-texture-truncated", "score", "texture", lambda ws: (["score", "demo", _file(ws, "cut.png", _png(ws / "ok.png").read_bytes()[:60]), "--reward", "symmetry"], ["cut.png"])),
    Case("score-mesh-missing", "score", "mesh", lambda ws: (["score", ws / "gone.ply", _png(ws / "t.png"), "--reward", "symmetry"], ["gone.ply"])),
    # -- generate --------------------------------------------------------------------------
    Case("generate-config-missing", "generate", "config", lambda ws: (["generate", ws / "none.toml"], ["none.toml"])),
    Case("generate-config-folder", "generate", "config", lambda ws: (["generate", _dir(ws, "cfg.toml")], ["cfg.toml", "folder"])),
    Case("generate-config-not-utf8", "generate", "config", lambda ws: (["generate", _file(ws, "l1.toml", "[prompts]\ntext = [\"caf\xe9\"]\n".encode("latin-1"))], ["l1.toml", "UTF-8"])),
    Case("generate-config-bad-toml", "generate", "config", lambda ws: (["generate", _file(ws, "bad.toml", "[mesh\npath=")], ["bad.toml"])),
    Case("generate-config-unknown-key", "generate", "config", lambda ws: (["generate", write_config(ws, trainig={"steps": 1})], ["trainig", "training"])),
    Case("generate-reward-misspelt", "generate", "config", lambda ws: (["generate", write_config(ws, rewards={"curvature_colour": {}})], ["curvature_colour"])),
    Case("generate-reward-param-misspelt", "generate", "config", lambda ws: (["generate", write_config(ws, rewards={"symmetry": {"wieght": 1}})], ["wieght"])),
    Case("generate-generator-unknown", "generate", "config", lambda ws: (["generate", write_config(ws, generator={"name": "nosuchgen"})], ["nosuchgen"])),
    Case("generate-config-mesh-missing", "generate", "mesh", lambda ws: (["generate", write_config(ws, mesh={"path": str(ws / "nomesh.obj")})], ["nomesh.obj"])),
    Case("generate-set-malformed", "generate", "option", lambda ws: (["generate", write_config(ws), "--set", "training.lr"], ["training.lr"])),
    Case("generate-adapter-missing", "generate", "weights", lambda ws: (["generate", write_config(ws), "--adapter", ws / "noadapter"], ["--adapter", "noadapter"])),
    Case("generate-adapter-is-file", "generate", "weights", lambda ws: (["generate", write_config(ws), "--adapter", _file(ws, "adapter.bin", b"x")], ["--adapter", "adapter.bin"])),
    Case("generate-out-is-file", "generate", "output", lambda ws: (["generate", write_config(ws), "--out", _file(ws, "o.txt", b"keep")], ["o.txt"])),
    Case("generate-out-has-foreign-files", "generate", "output", lambda ws: (["generate", write_config(ws), "--out", _file(ws, "mine/notes.txt", b"mine").parent], ["mine", "--out"])),
    Case("generate-out-holds-run", "generate", "output", lambda ws: (["generate", write_config(ws), "--out", _run_folder(ws)], ["run"])),
    Case("generate-init-missing", "generate", "texture", lambda ws: (["generate", write_config(ws), "--set", 'texture.init="nope.png"', "--set", 'texture.mode="refine"'], ["texture.init", "nope.png"])),
    Case("generate-init-not-image", "generate", "texture", lambda ws: (["generate", write_config(ws), "--set", f'texture.init="{_file(ws, "fake.png", "hello")}"', "--set", 'texture.mode="inpaint"'], ["fake.png"])),
    Case("generate-init-without-mode", "generate", "config", lambda ws: (["generate", write_config(ws), "--set", f'texture.init="{_png(ws / "i.png")}"'], ["texture.init", "texture.mode"])),
    Case("generate-init-mode-unknown", "generate", "config", lambda ws: (["generate", write_config(ws), "--set", 'texture.init="i.png"', "--set", 'texture.mode="redo"'], ["texture.mode", "inpaint", "refine"])),
    Case("generate-init-strength-above-1", "generate", "config", lambda ws: (["generate", write_config(ws), "--set", "texture.strength=1.5"], ["texture.strength"])),
    Case("generate-init-mask-missing", "generate", "texture", lambda ws: (["generate", write_config(ws), "--set", f'texture.init="{_png(ws / "i.png")}"', "--set", 'texture.mode="inpaint"', "--set", 'texture.mask="nomask.png"'], ["texture.mask", "nomask.png"])),
    Case("generate-init-mesh-untextured", "generate", "mesh", lambda ws: (["generate", write_config(ws), "--set", 'texture.init="mesh"', "--set", 'texture.mode="refine"'], ["texture.init", "demo", "no texture"])),
    # -- train -----------------------------------------------------------------------------
    Case("train-no-rewards", "train", "config", lambda ws: (["train", write_config(ws, rewards=None)], ["rewards"])),
    Case("train-three-config-errors", "train", "config", lambda ws: (["train", write_config(ws, training={"steps": -1, "lr": "fast", "stepz": 3})], ["3 config errors", "training.steps", "training.lr", "stepz"])),
    Case("train-set-negative-steps", "train", "option", lambda ws: (["train", write_config(ws), "--set", "training.steps=-1"], ["training.steps"])),
    Case("train-occupied-folder", "train", "output", lambda ws: (_run_folder(ws) and ["train", write_config(ws)], ["run", "--resume", "--overwrite"])),
    Case("train-resume-and-overwrite", "train", "option", lambda ws: (["train", write_config(ws), "--resume", "--overwrite"], ["--resume", "--overwrite"])),
    Case("train-not-differentiable", "train", "config", lambda ws: (["train", write_config(ws, rewards={"jpeg_compressibility": {}})], ["jpeg_compressibility"])),
    Case("train-mesh-is-folder", "train", "mesh", lambda ws: (["train", write_config(ws), "--set", f'mesh.path="{_dir(ws, "d.obj")}"'], ["d.obj"])),
    Case("train-resume-pickled-state", "train", "weights", lambda ws: (_run_folder(ws, _pickled_state(ws)) and ["train", write_config(ws), "--resume"], ["state.pt", "refused"])),
    Case("train-resume-damaged-state", "train", "weights", lambda ws: (_run_folder(ws, b"PK\x03\x04broken") and ["train", write_config(ws), "--resume"], ["state.pt", "damaged"])),
    Case("train-init-is-folder", "train", "texture", lambda ws: (["train", write_config(ws), "--set", f'texture.init="{_dir(ws, "tex.png")}"', "--set", 'texture.mode="refine"'], ["tex.png", "folder"])),
    Case("train-output-dir-is-file", "train", "output", lambda ws: (["train", write_config(ws, output={"dir": str(_file(ws, "runfile", b"x"))})], ["runfile"])),
    # -- plugins, new-reward, the root command ---------------------------------------------
    Case("plugins-unknown-option", "plugins", "option", lambda ws: (["plugins", "--tree"], ["--tree"])),
    Case("new-reward-bad-name", "new-reward", "option", lambda ws: (["new-reward", "9Bad-Name", "--dir", ws / "pkgs"], ["9Bad-Name"])),
    Case("new-reward-dir-is-file", "new-reward", "output", lambda ws: (["new-reward", "stripes", "--dir", _file(ws, "pk", b"x")], ["--dir"])),
    Case("new-reward-exists", "new-reward", "output", lambda ws: (["new-reward", "stripes", "--dir", _dir(ws, "pk2/texkit-reward-stripes").parent], ["texkit-reward-stripes"])),
    Case("unknown-command", "texkit", "option", lambda ws: (["nosuchcmd"], ["nosuchcmd"])),
    # -- images decoded faithfully or refused in one line; never a white texture (issue 26) --
    Case("score-glb-embedded-image-not-an-image", "score", "texture", lambda ws: (["score", _glb_with_broken_image(ws), *S], ["bad.glb", "does not decode", "TEXTURE"])),
    Case("score-glb-embedded-image-pixels-broken", "score", "texture", lambda ws: (["score", _glb_with_broken_image(ws, damage="pixels"), *S], ["bad.glb", "does not decode", "TEXTURE"])),
    Case("score-gltf-image-file-missing", "score", "texture", lambda ws: (["score", _gltf_missing_image(ws), *S], ["model.gltf", "tex.png", "missing", "TEXTURE"])),
    Case("score-obj-map-kd-pixels-broken", "score", "texture", lambda ws: (["score", _obj_with_mtl(ws, "map_Kd px.png", _broken_pixels_png(ws, "px.png")), *S], ["px.png", "does not decode", "TEXTURE"])),
    Case("score-obj-map-kd-options-broken-image", "score", "texture", lambda ws: (["score", _obj_with_mtl(ws, "map_Kd -clamp on cut.png", _file(ws, "cut.png", b"\x89PNG\r\n\x1a\n cut")), *S], ["cut.png", "TEXTURE"])),
    Case("score-obj-map-kd-float-nan", "score", "texture", lambda ws: (["score", _obj_with_mtl(ws, "map_Kd nan.tif", _nan_tiff(ws)), *S], ["nan.tif", "NaN", "TEXTURE"])),
    Case("score-texture-float-nan", "score", "texture", lambda ws: (["score", "demo", _nan_tiff(ws), *S], ["nan.tif", "NaN"])),
    Case("score-texture-int32-beyond-16-bit", "score", "texture", lambda ws: (["score", "demo", _tiff(ws, "big.tif", np.full((16, 16), 70000, np.int32), "I"), *S], ["big.tif", "65535"])),
    Case("score-texture-openexr", "score", "texture", lambda ws: (["score", "demo", _file(ws, "sky.exr", b"\x76\x2f\x31\x01" + bytes(60)), *S], ["sky.exr"])),
    Case("score-texture-radiance-hdr", "score", "texture", lambda ws: (["score", "demo", _file(ws, "sky.hdr", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 4 +X 4\n" + bytes(64)), *S], ["sky.hdr"])),
    Case("score-texture-16-bit-truncated", "score", "texture", lambda ws: (["score", "demo", _cut_16_bit_png(ws), *S], ["cut16.png"])),
    Case("render-texture-float-nan", "render", "texture", lambda ws: ([*R, ws / "out", "--texture", _nan_tiff(ws)], ["nan.tif", "NaN"])),
    Case("render-texture-int32-beyond-16-bit", "render", "texture", lambda ws: ([*R, ws / "out", "--texture", _tiff(ws, "big.tif", np.full((16, 16), -5, np.int32), "I")], ["big.tif", "65535"])),
    Case("generate-init-mesh-glb-image-broken", "generate", "texture", lambda ws: (["generate", _init_mesh(ws, _glb_with_broken_image(ws))], ["texture.init", "bad.glb", "does not decode"])),
    Case("generate-init-float-nan", "generate", "texture", lambda ws: (["generate", write_config(ws), "--set", f'texture.init="{_nan_tiff(ws)}"', "--set", 'texture.mode="refine"'], ["texture.init", "nan.tif", "NaN"])),
    Case("generate-init-16-bit-truncated", "generate", "texture", lambda ws: (["generate", write_config(ws), "--set", f'texture.init="{_cut_16_bit_png(ws)}"', "--set", 'texture.mode="inpaint"'], ["texture.init", "cut16.png"])),
    Case("train-init-mesh-glb-pixels-broken", "train", "texture", lambda ws: (["train", _init_mesh(ws, _glb_with_broken_image(ws, damage="pixels"))], ["texture.init", "bad.glb", "does not decode"])),
]


# ==============================================================================================
# issue 26, runs: one writer per folder, checkpoints verified whole, what a resume may change,
# failed starts that leave no trace, --dry-run bounds, values that are not numbers.
# (one block, appended, to ease merging with the other cases of issue 26)
# ==============================================================================================
_LOCK_HOLDERS: list = []  # child processes holding a folder's lock; stopped after each test

# texkit's own lock code, imported without texkit/__init__.py (which imports torch) to start fast
_HOLD = (
    "import sys, types\npackage = types.ModuleType('texkit')\npackage.__path__ = [sys.argv[2]]\nsys.modules['texkit'] = package\n"
    "from texkit.run_lock import hold_folder\nwith hold_folder(sys.argv[1]):\n    print('holding', flush=True)\n    sys.stdin.read()\n"
)


def _held(folder: Path) -> Path:
    """``folder``, its lock held by another texkit process (as a running ``train`` or ``generate`` holds it)."""
    import subprocess
    import sys

    import texkit

    package = Path(texkit.__file__).parent
    child = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder), str(package)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    _LOCK_HOLDERS.append(child)
    assert child.stdout.readline().strip() == "holding"
    return folder


@pytest.fixture(autouse=True)
def _release_lock_holders():
    yield
    while _LOCK_HOLDERS:
        child = _LOCK_HOLDERS.pop()
        child.stdin.close()
        child.wait(timeout=60)


def _recorded_run(ws: Path, **sections: dict) -> Path:
    """An earlier run (`_run_folder`) whose config.json records ``sections`` instead of the test config's."""
    from texkit.config import parse_config

    run = _run_folder(ws)
    (run / "config.json").write_text(parse_config(_config(ws, **sections)).model_dump_json(indent=2))
    return run


def _verified_run_folder(ws: Path, damage: str) -> Path:
    """A run whose only checkpoint (format 3: every file hashed) has its adapter weights ``damage``d."""
    import hashlib

    run = _run_folder(ws)
    ckpt = run / "checkpoints" / "step_000001"
    weights = ckpt / "adapter" / "w.safetensors"
    weights.write_bytes(b"weights" * 100)
    files = {name: hashlib.sha256((ckpt / name).read_bytes()).hexdigest() for name in ("state.pt", "adapter/w.safetensors")}
    (ckpt / "meta.json").write_text(json.dumps({"format": 3, "step": 1, "run_id": "earlier", "files": files}))
    if damage == "deleted":
        weights.unlink()
    else:
        weights.write_bytes(b"weightz" + weights.read_bytes()[7:])
    return run


T = ["train", "--dry-run"]  # + config

CASES += [
    # -- one writer per folder -------------------------------------------------------------
    Case("train-folder-locked", "train", "output", lambda ws: (_held(ws / "run") and ["train", write_config(ws)], ["in use", "pid", "host"])),
    Case("generate-folder-locked", "generate", "output", lambda ws: (_held(ws / "gen") and ["generate", write_config(ws), "--out", ws / "gen"], ["in use", "gen"])),
    # -- checkpoints verified whole ----------------------------------------------------------
    Case("train-resume-adapter-bit-flipped", "train", "weights", lambda ws: (_verified_run_folder(ws, "flipped") and ["train", write_config(ws), "--resume"], ["step_000001", "adapter/w.safetensors", "checksum"])),
    Case("train-resume-adapter-deleted", "train", "weights", lambda ws: (_verified_run_folder(ws, "deleted") and ["train", write_config(ws), "--resume"], ["step_000001", "adapter/w.safetensors", "missing"])),
    # -- what a resume may change ------------------------------------------------------------
    Case("train-resume-mesh-changed", "train", "config", lambda ws: (_recorded_run(ws, mesh={"path": "cube"}) and ["train", write_config(ws), "--resume"], ["mesh.path", "cube", "--allow-config-change"])),
    Case("train-resume-prompts-changed", "train", "config", lambda ws: (_recorded_run(ws, prompts={"text": ["a jar"]}) and ["train", write_config(ws), "--resume"], ["prompts.text", "a jar"])),
    Case("train-resume-rewards-changed", "train", "config", lambda ws: (_recorded_run(ws, rewards={"symmetry": {"weight": 1.0}}) and ["train", write_config(ws), "--resume"], ["rewards.symmetry.weight", "rewards.curvature_color.weight"])),
    Case("train-resume-batch-changed", "train", "config", lambda ws: (_recorded_run(ws, training={"steps": 1, "batch_size": 2}) and ["train", write_config(ws), "--resume"], ["training.batch_size 2 -> 1"])),
    Case("train-resume-lora-shape-changed", "train", "config", lambda ws: (_recorded_run(ws, generator={"name": "tiny", "options": {"steps": 1, "seed": 0, "lora_rank": 8}}) and ["train", write_config(ws), "--resume"], ["generator.options.lora_rank"])),
    Case("train-allow-change-without-resume", "train", "option", lambda ws: (["train", write_config(ws), "--allow-config-change"], ["--allow-config-change", "--resume"])),
    # -- --dry-run bounds and values that are not numbers -------------------------------------
    Case("train-dry-run-texture-absurd", "train", "config", lambda ws: ([*T, write_config(ws), "--set", "texture.size=1000000"], ["texture.size 1000000", "GiB"])),
    Case("train-dry-run-render-absurd", "train", "config", lambda ws: ([*T, write_config(ws), "--set", "texture.render_size=1000000"], ["texture.render_size 1000000"])),
    Case("train-dry-run-batch-absurd", "train", "config", lambda ws: ([*T, write_config(ws), "--set", "training.batch_size=1000000000"], ["training.batch_size"])),
    Case("train-dry-run-steps-absurd", "train", "config", lambda ws: ([*T, write_config(ws), "--set", "training.steps=10000000000"], ["training.steps", "years"])),
    Case("train-dry-run-denoising-steps-absurd", "train", "config", lambda ws: ([*T, write_config(ws), "--set", "generator.options.steps=100000000"], ["generator.options.steps", "years"])),
    Case("generate-strength-nan", "generate", "config", lambda ws: (["generate", write_config(ws), "--set", "texture.strength=nan"], ["texture.strength", "nan is not a number"])),
    Case("train-reward-weight-inf", "train", "config", lambda ws: (["train", write_config(ws), "--set", "rewards.curvature_color.weight=inf"], ["rewards.curvature_color.weight", "not a finite number"])),
    Case("train-lr-nan", "train", "config", lambda ws: (["train", write_config(ws), "--set", "training.lr=nan"], ["training.lr", "not a number"])),
]
# ================================ end of issue 26, runs ========================================


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A folder with earlier outputs that no failing command may touch."""
    ws = tmp_path / "ws"
    (ws / "out").mkdir(parents=True)
    _png(ws / "out" / "views.png", (16, 16))
    (ws / "notes.txt").write_text("a user's file\n")
    return ws


def test_corpus_is_big_and_covers_every_command_and_input_kind():
    assert len(CASES) >= 80
    assert {c.command for c in CASES} >= {"render", "score", "generate", "train", "plugins", "new-reward"}
    assert {c.kind for c in CASES} >= {"mesh", "texture", "config", "option", "output", "weights"}
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_line_and_exit_2(case, workspace, run_texkit, contract, monkeypatch):
    monkeypatch.chdir(workspace)
    argv, mentions = case.build(workspace)
    before = contract.snapshot(workspace)
    result = run_texkit(argv)
    after = contract.snapshot(workspace)
    contract.assert_clean_error(result, [str(m) for m in mentions], before, after)
    assert not (workspace / "PWNED").exists()


# -- inputs that are accepted, with a one-line notice -------------------------------------
def test_latin1_comment_in_obj_loads(tmp_path, run_texkit):
    mesh = tmp_path / "latin.obj"
    mesh.write_bytes(b"# mod\xe8le cr\xe9\xe9 par l'\xe9quipe\n" + TETRA.encode())
    result = run_texkit(["render", mesh, "--out", tmp_path / "out", "--views", "1", "--size", "16"])
    assert result.code == 0, result.stderr
    assert (tmp_path / "out" / "views.png").exists()


@pytest.mark.parametrize(
    ("size", "mode", "notice"),
    [((100, 37), "RGB", "resized to 100x100"), ((32, 32), "RGBA", "alpha"), ((32, 32), "L", "converted to RGB"), ((4, 4), "RGB", "resized to 16x16")],
)
@pytest.mark.parametrize("reward", ["curvature_color", "symmetry"])
def test_texture_of_another_size_or_mode_is_converted_with_a_notice(tmp_path, run_texkit, size, mode, notice, reward):
    tex = _png(tmp_path / "t.png", size, mode)
    result = run_texkit(["score", "demo", tex, "--reward", reward, "--size", "32", "--json"])
    assert result.code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("texkit: note:") and notice in notes[0] and "t.png" in notes[0], result.stderr
    assert reward in json.loads(result.stdout)


def test_ctrl_c_during_start_up_is_one_line_exit_130(tmp_path, run_texkit, monkeypatch):
    import texkit.commands.rendering as rendering

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(rendering, "load_mesh", interrupted)
    result = run_texkit(["render", "demo", "--out", tmp_path / "out"])
    assert result.code == 130 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [result.stderr.strip()]
    assert "interrupted" in result.stderr


def test_pickled_payload_is_refused_by_the_loader(tmp_path):
    """The loader itself (not only the CLI) refuses a checkpoint that would run code, in one line."""
    from texkit.checkpoint import CheckpointError, load_state

    folder = tmp_path / "step_000001"
    folder.mkdir()
    (folder / "state.pt").write_bytes(_pickled_state(tmp_path))
    with pytest.raises(CheckpointError) as info:
        load_state(folder)
    assert "\n" not in str(info.value) and "refused" in str(info.value)
    assert not (tmp_path / "PWNED").exists()


# -- the helper itself catches a regression -------------------------------------------------
def test_helper_catches_a_traceback_regression(tmp_path, run_texkit, contract, monkeypatch):
    """Deliberately break one message (an internal error escapes): the contract check must fail."""
    import texkit.commands.rendering as rendering

    def broken(*args, **kwargs):
        raise ValueError("internal bug")

    monkeypatch.setattr(rendering, "load_mesh", broken)
    result = run_texkit(["render", "demo", "--out", tmp_path / "out"])
    assert "Traceback" in result.stderr and result.code == 1
    with pytest.raises(AssertionError, match="traceback"):
        contract.assert_clean_error(result, ["demo"])


def test_helper_catches_two_lines_a_missing_name_and_a_changed_file(contract):
    Result, assert_clean_error = contract.Result, contract.assert_clean_error

    with pytest.raises(AssertionError, match="one 'texkit: error:' line"):
        assert_clean_error(Result(2, "", "texkit: error: bad; pass x\nmore\n"), [])
    with pytest.raises(AssertionError, match="not named"):
        assert_clean_error(Result(2, "", "texkit: error: bad thing; pass x\n"), ["--size"])
    with pytest.raises(AssertionError, match="no advice"):
        assert_clean_error(Result(2, "", "texkit: error: --size is bad\n"), ["--size"])
    with pytest.raises(AssertionError, match="changed: a"):
        assert_clean_error(Result(2, "", "texkit: error: --size bad; pass 16\n"), ["--size"], {"a": ("1", 1)}, {"a": ("2", 1)})


def _case(case_id: str) -> Case:
    return next(c for c in CASES if c.id == case_id)


@pytest.mark.parametrize(
    ("case_id", "breakage", "caught"),
    [
        ("score-glb-embedded-image-not-an-image", "white-again", "exit 0"),
        ("score-glb-embedded-image-pixels-broken", "white-again", "exit 0"),
        ("score-glb-embedded-image-not-an-image", "vague", "'does not decode' not named"),
        ("score-texture-float-nan", "nan-accepted", "exit 0"),
    ],
)
def test_corpus_catches_a_broken_image_message(case_id, breakage, caught, workspace, run_texkit, contract, monkeypatch):
    """Deliberately break what the image cases check (the corrupt GLB scored white again, a vague
    message that does not say what is wrong, NaN texels taken as they are): the case must then fail."""
    import texkit.geometry.mesh_texture as mesh_texture
    import texkit.imageio as imageio

    if breakage == "white-again":
        monkeypatch.setattr(mesh_texture._GltfFile, "problem", lambda self, path: "")
        monkeypatch.setattr(mesh_texture._GltfFile, "names_texture", lambda self, name: False)
    elif breakage == "vague":
        monkeypatch.setattr(mesh_texture._GltfFile, "problem", lambda self, path: "something is wrong with an image")
    else:
        monkeypatch.setattr(imageio, "image_to_rgb", lambda image, label, notify=None, use_alpha=False: (np.nan_to_num(np.asarray(image.convert("RGB"), np.float32) / 255), None))
    monkeypatch.chdir(workspace)
    argv, mentions = _case(case_id).build(workspace)
    result = run_texkit(argv)
    with pytest.raises(AssertionError, match=caught):
        contract.assert_clean_error(result, [str(m) for m in mentions])


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("g16.png", ["16-bit grayscale"]),
        ("rgb16.png", ["RGB with 16 bits per channel"]),
        ("la16.png", ["grayscale with alpha with 16 bits per channel", "alpha ignored"]),
        ("f.tif", ["32-bit float grayscale"]),
        ("p.png", ["palette", "alpha ignored"]),
        ("c.jpg", ["CMYK"]),
        ("one.png", ["1-bit"]),
    ],
)
def test_deep_and_unusual_images_are_accepted_with_one_notice(tmp_path, run_texkit, png16, name, words):
    """16-bit, float, palette, CMYK and 1-bit textures are scored (their values kept, see
    tests/core/test_image_decoding.py) with one line saying how each was converted."""
    rng = np.random.default_rng(4)
    path = tmp_path / name
    if name == "g16.png":
        Image.fromarray((rng.random((32, 32)) * 65535).astype(np.uint16)).save(path)
    elif name in ("rgb16.png", "la16.png"):
        png16(path, (rng.random((32, 32, 3 if name == "rgb16.png" else 2)) * 65535).astype(np.uint16))
    elif name == "f.tif":
        Image.fromarray(rng.random((32, 32)).astype(np.float32)).save(path)
    elif name == "p.png":
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).quantize(8).save(path, transparency=0)
    elif name == "c.jpg":
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).convert("CMYK").save(path)
    else:
        Image.fromarray(rng.random((32, 32)) > 0.5).save(path)
    result = run_texkit(["score", "demo", path, "--reward", "symmetry", "--size", "32", "--json"])
    assert result.code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("texkit: note:") and name in notes[0] and all(w in notes[0] for w in words), notes
    assert json.loads(result.stdout)["symmetry"]["value"] < 0  # not a constant (white) texture
