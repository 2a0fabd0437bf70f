"""The xatlas unwrap of a mesh without UVs is cached on disk, keyed by the raw positions and faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from texkit.geometry import unwrap as unwrap_module
from texkit.geometry.mesh import Mesh


def _no_uv_obj(folder: Path) -> Path:
    """An icosphere (320 faces) written as an OBJ with no ``vt`` lines."""
    sphere = trimesh.creation.icosphere(subdivisions=2)
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in sphere.vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in sphere.faces]
    path = folder / "ball.obj"
    path.write_text("\n".join(lines) + "\n")
    return path


def _forbid_xatlas(monkeypatch: pytest.MonkeyPatch) -> None:
    import xatlas

    def fail(*args, **kwargs):
        raise AssertionError("xatlas ran although the unwrap was cached")

    monkeypatch.setattr(xatlas, "parametrize", fail)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("TEXKIT_CACHE_DIR", str(folder))
    return folder


def test_second_load_reads_the_unwrap_from_the_cache(tmp_path, cache_dir, monkeypatch):
    path = _no_uv_obj(tmp_path)
    first = Mesh.load(path)
    entries = list((cache_dir / "unwrap").glob("*.pt"))
    assert len(entries) == 1
    _forbid_xatlas(monkeypatch)
    again = Mesh.load(path)  # a fresh process would do this
    assert torch.equal(first.uvs, again.uvs) and torch.equal(first.uv_faces, again.uv_faces)
    assert first.content_hash == again.content_hash
    # another normalisation of the same file shares the entry (the key is the raw input)
    Mesh.load(path, normalize="extent")
    assert list((cache_dir / "unwrap").glob("*.pt")) == entries


def test_other_geometry_gets_its_own_entry(cache_dir):
    sphere = trimesh.creation.icosphere(subdivisions=1)
    Mesh.from_arrays(sphere.vertices, sphere.faces)
    Mesh.from_arrays(sphere.vertices * 1.01, sphere.faces)
    assert len(list((cache_dir / "unwrap").glob("*.pt"))) == 2


def test_a_corrupt_entry_is_recomputed(tmp_path, cache_dir):
    path = _no_uv_obj(tmp_path)
    first = Mesh.load(path)
    (entry,) = (cache_dir / "unwrap").glob("*.pt")
    entry.write_bytes(b"not a torch file")
    again = Mesh.load(path)
    assert torch.equal(first.uvs, again.uvs) and torch.equal(first.uv_faces, again.uv_faces)
    assert entry.stat().st_size > 100  # rewritten


def test_an_entry_that_does_not_fit_the_mesh_is_recomputed(tmp_path, cache_dir):
    path = _no_uv_obj(tmp_path)
    first = Mesh.load(path)
    (entry,) = (cache_dir / "unwrap").glob("*.pt")
    torch.save({"uvs": torch.zeros(3, 2, dtype=torch.float64), "uv_faces": torch.zeros(1, 3, dtype=torch.long)}, entry)
    again = Mesh.load(path)
    assert torch.equal(first.uvs, again.uvs)


def test_large_unwrap_announces_itself_once(tmp_path, cache_dir, monkeypatch, capsys):
    monkeypatch.setattr(unwrap_module, "NOTICE_FACES", 100)
    path = _no_uv_obj(tmp_path)
    Mesh.load(path)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("texkit: note: unwrapping UVs of 320 faces with xatlas (cached"), (
        lines
    )
    Mesh.load(path)
    assert capsys.readouterr().err == ""  # served from the cache: silent


def test_small_unwrap_is_silent(tmp_path, cache_dir, capsys):
    Mesh.load(_no_uv_obj(tmp_path))
    assert capsys.readouterr().err == ""


def test_an_unwritable_cache_still_unwraps(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TEXKIT_CACHE_DIR", str(blocker))
    mesh = Mesh.load(_no_uv_obj(tmp_path))
    assert mesh.uvs.shape[1] == 2 and mesh.uv_faces.shape == mesh.faces.shape
    err = capsys.readouterr().err
    assert "could not cache the UV unwrap" in err and "TEXKIT_CACHE_DIR" in err and "Traceback" not in err


def test_cache_dir_false_neither_reads_nor_writes(tmp_path, cache_dir):
    sphere = trimesh.creation.icosphere(subdivisions=1)
    uvs, uv_faces = unwrap_module.unwrap(np.asarray(sphere.vertices), np.asarray(sphere.faces), cache_dir=False)
    assert uv_faces.shape == (len(sphere.faces), 3) and uvs.shape[1] == 2
    assert not cache_dir.exists()
