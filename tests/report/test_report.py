"""report.html from plain data: before/after side by side, reward panels with labelled axes, settings table;
previews painted by the session with the config's cameras."""

from __future__ import annotations

import inspect
import json
import re
import typing
from pathlib import Path

import numpy as np
from PIL import Image

from texkit import report
from texkit.config import parse_config
from texkit.report import Preview, ReportData, plot_curves, report_data, write_report


def _png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (96, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _fake_run(run: Path, rewards: tuple[str, ...] = ("curvature_color", "symmetry")) -> None:
    """A run folder as ``texkit train`` leaves it, with stand-in images."""
    for which, colour in (("before", (120, 90, 200)), ("after", (200, 60, 60))):
        for name in ("views.png", "texture.png", "reward_curvature_color.png"):
            _png(run / which / name, colour)
        (run / which / "mesh.glb").write_bytes(b"glTF")
    metrics = []
    for step in range(1, 6):
        line: dict = {"step": step, "loss": -0.1 * step}
        for i, name in enumerate(rewards):
            line[f"reward/{name}"] = 0.05 * step * (i + 1)
        line["reward/total"] = sum(line[f"reward/{n}"] for n in rewards)
        metrics.append(line)
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    cfg = parse_config({"cameras": {"radius": 3.0, "fov": 40.0}, "output": {"grid_views": 4}, "rewards": {n: {} for n in rewards}})
    (run / "config.json").write_text(cfg.model_dump_json(indent=2))
    (run / "versions.json").write_text(json.dumps({"python": "3.11", "torch": "2.x", "plugins": {"texkit-diffusers": "0.1.0"}}))


def test_report_takes_plain_data_only():
    """No Session/Trainer objects and no ``Any`` in the report's public signatures."""
    for func in (write_report, report_data, plot_curves):
        text = str(inspect.signature(func))
        assert "Any" not in text and "Session" not in text and "Trainer" not in text, (func.__name__, text)
    hints = typing.get_type_hints(ReportData)
    assert "Any" not in str(hints) and "Session" not in str(hints)
    assert not hasattr(report, "paint_outputs")  # painting is the session's job (Session.preview)


def test_report_page_shows_before_after_rewards_and_settings(tmp_path):
    run = tmp_path / "run"
    _fake_run(run)
    data = report_data(run, run / "before", prompt="a gourd", seed=1234)
    assert isinstance(data.after, Preview) and data.before is not None
    assert data.after.rewards == {"curvature_color": run / "after" / "reward_curvature_color.png"}
    assert data.after.cameras["radius"] == 3.0 and data.after.cameras["fov"] == 40.0
    page = write_report(data).read_text()
    # before and after next to each other, in that order, then what the reward asks for
    pair = re.search(r'<div class="pair">(.*?)</div>', page, re.S).group(1)
    assert pair.index("before/views.png") < pair.index("after/views.png")
    assert "after/reward_curvature_color.png" in page and "what curvature_color asks for" in page
    assert "radius 3.0, fov 40.0" in page
    # settings and versions in collapsible tables
    details = re.findall(r"<details>(.*?)</details>", page, re.S)
    assert len(details) == 2
    assert "<code>training.lr</code>" in details[0] and "<code>cameras.radius</code>" in details[0]
    assert "<code>plugins.texkit-diffusers</code>" in details[1]
    for ref in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert (run / ref).exists(), ref
    with Image.open(run / "reward_curves.png") as img:
        assert img.size[0] >= 600


def test_reward_curves_one_panel_per_reward_with_labelled_axes(tmp_path):
    metrics = [{"step": s, "reward/a": 0.1 * s, "reward/b": -0.2 * s, "reward/total": -0.1 * s} for s in range(1, 4)]
    fig = plot_curves(metrics, tmp_path / "curves.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split(":")[0] for t in titles] == ["a", "b", "total"]
    for ax in fig.axes:
        assert ax.get_xlabel() == "training step" and ax.get_ylabel()
        assert len(ax.get_yticklabels()) > 1  # values on the y axis
    assert (tmp_path / "curves.png").stat().st_size > 1000
    # one reward of weight 1: total is the same curve, so no second panel hides it
    single = [{"step": s, "reward/a": 0.1 * s, "reward/total": 0.1 * s} for s in range(1, 4)]
    assert [ax.get_title().split(":")[0] for ax in plot_curves(single, tmp_path / "one.png").axes] == ["a"]


def _session(tmp_path: Path, **cameras):
    from texkit.session import Session

    cfg = parse_config(
        {
            "mesh": {"path": "demo"},
            "prompts": {"text": ["a vase"]},
            "generator": {"name": "tiny", "options": {"steps": 1, "seed": 0}},
            "cameras": {"paint": {"elevation": [-20], "azimuth": [0]}, "reward": {"elevation": [-20], "azimuth": [90]}, **cameras},
            "texture": {"size": 32, "render_size": 64},
            "rewards": {"curvature_color": {}},
            "output": {"dir": str(tmp_path), "grid_views": 2},
            "device": "cpu",
        }
    )
    return Session.build(cfg)


def _object_pixels(path: Path) -> int:
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    return int((arr < 250).any(axis=-1).sum())


def test_views_png_follows_config_cameras(tmp_path):
    """views.png uses cameras.radius and cameras.fov: twice the distance, about a quarter of the pixels;
    a narrower field of view, a larger object."""
    session = _session(tmp_path)
    near = session.preview(tmp_path / "near")
    session.config.cameras.radius = 5.0
    far = session.preview(tmp_path / "far")
    session.config.cameras.radius = 2.5
    session.config.cameras.fov = 30.0
    narrow = session.preview(tmp_path / "narrow")
    n_near, n_far, n_narrow = (_object_pixels(p["views"]) for p in (near, far, narrow))
    assert 0.15 < n_far / n_near < 0.4, (n_near, n_far)
    assert n_narrow > 1.8 * n_near, (n_near, n_narrow)
    for paths in (near, far):
        assert {"texture", "views", "glb", "reward_curvature_color"} <= set(paths)
    # the reward's visualisation is rendered with the same cameras: same silhouette as the views
    assert abs(_object_pixels(far["reward_curvature_color"]) - n_far) <= 0.05 * n_far


def test_curvature_color_visualisation_is_red_and_blue(tmp_path):
    session = _session(tmp_path)
    paths = session.preview(tmp_path / "p", turntable_frames=6)
    arr = np.asarray(Image.open(paths["reward_curvature_color"]).convert("RGB"), dtype=np.float32) / 255
    obj = (arr < 0.98).any(axis=-1)
    red = obj & (arr[..., 0] > 0.7) & (arr[..., 2] < 0.3)
    blue = obj & (arr[..., 2] > 0.7) & (arr[..., 0] < 0.3)
    assert red.sum() > 0.3 * obj.sum() and blue.sum() > 0.01 * obj.sum(), (obj.sum(), red.sum(), blue.sum())
    with Image.open(paths["turntable"]) as gif:
        assert gif.n_frames == 6
