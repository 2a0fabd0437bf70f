"""``texkit eval`` on the demo's adapter (acceptance of issue 25): the 30-step curvature_color demo
run (tests/conftest.py ``demo_run``, shared with the demo-effect test) evaluated on 4 held-out prompts
x 4 seeds against the base model.

* the adapter's curvature_color beats the base model's on held-out prompts and seeds: the paired
  bootstrap CI of the mean difference lies above 0;
* eval is deterministic and resumable: a second eval, interrupted after its first batch and run
  again, repaints (and rewrites) none of the items it finished and ends with a results.jsonl
  byte-identical to the first eval's;
* eval.html opens in headless Chromium: every image decodes, each metric's plot is there, no console errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from texkit.evaluation import load_spec, plan_eval, run_eval
from texkit.evaluation import run as eval_run

#: Held-out prompts: none is the demo's training prompt ("a glazed ceramic gourd").
HELD_OUT = ["a wooden chess piece", "a marble bust", "a rusty metal kettle", "a knitted wool toy"]
SAMPLES = 8  # items per batch: 2 batches per model
DONE_BATCHES = 1  # batches finished before the interruption


def _plan(demo_run: Path):
    spec = load_spec(fields={"adapters": [str(demo_run)], "prompts": HELD_OUT, "num_seeds": 4, "samples": SAMPLES, "device": "cpu"})
    return plan_eval(spec)


@pytest.fixture(scope="module")
def first_eval(demo_run, tmp_path_factory):
    return run_eval(_plan(demo_run), tmp_path_factory.mktemp("eval") / "a")


@pytest.mark.slow
def test_adapter_beats_base_on_held_out_prompts_and_seeds(first_eval, demo_run):
    summary = first_eval.summary
    (row,) = [r for r in summary["rows"] if r["model"] == str(demo_run) and r["metric"] == "curvature_color" and r["mesh"] == "all"]
    print(json.dumps(row))
    assert row["n"] == 16
    assert row["ci_low"] > 0, row  # the paired bootstrap CI of adapter - base lies above 0
    assert row["mean_difference"] > 0 and row["win_rate"] > 0.5
    assert summary["bootstrap"]["resamples"] == 10_000
    # the metric is the run's own reward with its parameters (curvature_color, tau = -0.5)
    assert json.loads((demo_run / "config.json").read_text())["rewards"]["curvature_color"]["tau"] == -0.5
    assert _plan(demo_run).metrics[0].params == {"tau": -0.5}
    lines = (first_eval.out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 32 and {json.loads(line)["model"] for line in lines} == {"base", str(demo_run)}
    for line in lines:
        item = json.loads(line)
        assert (first_eval.out / item["texture"]).is_file() and (first_eval.out / item["views"]).is_file()
    for name in ("summary.json", "summary.csv", "summary.md", "eval.html", "plots/curvature_color.png", "spec.toml"):
        assert (first_eval.out / name).is_file(), name


@pytest.mark.slow
def test_eval_is_deterministic_and_an_interrupted_eval_resumes(first_eval, demo_run, tmp_path, monkeypatch):
    """A second eval, interrupted after its first batch and run again, paints only what was missing and
    ends with a results.jsonl byte-identical to the first eval's (so the two runs agree, and resuming
    changes nothing)."""
    painted_batches: list[list[str]] = []
    paint = eval_run._paint_batch

    def interrupted(session, metrics, batch):
        if len(painted_batches) == DONE_BATCHES:
            raise KeyboardInterrupt  # Ctrl-C while the next batch paints
        painted_batches.append([str(item.folder) for item in batch])
        return paint(session, metrics, batch)

    out = tmp_path / "b"
    monkeypatch.setattr(eval_run, "_paint_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_eval(_plan(demo_run), out)
    finished = sorted(p.parent for p in out.glob("items/**/result.json"))
    assert len(finished) == DONE_BATCHES * SAMPLES and not (out / "results.jsonl").exists()
    stamps = {p: (p / "result.json").stat().st_mtime_ns for p in finished}

    resumed_batches: list[list[str]] = []

    def counted(session, metrics, batch):
        resumed_batches.append([str(item.folder) for item in batch])
        return paint(session, metrics, batch)

    monkeypatch.setattr(eval_run, "_paint_batch", counted)
    resumed = run_eval(_plan(demo_run), out)
    assert resumed.painted == 32 - DONE_BATCHES * SAMPLES and len(resumed_batches) == 32 // SAMPLES - DONE_BATCHES
    done_before = {f for batch in painted_batches for f in batch}
    assert not done_before & {f for batch in resumed_batches for f in batch}  # nothing finished was painted again
    assert {p: (p / "result.json").stat().st_mtime_ns for p in finished} == stamps  # nor rewritten
    # two runs, identical results (and summaries)
    assert (out / "results.jsonl").read_bytes() == (first_eval.out / "results.jsonl").read_bytes()
    assert (out / "summary.json").read_bytes() == (first_eval.out / "summary.json").read_bytes()
    assert run_eval(_plan(demo_run), out).painted == 0  # a finished eval paints nothing


@pytest.mark.slow
def test_eval_page_in_headless_chromium(first_eval, tmp_path, chromium, site_checker):
    """eval.html from disk in headless Chromium (docs/scripts/check_site.py, as the docs and report tests):
    every image decodes, no console errors; the metric's plot and all 32 views and textures are on it."""
    shot = tmp_path / "eval_screenshot.png"
    driver = site_checker.start_browser(*chromium, width=1300, height=900)
    try:
        found = site_checker.check_page(driver, first_eval.out.resolve().as_uri() + "/", "eval.html", shot)
        srcs = driver.execute_script("return Array.from(document.images).map(i => i.getAttribute('src'))")
        rows = driver.execute_script("return document.querySelectorAll('#summary tr').length")
        title = driver.title
    finally:
        driver.quit()
    assert found.problems == [], found.problems  # no console error, no image that did not decode
    assert "plots/curvature_color.png" in srcs  # the metric's plot is on the page
    assert sum(src.endswith("/views.png") for src in srcs) == 32 and sum(src.endswith("/texture.png") for src in srcs) == 32
    assert found.images == len(srcs) == 1 + 64
    assert title.startswith("texkit eval") and rows == 3  # header + base + adapter
    assert shot.stat().st_size > 10_000
