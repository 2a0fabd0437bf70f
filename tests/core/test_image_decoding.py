"""Images are read with the values their files hold (issue 26): 16-bit grayscale is not white,
16-bit colour is within one 8-bit step, float grayscale is taken as it is, palette / grey+alpha /
1-bit / CMYK are converted like Pillow converts them; each conversion is one notice, and values
texkit cannot use are one-line errors. The same decoder reads a texture file, ``texture.init``, an
OBJ's ``map_Kd`` and a GLB's embedded image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from texkit.config import TextureConfig
from texkit.errors import TexkitError
from texkit.geometry.mesh import Mesh
from texkit.geometry.primitives import load_mesh
from texkit.imageio import read_image, read_texture
from texkit.initial_texture import load_initial_texture

SIZE = 32
QUAD_OBJ = "mtllib q.mtl\nusemtl m\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nf 1/1 2/2 3/3\nf 1/1 3/3 4/4\n"


def _gradient16() -> np.ndarray:
    """``(SIZE, SIZE)`` uint16: a diagonal ramp over the whole 16-bit range (every value odd, not k * 257)."""
    ramp = np.add.outer(np.arange(SIZE), np.arange(SIZE)) / (2 * SIZE - 2)
    return np.round(ramp * 65534).astype(np.uint16) | 1


def _read(path: Path) -> tuple[np.ndarray, list[str]]:
    notes: list[str] = []
    return read_texture(path, notes.append).numpy(), notes


def test_16_bit_grey_png_keeps_its_values_not_white(tmp_path):
    values = _gradient16()
    Image.fromarray(values).save(tmp_path / "g16.png")  # Pillow writes mode I;16 as a 16-bit grey PNG
    texture, notes = _read(tmp_path / "g16.png")
    expected = (values / 65535.0).astype(np.float32)
    np.testing.assert_allclose(texture, np.repeat(expected[..., None], 3, -1), atol=1e-7)
    assert texture.mean() < 0.6  # was 254.5 / 255: everything above 255 / 65535 clipped to white
    assert len(notes) == 1 and "g16.png" in notes[0] and "16-bit grayscale" in notes[0], notes
    # its 8-bit copy reads within one 8-bit step
    Image.fromarray(np.round(values / 257.0).astype(np.uint8)).save(tmp_path / "g8.png")
    assert np.abs(_read(tmp_path / "g8.png")[0] - texture).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize(("channels", "layout"), [(3, "RGB"), (4, "RGBA"), (2, "grayscale with alpha")])
def test_16_bit_colour_pngs_read_within_one_8_bit_step(tmp_path, png16, channels, layout):
    values = (np.random.default_rng(channels).random((SIZE, SIZE, channels)) * 65535).astype(np.uint16)
    texture, notes = _read(png16(tmp_path / "c16.png", values))
    colour = values[..., :3] if channels >= 3 else np.repeat(values[..., :1], 3, -1)
    assert np.abs(texture - colour / 65535.0).max() <= 1 / 255 + 1e-6  # the high byte: below one 8-bit step
    assert len(notes) == 1 and layout in notes[0] and "16 bits per channel" in notes[0], notes
    if channels in (2, 4):
        assert "alpha" in notes[0]


def _palette_with_transparency(path: Path) -> Image.Image:
    image = Image.fromarray((np.random.default_rng(1).random((SIZE, SIZE, 3)) * 255).astype(np.uint8)).quantize(8)
    image.info["transparency"] = 0
    image.save(path, transparency=0)
    return Image.open(path)


@pytest.mark.parametrize(
    ("name", "make", "words"),
    [
        ("p.png", lambda p: _palette_with_transparency(p), ["palette", "alpha ignored"]),
        ("la.png", lambda p: Image.fromarray((np.random.default_rng(2).random((SIZE, SIZE, 2)) * 255).astype(np.uint8), "LA"), ["grayscale with alpha"]),
        ("bits.png", lambda p: Image.fromarray(np.random.default_rng(3).random((SIZE, SIZE)) > 0.5), ["1-bit"]),
        ("cmyk.jpg", lambda p: Image.new("CMYK", (SIZE, SIZE), (0, 255, 128, 30)), ["CMYK", "without a colour profile"]),
    ],
    ids=["palette+transparency", "grey+alpha", "1-bit", "cmyk"],
)
def test_8_bit_modes_are_converted_like_pillow_with_one_notice(tmp_path, name, make, words):
    path = tmp_path / name
    image = make(path)
    if not path.exists():
        image.save(path)
    texture, notes = _read(path)
    with Image.open(path) as again:
        expected = np.asarray(again.convert("RGBA").convert("RGB") if again.mode in ("P", "LA") else again.convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_array_equal(texture, expected)
    assert len(notes) == 1 and name in notes[0] and "converted to RGB" in notes[0] and all(w in notes[0] for w in words), notes


def test_float_grey_tiff_is_read_as_its_values_and_clipped_to_0_1(tmp_path):
    values = np.linspace(-0.5, 1.5, SIZE * SIZE, dtype=np.float32).reshape(SIZE, SIZE)
    Image.fromarray(values).save(tmp_path / "f.tif")
    texture, notes = _read(tmp_path / "f.tif")
    np.testing.assert_allclose(texture[..., 0], np.clip(values, 0, 1), atol=1e-7)
    outside = int(((values < 0) | (values > 1)).sum())
    assert len(notes) == 1 and "32-bit float grayscale" in notes[0] and f"{outside} texels outside [0, 1] clipped" in notes[0], notes


def test_32_bit_integer_grey_in_16_bit_range_reads_as_16_bit(tmp_path):
    values = _gradient16().astype(np.int32)
    Image.fromarray(values, "I").save(tmp_path / "i.tif")
    texture, notes = _read(tmp_path / "i.tif")
    np.testing.assert_allclose(texture[..., 1], values / 65535.0, atol=1e-7)
    assert len(notes) == 1 and "32-bit integer" in notes[0]


@pytest.mark.parametrize(
    ("name", "values", "mode", "words"),
    [
        ("nan.tif", np.full((8, 8), np.nan, np.float32), "F", ["nan.tif", "NaN"]),
        ("big.tif", np.full((8, 8), 70000, np.int32), "I", ["big.tif", "65535"]),
    ],
)
def test_values_texkit_cannot_use_are_one_line_errors(tmp_path, name, values, mode, words):
    Image.fromarray(values, mode).save(tmp_path / name)
    for read in (read_texture, read_image):
        with pytest.raises(TexkitError) as info:
            read(tmp_path / name)
        assert "\n" not in str(info.value) and all(w in str(info.value) for w in words), str(info.value)


def test_texture_init_reads_a_16_bit_png_with_its_values(tmp_path):
    values = _gradient16()
    Image.fromarray(values).save(tmp_path / "init16.png")
    notes: list[str] = []
    config = TextureConfig(size=SIZE, init=str(tmp_path / "init16.png"), mode="refine", strength=0.5)
    initial = load_initial_texture(config, load_mesh("demo"), notes.append)
    np.testing.assert_allclose(initial.image[..., 0].numpy(), values / 65535.0, atol=1e-6)
    assert len(notes) == 1 and "texture.init" in notes[0] and "16-bit grayscale" in notes[0], notes


def test_map_kd_16_bit_png_is_the_mesh_texture_with_its_values(tmp_path):
    values = _gradient16()
    Image.fromarray(values).save(tmp_path / "k16.png")
    (tmp_path / "q.mtl").write_text("newmtl m\nmap_Kd k16.png\n")
    (tmp_path / "q.obj").write_text(QUAD_OBJ)
    notes: list[str] = []
    mesh = Mesh.load(tmp_path / "q.obj", notify=notes.append)
    np.testing.assert_allclose(mesh.texture[..., 2].numpy(), values / 65535.0, atol=1e-7)
    assert len(notes) == 1 and "q.obj" in notes[0] and "16-bit grayscale" in notes[0], notes


def test_glb_embedded_16_bit_png_is_the_mesh_texture_with_its_values(tmp_path):
    values = _gradient16()
    quad = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(values))
    quad.visual = trimesh.visual.TextureVisuals(uv=[[0, 0], [1, 0], [1, 1], [0, 1]], material=material)
    (tmp_path / "q16.glb").write_bytes(quad.export(file_type="glb"))
    mesh = Mesh.load(tmp_path / "q16.glb")
    np.testing.assert_allclose(mesh.texture[..., 0].numpy(), values / 65535.0, atol=1e-7)
    assert torch.equal(mesh.texture[..., 0], mesh.texture[..., 1])


def test_map_kd_with_options_is_read_and_clamp_on_keeps_the_image(tmp_path):
    """trimesh reads ``map_Kd -clamp on t.png`` as one file name; texkit reads the options and the file."""
    image = (np.random.default_rng(5).random((8, 8, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "t.png")
    (tmp_path / "q.mtl").write_text("newmtl m\nmap_Kd -clamp on t.png\n")
    (tmp_path / "q.obj").write_text(QUAD_OBJ.replace("vt 1 1\n", "vt 1.2 1.1\n"))  # one UV outside [0, 1]
    notes: list[str] = []
    mesh = Mesh.load(tmp_path / "q.obj", notify=notes.append)
    assert notes == []  # clamped: no repeat to unroll, the image and the file's UVs as they are
    assert torch.equal(mesh.texture, torch.from_numpy(image.astype(np.float32) / 255))
    assert float(mesh.uvs.max()) == pytest.approx(1.2)
