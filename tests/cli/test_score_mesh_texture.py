"""`texkit score MESH` without a texture scores the mesh's own texture: the same numbers as
passing that texture's PNG, for a GLB with an embedded base-colour texture, an OBJ + MTL + PNG,
and the mesh.glb that `texkit generate` writes (read back, scored). Fixtures are built in code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from texkit.geometry.mesh import Mesh
from texkit.geometry.primitives import load_mesh
from texkit.imageio import read_image

# texture-space rewards, and one that reads renders (through the default renderer)
REWARDS = ["--reward", "symmetry", "--reward", "curvature_color"]
RENDERED = ["--reward", "jpeg_compressibility", "--param", "source=renders", "--views", "tilted_short"]


def _scores(run_texkit, argv: list) -> tuple[dict, list[str]]:
    result = run_texkit(["score", *argv, "--size", "32", "--json"])
    assert result.code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.strip()]
    assert all(line.startswith("texkit: note:") for line in notes), result.stderr
    return json.loads(result.stdout), notes


def _assert_same_scores(run_texkit, mesh: Path, png: Path, extra: list[str]) -> tuple[list[str], list[str]]:
    own, own_notes = _scores(run_texkit, [mesh, *extra])
    given, given_notes = _scores(run_texkit, [mesh, png, *extra])
    assert own == given  # the same values and metrics, to the last digit
    return own_notes, given_notes


def _demo_obj(folder: Path, image: np.ndarray, mode: str) -> tuple[Path, Path]:
    """The demo mesh as OBJ (v, vt, f v/vt) + MTL (map_Kd) + PNG."""
    mesh = load_mesh("demo")
    verts = mesh.vertices.double().numpy() * mesh.source_scale + np.asarray(mesh.source_offset)
    lines = ["mtllib demo.mtl", "usemtl paint"]
    lines += [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in verts]
    lines += [f"vt {u:.9g} {v:.9g}" for u, v in mesh.uvs.double().numpy()]
    for f, t in zip(mesh.faces.tolist(), mesh.uv_faces.tolist()):
        lines.append("f " + " ".join(f"{a + 1}/{b + 1}" for a, b in zip(f, t)))
    (folder / "demo.obj").write_text("\n".join(lines) + "\n")
    (folder / "demo.mtl").write_text("newmtl paint\nKa 1 1 1\nKd 1 1 1\nmap_Kd paint.png\n")
    Image.fromarray(image).convert(mode).save(folder / "paint.png")
    return folder / "demo.obj", folder / "paint.png"


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize(("size", "extra"), [((32, 32), REWARDS), ((20, 36), REWARDS), ((32, 32), RENDERED)], ids=["square", "not-square", "renders"])
def test_glb_with_embedded_texture_scores_like_its_png(tmp_path, run_texkit, size, extra):
    image = _image(*size)
    Image.fromarray(image).save(tmp_path / "t.png")
    load_mesh("demo").export(tmp_path / "m.glb", torch.from_numpy(image.astype(np.float32) / 255.0))
    own_notes, given_notes = _assert_same_scores(run_texkit, tmp_path / "m.glb", tmp_path / "t.png", extra)
    if size[0] != size[1]:  # made square the same way, each saying so in one line
        assert len(own_notes) == 1 and "m.glb" in own_notes[0] and "resized to 36x36" in own_notes[0]
        assert len(given_notes) == 1 and "t.png" in given_notes[0] and "resized to 36x36" in given_notes[0]
    else:
        assert own_notes == given_notes == []


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_obj_mtl_png_scores_like_its_png(tmp_path, run_texkit, mode):
    obj, png = _demo_obj(tmp_path, _image(32, 32, 1), mode)
    own_notes, given_notes = _assert_same_scores(run_texkit, obj, png, REWARDS)
    if mode == "RGBA":
        assert len(own_notes) == 1 and "alpha" in own_notes[0] and "demo.obj" in own_notes[0]
        assert len(given_notes) == 1 and "alpha" in given_notes[0]
    assert Mesh.load(obj).texture.shape == (32, 32, 3)


def test_mesh_glb_written_by_generate_reads_back_and_scores(tmp_path, run_texkit):
    from texkit.commands.generate import generate
    from texkit.config import parse_config

    out = tmp_path / "gen"
    generate(
        parse_config(
            {
                "mesh": {"path": "demo"},
                "prompts": {"text": ["a vase"]},
                "generator": {"name": "tiny", "options": {"steps": 1, "seed": 0}},
                "cameras": {"paint": {"elevation": [-20], "azimuth": [0]}},
                "texture": {"size": 32, "render_size": 32},
                "output": {"dir": str(out), "grid_views": 1},
                "device": "cpu",
            }
        )
    )
    back = Mesh.load(out / "mesh.glb")
    assert back.texture is not None and torch.equal(back.texture, read_image(out / "texture.png"))
    own_notes, _ = _assert_same_scores(run_texkit, out / "mesh.glb", out / "texture.png", [*REWARDS, "--reward", "jpeg_compressibility"])
    assert own_notes == []


def test_render_without_texture_shows_the_mesh_own_texture(tmp_path, run_texkit):
    obj, png = _demo_obj(tmp_path, _image(32, 32, seed=4), "RGB")
    own = run_texkit(["render", obj, "--out", tmp_path / "own", "--views", "2", "--size", "32"])
    given = run_texkit(["render", obj, "--texture", png, "--out", tmp_path / "given", "--views", "2", "--size", "32"])
    plain = run_texkit(["render", "demo", "--out", tmp_path / "plain", "--views", "2", "--size", "32"])
    assert own.code == given.code == plain.code == 0, own.stderr + given.stderr
    own_views, given_views = read_image(tmp_path / "own" / "views.png"), read_image(tmp_path / "given" / "views.png")
    torch.testing.assert_close(own_views, given_views)
    assert not torch.equal(own_views, read_image(tmp_path / "plain" / "views.png"))  # not the checkerboard


@pytest.mark.parametrize("how", ["TEXTURE", "map_Kd"])
def test_16_bit_grey_png_scores_within_one_8_bit_step_of_its_8_bit_copy(tmp_path, run_texkit, how):
    """Issue 26: a 16-bit grey PNG was read as all white (score -0.00096 against -0.0729).

    The rewards scored move by at most the largest colour change (weighted means of colours and of
    squared differences); feature_emphasis is left out: it min-max normalises image gradients, and
    the 8-bit copy's staircase has gradients the 16-bit ramp has not.
    """
    ramp = np.add.outer(np.arange(32), np.arange(32)) / 62.0
    deep = np.round(ramp * 65535).astype(np.uint16)
    scores = {}
    for name, image in (("g16", Image.fromarray(deep)), ("g8", Image.fromarray(np.round(deep / 257.0).astype(np.uint8)))):
        folder = tmp_path / name
        folder.mkdir()
        obj, png = _demo_obj(folder, np.zeros((4, 4, 3), np.uint8), "RGB")
        image.save(png)  # the MTL's map_Kd
        scores[name], notes = _scores(run_texkit, [obj, *([png] if how == "TEXTURE" else []), *REWARDS])
        assert len(notes) == 1 and ("16-bit grayscale" if name == "g16" else "grayscale; converted to RGB") in notes[0], notes
    for reward, value in scores["g8"].items():
        assert abs(scores["g16"][reward]["value"] - value["value"]) <= 1 / 255, (reward, scores)
    assert scores["g16"]["symmetry"]["value"] < -0.01  # not a white texture (which scores 0)
