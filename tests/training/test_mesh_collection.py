"""Collections (issue 27): several meshes trained into one adapter.

* the config forms (``[[meshes]]``, ``mesh.path`` as folder, glob or list file) and their errors;
* the draw rule (`MeshSampler`) as documented, and as recorded in ``metrics.jsonl`` by a 3-mesh run;
* a run interrupted mid-way and resumed draws what an uninterrupted run draws (bitwise equal adapters);
* a mixed-mesh batch equals its samples run one by one (loss and gradients).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from texkit.config import parse_config
from texkit.errors import ConfigError, MeshError
from texkit.mesh_batch import MeshBatcher
from texkit.mesh_set import MeshItem, MeshSampler, expand_mesh_path, mesh_items, preview_indices, with_name
from texkit.training import Trainer, train

MESHES = ["demo", "sphere", "cylinder"]


def _config(run: Path, steps: int = 4, **mesh) -> dict:
    """A tiny 3-mesh run: one painting view, 32-texel textures, curvature_color."""
    return {
        "mesh": mesh,
        "meshes": [{"path": name} for name in MESHES],
        "prompts": {"text": ["a glazed ceramic {name}", "a painted {name}"]},
        "generator": {"name": "tiny", "options": {"steps": 1, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20], "azimuth": [0]}, "reward": {"elevation": [-20], "azimuth": [90]}},
        "texture": {"size": 32, "render_size": 32},
        "rewards": {"curvature_color": {"tau": -0.5}},
        "training": {"steps": steps, "lr": 3e-2, "checkpoint_every": 2, "before_after": False},
        "output": {"dir": str(run), "grid_views": 1},
        "device": "cpu",
    }


def _lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]


# -- config forms ---------------------------------------------------------------------------------


def _obj(path: Path, scale: float = 1.0) -> Path:
    """A tetrahedron with UVs as an OBJ file."""
    s = scale
    path.write_text(
        f"v 0 0 {s}\nv {s} 0 -{s}\nv -{s} 0 -{s}\nv 0 {s} 0\nvt 0 0\nvt 1 0\nvt 0 1\n"
        "f 1/1 2/2 3/3\nf 1/1 4/3 2/2\nf 2/2 4/3 3/1\nf 3/3 4/2 1/1\n"
    )
    return path


def test_meshes_tables_names_prompts_and_weights():
    cfg = parse_config(
        {
            "meshes": [{"path": "demo", "prompts": ["a {name} vase"]}, {"path": "sphere", "name": "ball", "weight": 3}, {"path": "demo"}],
            "mesh": {"sampling": "weighted"},
        }
    )
    items = mesh_items(cfg)
    assert [i.name for i in items] == ["demo", "ball", "demo-2"]  # names unique; a table may name its mesh
    assert items[0].prompts == ("a {name} vase",) and items[1].prompts is None
    assert [i.weight for i in items] == [1.0, 3.0, 1.0]
    assert with_name(["a {name} vase", "plain {other}"], "ball") == ["a ball vase", "plain {other}"]
    assert mesh_items(parse_config({})) == [MeshItem("demo", "demo")]  # the single [mesh] stays valid


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"meshes": [{"path": "demo", "weight": 2}]}, 'mesh.sampling = "weighted"'),
        ({"meshes": [{"path": "demo"}], "mesh": {"path": "sphere"}}, "mesh.path and [[meshes]]"),
        ({"meshes": [{"path": "demo"}], "mesh": {"per_rank": ["sphere"]}}, "per_rank"),
        ({"meshes": [{"path": "demo", "weight": 0}], "mesh": {"sampling": "weighted"}}, "meshes.0.weight"),
        ({"mesh": {"sampling": "round_robin"}}, "mesh.sampling"),
    ],
)
def test_collection_config_errors_are_one_line(data, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        parse_config(data)
    assert "\n" not in str(info.value)


def test_mesh_path_as_folder_glob_and_list_file(tmp_path):
    folder = tmp_path / "shapes"
    folder.mkdir()
    for name in ("b", "a", "c"):
        _obj(folder / f"{name}.obj")
    (folder / "notes.md").write_text("not a mesh")
    assert [Path(p).name for p in expand_mesh_path(str(folder))] == ["a.obj", "b.obj", "c.obj"]
    assert [Path(p).name for p in expand_mesh_path(str(folder / "[ab].obj"))] == ["a.obj", "b.obj"]
    listing = tmp_path / "list.txt"
    listing.write_text("# my meshes\nshapes/c.obj\n\nsphere\n")
    assert expand_mesh_path(str(listing)) == [str(tmp_path / "shapes" / "c.obj"), "sphere"]
    items = mesh_items(parse_config({"mesh": {"path": str(listing)}}))
    assert [(i.name, i.path) for i in items] == [("c", str(tmp_path / "shapes" / "c.obj")), ("sphere", "sphere")]
    empty = tmp_path / "empty"
    empty.mkdir()
    for spec, message in ((str(empty), "holds no mesh file"), (str(tmp_path / "*.ply"), "matches no file")):
        with pytest.raises(MeshError, match=message):
            expand_mesh_path(spec)
    with pytest.raises(ConfigError, match="per_rank"):
        mesh_items(parse_config({"mesh": {"path": str(folder), "per_rank": ["demo"]}}))


# -- the draw rule --------------------------------------------------------------------------------


def test_sampler_cycle_and_weighted_known_answers():
    items = [MeshItem(n, n, weight=w) for n, w in zip("abc", (1.0, 2.0, 7.0))]
    cycle = MeshSampler(items, "cycle", seed=5)
    # U = 2 draws per step: step s takes meshes 2s and 2s + 1 (mod 3)
    assert [[cycle.draw(s, u, 2) for u in range(2)] for s in range(4)] == [[0, 1], [2, 0], [1, 2], [0, 1]]
    weighted = MeshSampler(items, "weighted", seed=5)
    draws = [weighted.draw(s, 0, 1) for s in range(3000)]
    assert draws[:5] == [random.Random(f"texkit:mesh:5:{s}:0").choices(range(3), weights=[1, 2, 7])[0] for s in range(5)]
    counts = Counter(draws)
    for index, share in enumerate((0.1, 0.2, 0.7)):
        assert abs(counts[index] / 3000 - share) < 0.03, counts
    assert [weighted.draw(7, u, 4) for u in range(4)] == [weighted.draw(7, u, 4) for u in range(4)]  # a pure function
    assert MeshSampler(items, "weighted", seed=6).draw(0, 0, 1) is not None and preview_indices(20, 4) == [0, 6, 13, 19]
    assert preview_indices(3, 8) == [0, 1, 2] and preview_indices(5, 0) == [0]


def test_three_mesh_run_draws_as_the_rule_says(tmp_path):
    run = tmp_path / "run"
    result = train(parse_config(_config(run, steps=4)))
    lines = _lines(run)
    assert [m["meshes"] for m in lines] == [[MESHES[s % 3]] for s in range(4)]  # cycle, one draw per step
    assert [m["prompt"].split()[-1] for m in lines] == [MESHES[s % 3] for s in range(4)]  # {name} filled in
    for m in lines:
        assert set(m["reward_by_mesh"]) == set(m["meshes"]) and m["reward_by_mesh"][m["meshes"][0]] == pytest.approx(m["reward/total"])
    assert [m["meshes"] for m in result.metrics] == [m["meshes"] for m in lines]


@pytest.mark.slow
def test_a_resumed_weighted_run_draws_as_an_uninterrupted_one(tmp_path, monkeypatch):
    """Weighted draws over 2 micro-batches a step; the run is killed after step 3 (checkpoint at 2) and resumed."""

    def config(run: Path) -> dict:
        data = _config(run, steps=4, sampling="weighted")
        data["meshes"][2]["weight"] = 4.0
        data["training"]["grad_accum"] = 2
        return data

    whole = tmp_path / "whole"
    train(parse_config(config(whole)))

    cut = tmp_path / "cut"
    step = Trainer.train_step

    def killed_after_step_3(self):
        if self.step == 3:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(Trainer, "train_step", killed_after_step_3)
    with pytest.raises(KeyboardInterrupt):
        train(parse_config(config(cut)))
    assert len(_lines(cut)) == 3 and not (cut / "adapter").exists()
    monkeypatch.setattr(Trainer, "train_step", step)
    train(parse_config(config(cut)), resume=True)

    expected = MeshSampler([MeshItem(n, n, weight=w) for n, w in zip(MESHES, (1, 1, 4))], "weighted", seed=0)
    draws = [[MESHES[expected.draw(s, u, 2)] for u in range(2)] for s in range(4)]
    assert [m["meshes"] for m in _lines(whole)] == draws == [m["meshes"] for m in _lines(cut)]
    a = load_file(whole / "adapter" / "pytorch_lora_weights.safetensors")
    b = load_file(cut / "adapter" / "pytorch_lora_weights.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bitwise equal adapters
    assert any(float(v.abs().max()) > 0 for v in a.values())


# -- mixed-mesh batches ---------------------------------------------------------------------------


def _gradients(trainer: Trainer, micro_batches: int) -> tuple[float, list[torch.Tensor]]:
    """Loss and gradients of step 0 as `Trainer.train_step` accumulates them (before the optimiser step)."""
    trainer.optimizer.zero_grad(set_to_none=True)
    losses = []
    for micro in range(micro_batches):
        loss, _ = trainer._sample(micro)
        (loss / micro_batches).backward()
        losses.append(float(loss.detach()))
    return sum(losses) / micro_batches, [p.grad.clone() for p in trainer.parameters()]


@pytest.mark.slow
def test_a_mixed_mesh_batch_equals_its_samples_one_by_one(tmp_path):
    mixed_cfg = _config(tmp_path / "a", batching="mixed")
    mixed_cfg["training"]["batch_size"] = 3
    mixed = Trainer(parse_config(mixed_cfg))
    assert isinstance(mixed.batcher, MeshBatcher) and mixed.batcher.mesh_indices(0, 0, 0) == [0, 1, 2]  # three meshes in one batch
    loss_mixed, grads_mixed = _gradients(mixed, 1)

    single_cfg = _config(tmp_path / "b")  # per_batch: micro-batch k of one sample takes slot k and mesh k
    single_cfg["training"]["grad_accum"] = 3
    single = Trainer(parse_config(single_cfg))
    assert [single.batcher.mesh_indices(0, 0, k) for k in range(3)] == [[0], [1], [2]]
    loss_single, grads_single = _gradients(single, 3)

    assert loss_mixed == pytest.approx(loss_single, rel=1e-5, abs=1e-7)
    assert any(float(g.abs().max()) > 0 for g in grads_mixed)
    for a, b in zip(grads_mixed, grads_single):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


# -- the report's per-mesh section -----------------------------------------------------------------


def test_report_section_of_a_large_collection_plots_a_sample_and_tables_every_mesh(tmp_path):
    from PIL import Image

    from texkit.report_meshes import MAX_CURVES, collection_names, mesh_history, mesh_section

    names = [f"m{i:02d}" for i in range(20)]
    metrics = [{"step": s + 1, "meshes": [names[s % 20]], "reward_by_mesh": {names[s % 20]: 0.01 * s}} for s in range(40)]
    history = mesh_history(metrics)
    assert history["m00"] == [(1, 0.0), (21, 0.2)] and len(history) == 20
    sampled = [names[i] for i in preview_indices(20, 4)]  # m00, m06, m13, m19
    for index, name in enumerate(sampled):
        for which in ("before", "after"):
            folder = (tmp_path / which) if index == 0 else (tmp_path / "meshes" / name / which)
            folder.mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(folder / "views.png")
    page = mesh_section(tmp_path, metrics, names)
    assert "<h2>Meshes (20)</h2>" in page and (tmp_path / "reward_by_mesh.png").is_file()
    assert "previews of 4 of the 20 meshes" in page
    for name in sampled[1:]:
        assert f"meshes/{name}/before/views.png" in page and f"meshes/{name}/after/views.png" in page
    assert page.count("<tr><td>m") == 20  # every mesh in the table: draws, first and last reward
    assert "<tr><td>m00</td><td>2</td><td>0.0000</td><td class=\"up\">0.2000</td></tr>" in page
    assert len(sampled) <= MAX_CURVES and mesh_section(tmp_path, metrics, []) == ""
    config = parse_config({"meshes": [{"path": "demo"}, {"path": "sphere", "name": "ball"}]}).model_dump(mode="json")
    assert collection_names({**config, "history": []}, []) == ["demo", "ball"]  # the resume history is no config key
    assert collection_names({"meshes": "unreadable"}, metrics)[:2] == ["m00", "m01"]  # else from the metrics
    assert collection_names(parse_config({}).model_dump(mode="json"), []) == []  # one mesh: no section


@pytest.mark.slow
def test_a_collection_run_report_shows_every_sampled_mesh_before_and_after(tmp_path):
    from texkit.report import write_run_report

    run = tmp_path / "run"
    data = _config(run, steps=3, previews=2)
    data["training"]["before_after"] = True
    train(parse_config(data))
    assert sorted(p.name for p in (run / "meshes").iterdir()) == ["cylinder"]  # meshes 0 and 2 of 3; mesh 0's are before/ and after/
    for which in ("before", "after"):
        assert (run / "meshes" / "cylinder" / which / "views.png").is_file() and (run / which / "views.png").is_file()
    page = write_run_report(run).read_text()
    assert "<h2>Meshes (3)</h2>" in page and (run / "reward_by_mesh.png").is_file()
    assert "meshes/cylinder/before/views.png" in page and "meshes/cylinder/after/views.png" in page
    assert "a glazed ceramic demo" in page  # the previews' prompt, {name} filled in for the first mesh
