"""``texkit eval`` on the command line: a spec file with command-line overrides, and every usage error
(missing or unfinished adapter, adapters of different generators, a bad spec key or metric, no prompts,
no metrics, a folder holding something else) as one line without a traceback, changing no file."""

from __future__ import annotations

import json

import pytest

SPEC = """
prompts = ["a marble bust", "a wooden chess piece"]
seeds = [3]
device = "cpu"

[[metrics]]
name = "curvature_color"
params = { tau = -0.5 }

[[metrics]]
name = "curvature_color"
label = "cc_reference"
params = { tau = -0.5, compat = "reference" }
"""


def test_spec_file_with_overrides(tiny_run, tmp_path, run_texkit):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "e"
    result = run_texkit(["eval", spec, "--adapter", tiny_run, "--out", out, "--prompt", "a knitted wool toy", "--samples", "2", "--set", "grid_views=2"])
    assert result.code == 0, result.stderr
    assert "2 items (2 painted now)" in result.stdout  # base + adapter, one prompt (--prompt replaces the spec's), one seed
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["prompt"] for r in lines} == {"a knitted wool toy"} and {r["seed"] for r in lines} == {3}
    assert set(lines[0]["metrics"]) == {"curvature_color", "cc_reference"}
    rerun = run_texkit(["eval", out / "spec.toml", "--out", out])  # the written spec reruns the same eval: nothing to paint
    assert rerun.code == 0 and "2 items (0 painted now)" in rerun.stdout, rerun.stderr
    seeds = run_texkit(["eval", out / "spec.toml", "--out", out, "--num-seeds", "2"])  # seeds 0, 1 replace [3]
    assert seeds.code == 0 and "4 items (4 painted now)" in seeds.stdout, seeds.stderr


@pytest.mark.parametrize(
    ("case", "mentions"),
    [
        ("missing adapter", ["nowhere", "does not exist"]),
        ("unfinished run", ["no final adapter", "--resume"]),
        ("empty adapter folder", ["holds no files"]),
        ("other generator", ["trained with generator options", "[generator]"]),
        ("unknown spec key", ["unknown eval spec key 'metrics.0.nme'", "did you mean 'name'"]),
        ("duplicate label", ["two metrics are labelled 'curvature_color'"]),
        ("no prompts", ["no eval prompts", "--prompt"]),
        ("no metrics", ["no metrics", "--metric"]),
        ("unknown metric", ["no_such_reward"]),
        ("bad seeds", ["--seeds", "comma-separated"]),
        ("metric without name", ["--metric", "names no reward"]),
        ("foreign out folder", ["notes.txt", "did not write"]),
        ("missing spec", ["eval spec file not found"]),
    ],
)
def test_usage_errors_are_one_line(case, mentions, tiny_run, make_tiny_run, tmp_path, run_texkit, contract):
    out = tmp_path / "out"
    base = ["eval", "--out", out, "--prompt", "a marble bust", "--device", "cpu"]
    argv = [*base, "--adapter", tiny_run]
    if case == "missing adapter":
        argv = [*base, "--adapter", tmp_path / "nowhere"]
    elif case == "unfinished run":
        run = tmp_path / "unfinished"
        run.mkdir()
        (run / "metrics.jsonl").write_text("")
        argv = [*base, "--adapter", run]
    elif case == "empty adapter folder":
        (tmp_path / "empty").mkdir()
        argv = [*base, "--adapter", tmp_path / "empty"]
    elif case == "other generator":
        other = make_tiny_run(tmp_path / "other", generator={"name": "tiny", "options": {"steps": 2, "seed": 0}})
        argv = [*argv, "--adapter", other]
    elif case == "unknown spec key":
        (tmp_path / "spec.toml").write_text('[[metrics]]\nnme = "curvature_color"\n')
        argv = ["eval", tmp_path / "spec.toml", *argv[1:]]
    elif case == "duplicate label":
        argv = [*argv, "--metric", "curvature_color", "--metric", "curvature_color:tau=-0.2"]
    elif case == "no prompts":
        argv = ["eval", "--out", out, "--adapter", tiny_run]
    elif case == "no metrics":
        argv = base
    elif case == "unknown metric":
        argv = [*argv, "--metric", "no_such_reward"]
    elif case == "bad seeds":
        argv = [*argv, "--seeds", "1,two"]
    elif case == "metric without name":
        argv = [*argv, "--metric", ":tau=1"]
    elif case == "foreign out folder":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "missing spec":
        argv = ["eval", tmp_path / "nope.toml", *argv[1:]]
    before = contract.snapshot(tmp_path)
    result = run_texkit(argv)
    contract.assert_clean_error(result, mentions, before, contract.snapshot(tmp_path))
