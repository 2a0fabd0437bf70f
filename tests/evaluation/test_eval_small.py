"""``texkit eval`` on a tiny run folder (seconds): settings from the run, several meshes and labelled
metrics (a scoring-only reward too), a partly finished batch, a base-only eval, the output folder's rules."""

from __future__ import annotations

import json
import shutil

import pytest

from texkit.errors import TexkitError
from texkit.evaluation import load_spec, plan_eval, run_eval
from texkit.evaluation import run as eval_run
from texkit.evaluation.spec import MetricSpec

PROMPTS = ["a wooden chess piece", "a marble bust"]


def _spec(run, **fields):
    base = {"adapters": [str(run)], "prompts": PROMPTS, "seeds": [0, 5], "device": "cpu"}
    return load_spec(fields={**base, **fields})


def test_settings_and_metrics_come_from_the_run(tiny_run):
    plan = plan_eval(_spec(tiny_run, prompts=[*PROMPTS, "a glazed ceramic gourd"]))
    run_cfg = json.loads((tiny_run / "config.json").read_text())
    assert plan.config.generator.model_dump() == run_cfg["generator"]
    assert plan.config.cameras.paint.model_dump() == run_cfg["cameras"]["paint"]
    assert plan.config.texture.size == 32 and plan.meshes == ["demo"]
    assert [(m.name, m.params, m.key) for m in plan.metrics] == [("curvature_color", {"tau": -0.5}, "curvature_color")]
    assert [m.label for m in plan.models] == ["base", str(tiny_run)]
    (note,) = plan.notes  # the training prompt among the eval prompts is noted, in one line
    assert "1 of 3 eval prompts are training prompts" in note and "a glazed ceramic gourd" in note and "\n" not in note
    assert plan_eval(_spec(tiny_run)).notes == []
    assert len(plan.items()) == 2 * 1 * 3 * 2


def test_meshes_labels_and_a_scoring_only_reward_on_the_same_renders(tiny_run, tmp_path):
    metrics = [
        MetricSpec(name="curvature_color", params={"tau": -0.5}),
        MetricSpec(name="curvature_color", params={"tau": -0.5}, label="same_again"),
        MetricSpec(name="curvature_color", params={"tau": -0.5, "compat": "reference"}, label="cc_reference"),
        MetricSpec(name="jpeg_compressibility", params={"source": "renders"}),  # not differentiable
    ]
    result = run_eval(plan_eval(_spec(tiny_run, meshes=["demo", "sphere"], metrics=metrics, samples=3)), tmp_path / "e")
    assert len(result.results) == 2 * 2 * 2 * 2 and result.painted == 16
    for item in result.results:
        values = item["metrics"]
        assert set(values) == {"curvature_color", "same_again", "cc_reference", "jpeg_compressibility"}
        assert values["same_again"] == values["curvature_color"]  # one reward twice: the same value
        assert values["jpeg_compressibility"] < 0  # minus a JPEG size in kB
    rows = result.summary["rows"]
    assert {r["mesh"] for r in rows} == {"all", "demo", "sphere"}
    adapter_rows = [r for r in rows if r["model"] == str(tiny_run)]
    assert len(adapter_rows) == 4 * 3 and all(r["n"] == 8 if r["mesh"] == "all" else r["n"] == 4 for r in adapter_rows)
    csv_lines = (result.out / "summary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("model,metric,mesh,n,mean") and len(csv_lines) == 1 + 2 * 4 * 3
    assert "| cc_reference | sphere |" in (result.out / "summary.md").read_text()
    for metric in ("curvature_color", "same_again", "cc_reference", "jpeg_compressibility"):
        assert (result.out / "plots" / f"{metric}.png").is_file()


def test_a_partly_written_batch_is_repainted_whole_and_only_its_missing_item_written(tiny_run, tmp_path, monkeypatch):
    plan = plan_eval(_spec(tiny_run, samples=4))
    first = run_eval(plan, tmp_path / "e")
    reference = (first.out / "results.jsonl").read_bytes()
    missing = first.out / plan.items()[5].folder  # the second item of the second batch
    kept = first.out / plan.items()[4].folder
    stamp = (kept / "result.json").stat().st_mtime_ns
    shutil.rmtree(missing)
    calls = []
    paint = eval_run._paint_batch
    monkeypatch.setattr(eval_run, "_paint_batch", lambda s, m, batch: calls.append(len(batch)) or paint(s, m, batch))
    again = run_eval(plan_eval(_spec(tiny_run, samples=4)), tmp_path / "e")
    assert calls == [4] and again.painted == 1
    assert (kept / "result.json").stat().st_mtime_ns == stamp
    assert (again.out / "results.jsonl").read_bytes() == reference


def test_base_model_alone(tmp_path):
    spec = load_spec(fields={"prompts": ["a red vase"], "num_seeds": 2, "metrics": [MetricSpec(name="curvature_color")], "device": "cpu", "texture": {"size": 32, "render_size": 48}, "cameras": {"paint": {"elevation": [-20], "azimuth": [0]}, "reward": {"elevation": [-20], "azimuth": [0]}}, "generator": {"name": "tiny", "options": {"steps": 1}}})
    result = run_eval(plan_eval(spec), tmp_path / "e")
    assert [r["model"] for r in result.summary["rows"]] == ["base"] and result.summary["rows"][0]["n"] == 2
    assert (result.out / "eval.html").read_text().count("<img") >= 1 + 2 * 2


def test_output_folder_rules(tiny_run, tmp_path):
    out = tmp_path / "e"
    run_eval(plan_eval(_spec(tiny_run, prompts=PROMPTS[:1], seeds=[0])), out)
    with pytest.raises(TexkitError, match="other settings .*grid_views: 4 -> 3.*--overwrite"):
        run_eval(plan_eval(_spec(tiny_run, prompts=PROMPTS[:1], seeds=[0], grid_views=3)), out)
    replaced = run_eval(plan_eval(_spec(tiny_run, prompts=PROMPTS[:1], seeds=[0], grid_views=3)), out, overwrite=True)
    assert replaced.painted == 2
    more = run_eval(plan_eval(_spec(tiny_run, prompts=PROMPTS[:1], seeds=[0, 1], grid_views=3)), out)  # more seeds: only the new items
    assert more.painted == 2 and len(more.results) == 4
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(TexkitError, match="did not write .*notes.txt"):
        run_eval(plan_eval(_spec(tiny_run, prompts=PROMPTS[:1], seeds=[0])), tmp_path / "other")


def test_spec_tables_replace_only_the_keys_they_set(tiny_run):
    plan = plan_eval(load_spec(None, ["texture.render_size=40", "cameras.fov=30.0"], {"adapters": [str(tiny_run)], "prompts": ["x"]}))
    assert (plan.config.texture.size, plan.config.texture.render_size) == (32, 40)  # size stays the run's
    assert plan.config.cameras.fov == 30.0 and plan.config.cameras.paint.azimuth == [0, 180]
    other = plan_eval(load_spec(None, None, {"adapters": [str(tiny_run)], "prompts": ["x"], "generator": {"name": "tiny", "options": {"steps": 2}}}))
    assert other.config.generator.options == {"steps": 2}  # a component is replaced whole
