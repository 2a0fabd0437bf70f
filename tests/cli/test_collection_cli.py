"""``texkit train`` on a folder of meshes (issue 27): a broken mesh among 20 stops the run before
anything is built or written, with one line naming the broken file; a healthy folder trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TETRA = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"


def _folder(ws: Path, count: int = 20, broken: str | None = "mesh_13.obj") -> Path:
    """``count`` small OBJ meshes (tetrahedra of different sizes); ``broken`` names a face past the last vertex."""
    folder = ws / "meshes"
    folder.mkdir(parents=True)
    for i in range(count):
        name = f"mesh_{i:02d}.obj"
        text = TETRA.replace("v 1 0 0", f"v {1 + i / 10} 0 0")
        (folder / name).write_text(text + ("f 1 2 9\n" if name == broken else ""))
    return folder


def _config(ws: Path, folder: Path, steps: int = 1) -> Path:
    path = ws / "run.toml"
    path.write_text(
        f"""device = "cpu"
[mesh]
path = {json.dumps(str(folder))}
[prompts]
text = ["a painted {{name}}"]
[generator]
name = "tiny"
options = {{ steps = 1, seed = 0 }}
[cameras.paint]
elevation = [-20]
azimuth = [0]
[cameras.reward]
elevation = [-20]
azimuth = [90]
[texture]
size = 32
render_size = 32
[rewards.curvature_color]
tau = -0.5
[training]
steps = {steps}
checkpoint_every = {steps}
before_after = false
[output]
dir = {json.dumps(str(ws / "run"))}
grid_views = 1
"""
    )
    return path


def test_a_broken_mesh_among_20_is_one_line_naming_it_exit_2_nothing_written(tmp_path, run_texkit, contract, monkeypatch):
    ws = tmp_path / "ws"
    folder = _folder(ws)
    config = _config(ws, folder)
    monkeypatch.chdir(ws)
    built = []
    from texkit.session import Session

    monkeypatch.setattr(Session, "build", classmethod(lambda cls, *a, **k: built.append(1)))  # must not be reached
    before = contract.snapshot(ws)
    result = run_texkit(["train", config])
    after = contract.snapshot(ws)
    line = contract.assert_clean_error(result, ["mesh_13.obj", "mesh 14 of 20"], before, after)
    assert "face" in line.lower()
    assert not (ws / "run").exists() and built == []  # nothing written, no model built


@pytest.mark.slow
def test_a_healthy_folder_trains_every_mesh_in_turn(tmp_path, run_texkit):
    ws = tmp_path / "ws"
    folder = _folder(ws, count=3, broken=None)
    result = run_texkit(["train", _config(ws, folder, steps=3)])
    assert result.code == 0, result.stderr
    lines = [json.loads(line) for line in (ws / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["meshes"] for m in lines] == [["mesh_00"], ["mesh_01"], ["mesh_02"]]
    assert [m["prompt"] for m in lines] == ["a painted mesh_00", "a painted mesh_01", "a painted mesh_02"]
    assert (ws / "run" / "adapter").is_dir() and (ws / "run" / "report.html").is_file()
