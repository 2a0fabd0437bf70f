"""Make the pictures of docs/guide/refine-a-texture.md with the tiny generator on the CPU.

Runs the guide's commands (``texkit generate`` with ``texture.init``, ``texture.mode``,
``texture.strength``, ``texture.mask``; ``texkit render`` for the input) in a work folder and
composes small labelled PNGs (palette-quantised) into ``docs/images/refine-a-texture/``::

    .venv/bin/python docs/scripts/refine_a_texture.py            # about 3 min on 2 CPU cores

The tiny generator has random weights, so what it paints is coloured noise; the pictures show
what the modes keep and change, not what a real model paints.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[2]

CONFIG = """\
device = "cpu"

[mesh]
path = "demo"

[prompts]
text = ["a ceramic vase with blue glaze"]

[generator]
name = "tiny"

[generator.options]
steps = 4

[texture]
size = 128
render_size = 128

[output]
grid_views = 4
"""

SIZE = 128


def texkit(*args: str, cwd: Path) -> None:
    """Run one ``texkit`` command as the guide shows it (printed first)."""
    print("$ texkit " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "texkit.commands.cli", *args], cwd=cwd, check=True)


def pattern() -> np.ndarray:
    """The hand-made input: ``(T, T, 3)`` uint8 bands around the vase (rows) shading left to right."""
    rows = np.arange(SIZE)[:, None] * np.ones((1, SIZE))
    cols = np.ones((SIZE, 1)) * np.arange(SIZE)[None, :]
    band = (rows // 16) % 2
    red = np.where(band, 0.85, 0.15) * 0.7 + 0.3 * cols / SIZE
    green = np.where(band, 0.55, 0.35) + 0.2 * np.sin(cols / SIZE * 2 * np.pi)
    blue = np.where(band, 0.2, 0.8)
    return (np.clip(np.stack((red, green, blue), -1), 0, 1) * 255).round().astype(np.uint8)


def label_row(label: str, *images: Path, height: int = SIZE) -> Image.Image:
    """One row: a text label, then the images scaled to ``height`` px high, 6 px apart."""
    tiles = [Image.open(p).convert("RGB") for p in images]
    tiles = [t.resize((round(t.width * height / t.height), height), Image.NEAREST) for t in tiles]
    width = 150 + sum(t.width + 6 for t in tiles)
    row = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(row).multiline_text((6, height // 2 - 14), label, fill="black", font=ImageFont.load_default())
    x = 150
    for tile in tiles:
        row.paste(tile, (x, 0))
        x += tile.width + 6
    return row


def stack(rows: list[Image.Image], path: Path) -> None:
    """Rows one under the other, saved as a 128-colour PNG (small files)."""
    width = max(r.width for r in rows)
    out = Image.new("RGB", (width, sum(r.height + 6 for r in rows) - 6), "white")
    y = 0
    for row in rows:
        out.paste(row, (0, y))
        y += row.height + 6
    path.parent.mkdir(parents=True, exist_ok=True)
    out.quantize(128, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "refine", help="work folder (replaced)")
    parser.add_argument("--images", type=Path, default=REPO / "docs" / "images" / "refine-a-texture")
    args = parser.parse_args()
    work: Path = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "refine.toml").write_text(CONFIG)

    # the input: a texture painted by hand (any PNG laid out for the mesh's UVs)
    Image.fromarray(pattern()).save(work / "input.png")
    texkit("render", "demo", "--texture", "input.png", "--out", "input", "--views", "4", "--size", str(SIZE), cwd=work)

    # refine at three strengths (another seed than the default, so strength 1 paints other noise)
    for strength in ("0.25", "0.5", "1.0"):
        texkit(
            "generate", "refine.toml", "--out", f"refine-{strength}", "--seed", "7",
            "--set", 'texture.init="input.png"', "--set", 'texture.mode="refine"', "--set", f"texture.strength={strength}",
            cwd=work,
        )

    # inpaint: the texels of a band made transparent are painted, the rest kept; a mask adds a square
    holed = np.concatenate([pattern(), np.full((SIZE, SIZE, 1), 255, np.uint8)], axis=-1)
    holed[48:80, :, :] = (255, 0, 255, 0)  # transparent (magenta only to see it in the render)
    Image.fromarray(holed, "RGBA").save(work / "holed.png")
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[20:40, 40:80] = 255  # white: repaint although painted
    Image.fromarray(mask, "L").save(work / "mask.png")
    texkit("render", "demo", "--texture", "holed.png", "--out", "holed", "--views", "4", "--size", str(SIZE), cwd=work)
    texkit(
        "generate", "refine.toml", "--out", "inpaint", "--seed", "7",
        "--set", 'texture.init="holed.png"', "--set", 'texture.mode="inpaint"', "--set", 'texture.mask="mask.png"',
        cwd=work,
    )

    # the mesh.glb that generate wrote, refined from its own texture
    texkit(
        "generate", "refine.toml", "--out", "from-glb", "--seed", "7",
        "--set", 'mesh.path="refine-0.25/mesh.glb"', "--set", 'texture.init="mesh"', "--set", 'texture.mode="refine"',
        "--set", "texture.strength=0.25",
        cwd=work,
    )

    images: Path = args.images
    stack(
        [
            label_row("input.png", work / "input.png", work / "input" / "views.png"),
            label_row("refine\nstrength 0.25", work / "refine-0.25" / "texture.png", work / "refine-0.25" / "views.png"),
            label_row("refine\nstrength 0.5", work / "refine-0.5" / "texture.png", work / "refine-0.5" / "views.png"),
            label_row("refine\nstrength 1\n(from scratch)", work / "refine-1.0" / "texture.png", work / "refine-1.0" / "views.png"),
        ],
        images / "refine.png",
    )
    stack(
        [
            label_row("holed.png\n(magenta: alpha 0)", work / "holed.png", work / "holed" / "views.png"),
            label_row("mask.png\n(white: repaint)", work / "mask.png"),
            label_row("inpaint", work / "inpaint" / "texture.png", work / "inpaint" / "views.png"),
        ],
        images / "inpaint.png",
    )
    stack(
        [
            label_row("refine-0.25/\nmesh.glb", work / "refine-0.25" / "texture.png", work / "refine-0.25" / "views.png"),
            label_row("init = \"mesh\"\nstrength 0.25", work / "from-glb" / "texture.png", work / "from-glb" / "views.png"),
        ],
        images / "from-glb.png",
    )


if __name__ == "__main__":
    main()
