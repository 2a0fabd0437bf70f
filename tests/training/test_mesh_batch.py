"""`texkit.mesh_batch`: which mesh each sample of a batch paints, and what a batch and a step report.

Known answers on a 3-mesh collection (demo, sphere, cylinder; ``mesh.sampling = "cycle"``, so draw
``u`` of ``U`` per step at step ``s`` takes mesh ``(s U + u) mod 3``) and on hand-built metrics.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from texkit.config import parse_config
from texkit.mesh_batch import BatchResult, MeshBatcher, mesh_step_metrics
from texkit.training import Trainer

MESHES = ["demo", "sphere", "cylinder"]


def _trainer(run: Path, batching: str = "per_batch", batch_size: int = 1, collection: bool = True) -> Trainer:
    """A tiny run (one painting view, 32-texel textures, curvature_color) on the collection or on demo alone."""
    data = {
        "mesh": {"batching": batching} if collection else {"path": "demo", "batching": batching},
        "prompts": {"text": ["a glazed ceramic {name}", "a painted {name}"]},
        "generator": {"name": "tiny", "options": {"steps": 1, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20], "azimuth": [0]}, "reward": {"elevation": [-20], "azimuth": [90]}},
        "texture": {"size": 32, "render_size": 32},
        "rewards": {"curvature_color": {"tau": -0.5}},
        "training": {"steps": 2, "batch_size": batch_size, "before_after": False},
        "output": {"dir": str(run), "grid_views": 1},
        "device": "cpu",
    }
    if collection:
        data["meshes"] = [{"path": name} for name in MESHES]
    return Trainer(parse_config(data), run)


def test_step_metrics_average_each_meshs_rewards_over_every_sample_of_the_step():
    # two ranks' micro-batches in slot order: mesh a is drawn three times, b and c once
    samples = [
        {"loss": -1.0, "meshes": ["a", "b"], "mesh_rewards": [1.0, 2.0]},
        {"loss": -2.0, "meshes": ["a"], "mesh_rewards": [4.0]},
        {"loss": -0.5, "meshes": ["c", "a"], "mesh_rewards": [0.5, 1.0]},
    ]
    merged = {"loss": -1.25, "mesh_rewards": [1.0, 2.0, 4.0, 0.5, 1.0]}
    mesh_step_metrics(samples, merged)
    assert merged == {"loss": -1.25, "meshes": ["a", "b", "a", "c", "a"], "reward_by_mesh": {"a": 2.0, "b": 2.0, "c": 0.5}}
    one_mesh = {"loss": -1.0}
    mesh_step_metrics([{"loss": -1.0}, {"loss": -1.0}], one_mesh)
    assert one_mesh == {"loss": -1.0}  # a one-mesh step: nothing added


def test_a_batch_result_without_mesh_names_is_a_one_mesh_batch():
    result = BatchResult(torch.tensor([1.0, 3.0]), [{"reward/total": 1.0, "coverage": 0.5}, {"reward/total": 3.0, "coverage": 0.75}], ["a", "b"])
    assert result.meshes == [] and result.first is None and result.first_mesh == 0
    assert result.mean_metrics() == pytest.approx({"reward/total": 2.0, "coverage": 0.625})


def test_a_run_on_one_mesh_paints_the_sessions_mesh_in_every_sample(tmp_path):
    trainer = _trainer(tmp_path / "one", batching="mixed", batch_size=2, collection=False)
    batcher = trainer.batcher
    assert batcher.names == [] and batcher.mesh_indices(1, 0, 0) == [0, 0] and batcher.mesh_indices(3, 1, 0, world_size=2) == [0, 0]
    assert batcher.session_for(0) is trainer.session and batcher.session_for(2) is trainer.session
    result = batcher.run(1, 0, 0)
    assert result.meshes == [] and result.first_mesh == 0 and result.first is not None and result.totals.shape == (2,)
    # a collection of one mesh (`loaded` of length 1) is a one-mesh run on the session's own mesh too
    collection = _trainer(tmp_path / "three")
    single = MeshBatcher(collection.session, collection.batcher.loaded[:1])
    assert single.names == [] and single.mesh_indices(1, 0, 0) == [0] and single.session_for(0) is collection.session


def test_per_batch_draws_follow_the_cycle_rule_per_step_rank_and_micro_batch(tmp_path):
    batcher = _trainer(tmp_path, batch_size=2).batcher
    assert batcher.names == MESHES
    # one process: one draw per step, the whole batch on one mesh
    assert [batcher.mesh_indices(s, 0, 0) for s in range(4)] == [[0, 0], [1, 1], [2, 2], [0, 0]]
    # two ranks: rank r takes draw r of the step's two
    assert [batcher.mesh_indices(1, r, 0, world_size=2) for r in range(2)] == [[2, 2], [0, 0]]
    result = batcher.run(1, 0, 0)
    assert result.meshes == ["sphere", "sphere"] and result.first_mesh == 1
    assert all(p.endswith(" sphere") for p in result.prompts)  # the mesh's prompts, {name} filled in


def test_the_session_of_the_last_mesh_asked_for_is_kept(tmp_path):
    batcher = _trainer(tmp_path).batcher
    sphere = batcher.session_for(1)
    assert batcher.session_for(1) is sphere  # asked again: the same session, its mesh already on the device
    assert sphere.prompts == ["a glazed ceramic sphere", "a painted sphere"]
    cylinder = batcher.session_for(2)
    assert cylinder is not sphere and batcher.session_for(2) is cylinder
    assert cylinder.prompts == ["a glazed ceramic cylinder", "a painted cylinder"]


def test_a_mixed_batch_paints_each_sample_on_its_mesh_and_returns_sample_0s_texture(tmp_path):
    batcher = _trainer(tmp_path, batching="mixed", batch_size=2).batcher
    # step 1, two draws of one sample each: slots 2 and 3 -> cylinder, demo
    assert batcher.mesh_indices(1, 0, 0) == [2, 0]
    result = batcher.run(1, 0, 0)
    assert result.meshes == ["cylinder", "demo"] and result.first_mesh == 2
    assert result.prompts[0].endswith(" cylinder") and result.prompts[1].endswith(" demo")
    assert result.totals.shape == (2,)
    alone = []
    for b, mesh in enumerate((2, 0)):  # each sample painted alone on its mesh with its slot's draw
        session = batcher.session_for(mesh)
        prompt, seeds = session.draw(1, b)
        assert prompt == result.prompts[b]
        alone.append(session.paint([prompt], [seeds]).sample(0))
    assert not torch.equal(alone[0].coverage, alone[1].coverage)  # the two meshes' textures differ
    first = result.first
    assert first is not None and torch.equal(first.coverage, alone[0].coverage)
    torch.testing.assert_close(first.image, alone[0].image, atol=2e-5, rtol=0)
