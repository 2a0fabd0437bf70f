"""texkit's own GLB scores like its source (issue 26): OBJ -> `texkit generate` (tiny generator) ->
mesh.glb -> `texkit score mesh.glb` equals `texkit score source.obj texture.png` for every geometry
reward, within 1e-4 relative, through the real GLB writer and reader.

Before issue 26 three things made them differ: a GLB's vertices split along UV seams (or an OBJ's
along its normals) changed per-vertex curvature and its min-max scaling; the GLB's default
sampler repeats the texture, so a mesh whose UVs leave [0, 1] (the cow) was read back as an
unrolled atlas; and texels on shared UV edges paired one face with another's barycentrics.
The meshes: the shared cow, rabbit and balloon, and a hold-out shape of the kind that showed it:
the balloon written flat-shaded (per-face normals, no UVs: trimesh splits every corner, texkit
unwraps it) — an OBJ whose analyses used to see a triangle soup.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from texkit.geometry.mesh import Mesh

GEOMETRY_REWARDS = ["curvature_color", "curvature_alignment", "feature_emphasis", "symmetry"]


def _flat_shaded_obj(source: Path, out: Path) -> Path:
    """``source`` written with one normal per face and no UVs (``f v//vn``)."""
    mesh = Mesh.load(source, normalize="none")
    verts, faces = mesh.vertices.double().numpy(), mesh.faces.numpy()
    normals = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    lines = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in verts] + [f"vn {x:.6f} {y:.6f} {z:.6f}" for x, y, z in normals]
    lines += ["f " + " ".join(f"{v + 1}//{i + 1}" for v in face) for i, face in enumerate(faces)]
    out.write_text("\n".join(lines) + "\n")
    return out


def _scores(run_texkit, argv: list) -> dict[str, float]:
    result = run_texkit(["score", *argv, *[a for r in GEOMETRY_REWARDS for a in ("--reward", r)], "--json"])
    assert result.code == 0, result.stderr
    return {name: value["value"] for name, value in json.loads(result.stdout).items()}


@pytest.mark.slow  # 3-10 s per mesh on 2 busy CPU cores: one tiny generate and two scores
@pytest.mark.parametrize("name", ["cow", "rabbit", "balloon", "balloon-flat-shaded"])
def test_generated_glb_scores_like_its_png_on_the_source_obj(tmp_path, run_texkit, assets, name):
    source = assets / f"{name}.obj" if name != "balloon-flat-shaded" else _flat_shaded_obj(assets / "balloon.obj", tmp_path / "flat.obj")
    config = tmp_path / "run.toml"
    config.write_text(
        f'[mesh]\npath = "{source}"\n[prompts]\ntext = ["a painted {name}"]\n'
        '[generator]\nname = "tiny"\noptions = { steps = 1, seed = 0 }\n'
        "[cameras]\npaint = { elevation = [-20, -20], azimuth = [0, 180] }\n"
        "[texture]\nsize = 64\nrender_size = 32\n"
        f'[output]\ndir = "{tmp_path / "out"}"\ngrid_views = 1\n'
    )
    generated = run_texkit(["generate", config])
    assert generated.code == 0, generated.stderr
    own = _scores(run_texkit, [tmp_path / "out" / "mesh.glb"])
    given = _scores(run_texkit, [source, tmp_path / "out" / "texture.png"])
    for reward in GEOMETRY_REWARDS:
        assert own[reward] == pytest.approx(given[reward], rel=1e-4), (reward, own, given)
    assert len(set(given.values())) == len(GEOMETRY_REWARDS) and all(v != 0 for v in given.values())  # real, distinct scores
