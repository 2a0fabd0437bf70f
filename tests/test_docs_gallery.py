"""The reward gallery (docs/rewards/gallery.md, made by docs/scripts/reward_gallery.py) and the home page picture.

The script runs on a small size here (one mesh, a few steps, 24 px) and must write a page naming
every installed reward with a picture or a one-line note each; the committed gallery must cover
every installed reward (a reward installed later fails this test until the gallery is regenerated:
``docs/scripts/reward_gallery.py --only NAME``) and stay small.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from texkit.registry import get_registry

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "docs" / "images" / "reward-gallery"
PAGE = REPO / "docs" / "rewards" / "gallery.md"
FIRST_PARTY_WITH_PICTURES = {"curvature_alignment", "curvature_color", "feature_emphasis", "palette", "reference", "symmetry"}


@pytest.mark.slow
def test_script_makes_a_page_for_every_installed_reward(docs_module, tmp_path, capsys):
    gallery = docs_module("scripts/reward_gallery.py")
    images, page = tmp_path / "images", tmp_path / "rewards" / "gallery.md"
    args = ["--meshes", "demo", "--size", "24", "--steps", "3", "--views", "1", "--images", str(images), "--page", str(page), "--work", str(tmp_path / "work")]
    assert gallery.main(args) == 0
    assert "$ texkit explain curvature_color demo --out x" in capsys.readouterr().out  # the command per picture
    manifest = json.loads((images / "gallery.json").read_text())
    installed = set(get_registry().names("rewards"))
    assert set(manifest["rewards"]) == installed
    text = page.read_text()
    for name, entry in manifest["rewards"].items():
        assert f"## {name}\n" in text
        shown = [m["image"] for m in entry["meshes"] if m["image"]]
        assert shown or entry["skipped"] or any(m["notes"] for m in entry["meshes"]), name
        for image in shown:
            assert (images / image).is_file() and f"](../images/{image})" in text
    assert FIRST_PARTY_WITH_PICTURES <= {name for name, e in manifest["rewards"].items() if any(m["image"] for m in e["meshes"])}
    curvature = manifest["rewards"]["curvature_color"]["meshes"][0]
    assert curvature["final_value"] > curvature["start_value"]
    assert "not differentiable" in " ".join(manifest["rewards"]["jpeg_compressibility"]["meshes"][0]["notes"])

    # --only redoes one reward and keeps the others as recorded
    before = {name: e for name, e in manifest["rewards"].items() if name != "symmetry"}
    assert gallery.main([*args, "--only", "symmetry", "--steps", "2"]) == 0
    again = json.loads((images / "gallery.json").read_text())
    assert {name: e for name, e in again["rewards"].items() if name != "symmetry"} == before
    assert again["rewards"]["symmetry"]["meshes"][0]["steps"] == 2


def test_committed_gallery_covers_every_installed_reward_and_stays_small():
    manifest = json.loads((IMAGES / "gallery.json").read_text())
    missing = set(get_registry().names("rewards")) - set(manifest["rewards"])
    assert not missing, f"not in the reward gallery: {sorted(missing)}; run .venv/bin/python docs/scripts/reward_gallery.py --only NAME"
    assert manifest["settings"]["meshes"] == ["demo", "rabbit"] and manifest["settings"]["steps"] >= 200
    text = PAGE.read_text()
    for name in FIRST_PARTY_WITH_PICTURES:
        pictures = [m["image"] for m in manifest["rewards"][name]["meshes"] if m["image"]]
        assert len(pictures) == 2, name  # both meshes
        for image in pictures:
            assert (IMAGES / image).is_file() and f"../images/reward-gallery/{image}" in text
    total = sum(p.stat().st_size for p in IMAGES.glob("*.png"))
    assert total < 3_000_000, f"the gallery's pictures take {total} bytes; keep them small"


def test_home_page_opens_with_the_demo_picture_then_the_commands():
    text = (REPO / "docs" / "index.md").read_text()
    picture = text.index("](images/home/demo.png)")
    assert (REPO / "docs" / "images" / "home" / "demo.png").is_file()
    assert picture < text.index("make demo") < text.index("make test") < text.index("## Where to go")
    assert "rewards/gallery.md" in text
