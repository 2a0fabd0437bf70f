"""CPU smoke test of benchmarks/reward_defaults.py at a tiny size, and its random-texture generator."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reward_defaults.py"


def load_script():
    """The benchmark script as a module."""
    spec = importlib.util.spec_from_file_location("reward_defaults", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_random_textures_are_seeded_in_range_and_varied():
    bench = load_script()
    a, b = bench.random_texture(3, 64), bench.random_texture(3, 64)
    assert torch.equal(a, b) and a.shape == (64, 64, 3) and a.dtype == torch.float64
    textures = [bench.random_texture(i, 64) for i in range(12)]
    assert all(0.0 <= float(t.min()) and float(t.max()) <= 1.0 for t in textures)
    balance = torch.tensor([float((t[..., 0] - t[..., 2]).mean()) for t in textures])
    contrast = torch.tensor([float(t.std(dim=(0, 1)).mean()) for t in textures])
    assert balance.min() < -0.1 and balance.max() > 0.1  # global colour shifts both ways
    assert contrast.max() > 2 * contrast.min() > 0  # flat and busy textures
    # posterised textures (few distinct grey levels) occur beside smooth ones
    distinct = [len(torch.unique(t[..., 0])) for t in textures]
    assert min(distinct) < 10 < max(distinct)


def test_switches_are_the_settings_whose_default_differs_from_the_reference():
    bench = load_script()
    cases = {c.key: c for c in bench.CASES}
    alignment = bench.switches(cases["curvature_alignment"])
    assert "edges" not in alignment and "normalize" not in alignment  # texkit's default is the reference's there
    assert alignment["lookup"] == ("texkit", "reference") and alignment["padding"] == ("replicate", "zeros")
    assert "denominator" in bench.switches(cases["curvature_color/sharp"]) and "denominator" not in bench.switches(cases["curvature_color/smooth"])


@pytest.mark.slow
def test_tiny_run_writes_a_complete_record(tmp_path, capsys):
    bench = load_script()
    out = tmp_path / "record.json"
    record = bench.main(["--tiny", "--quiet", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(record))
    assert record["command"].startswith("python benchmarks/reward_defaults.py --tiny")
    assert {"date", "versions", "settings", "results", "values"} <= set(record)
    meshes = record["settings"]["meshes"]
    for case in bench.CASES:
        rows = bench.rows_of(record, case.key)
        assert set(rows) == {*bench.switches(case), bench.DEFAULTS}
        for by_mesh in rows.values():
            assert set(by_mesh) == set(meshes)
        for mesh in meshes:
            compat = record["values"][mesh][case.key]["compat"]
            assert len(compat) == record["settings"]["textures"] and all(math.isfinite(v) for v in compat)
    lines = bench.table_lines(record, ["curvature_color/sharp"])
    assert lines[0] == bench.table_header(record) and len(lines) == 2 + len(bench.rows_of(record, "curvature_color/sharp"))
    assert capsys.readouterr().out.lstrip().startswith("{")
