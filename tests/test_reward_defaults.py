"""benchmarks/reward_defaults.py: a CPU smoke run at a tiny size, its random textures, and the reward pages
showing its committed measurements (and nothing "not measured").

Every "Differences from the reference" table of a reward page that has ``compat = "reference"``
carries a column of the random-texture measurements (``benchmarks/results/reward_defaults.json``):
each switch the benchmark measured (a setting whose texkit default differs from the reference's)
has a row whose "compatible setting" names it, and that row's cell is exactly what the benchmark
script renders from the record; so is the row of texkit's defaults (``compat = "reference"``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "reward_defaults.py"


def load_script():
    """The benchmark script as a module."""
    spec = importlib.util.spec_from_file_location("reward_defaults", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = load_script()


def test_random_textures_are_seeded_in_range_and_varied():
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
    cases = {c.key: c for c in bench.CASES}
    alignment = bench.switches(cases["curvature_alignment"])
    assert "edges" not in alignment and "normalize" not in alignment  # texkit's default is the reference's there
    assert alignment["lookup"] == ("texkit", "reference") and alignment["padding"] == ("replicate", "zeros")
    assert "denominator" in bench.switches(cases["curvature_color/sharp"]) and "denominator" not in bench.switches(cases["curvature_color/smooth"])


@pytest.mark.slow
def test_tiny_run_writes_a_complete_record(tmp_path, capsys):
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
    cell = bench.differences_cell(record, "curvature_color", "denominator")  # sharp mode only
    assert cell.startswith("sharp: ρ ") and "smooth" not in cell and cell.count(",") == 2 * (len(meshes) - 1) + 1  # ", max"
    both = bench.differences_cell(record, "curvature_color", bench.DEFAULTS)
    assert both.startswith("sharp: ρ ") and "<br>smooth: ρ " in both
    assert capsys.readouterr().out.lstrip().startswith("{")


RECORD = ROOT / "benchmarks" / "results" / "reward_defaults.json"


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(RECORD.read_text())


def differences_rows(page: str) -> tuple[list[str], list[list[str]]]:
    """Header cells and rows of the table under "## Differences from the reference" of a page."""
    text = (ROOT / "docs" / "rewards" / f"{page}.md").read_text()
    section = text.split("## Differences from the reference", 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    return cells[0], cells[2:]


def _settings(cell: str) -> set[str]:
    """Keys named as `key = value` in a "compatible setting" cell."""
    return set(re.findall(r"`(\w+) = [^`]+`", cell))


def test_no_reward_page_says_not_measured():
    pages = sorted((ROOT / "docs" / "rewards").glob("*.md"))
    assert pages
    offenders = [p.name for p in pages if "not measured" in p.read_text().lower()]
    assert not offenders, offenders


def test_record_covers_every_switch_on_the_shared_meshes_with_enough_textures(record):
    assert record["settings"]["meshes"] == ["cow", "rabbit", "balloon", "demo"]
    assert record["settings"]["textures"] >= 20
    assert record["command"].startswith("python benchmarks/reward_defaults.py") and record["date"] and record["versions"]["torch"]
    for case in bench.CASES:
        rows = bench.rows_of(record, case.key)
        assert set(rows) == {*bench.switches(case), bench.DEFAULTS}, case.key  # the record is of the current switches


@pytest.mark.parametrize("page", list(bench.PAGES))
def test_differences_tables_show_the_measured_numbers(record, page):
    header, rows = differences_rows(page)
    assert header[-1] == bench.COLUMN, header
    setting_column = header.index("compatible setting")
    found: dict[str, str] = {}
    for row in rows:
        assert len(row) == len(header), row
        for key in _settings(row[setting_column]):
            found[bench.DEFAULTS if key == "compat" else key] = row[-1]
    for switch in bench.page_switches(record, page):
        assert switch in found, f"docs/rewards/{page}.md: no row for the measured switch {switch!r}"
        assert found[switch] == bench.differences_cell(record, page, switch), f"{page} {switch}"


def test_curvature_color_decision_is_backed_by_the_record(record):
    """The page's reasons, checked on the record: uncentred smooth values rank textures by their red-blue
    balance (|rho| >= 0.9 on every mesh), with a sign that follows the atlas mean of K; centred, they do not."""
    for mesh, diag in record["curvature_color_diagnostics"].items():
        smooth = diag["spearman_with_red_minus_blue"]["curvature_color/smooth"]
        assert abs(smooth["compat"]) >= 0.9, mesh
        assert (smooth["compat"] > 0) == (diag["atlas_mean_of_K"]["k_min"] > 0), mesh
        assert abs(smooth[bench.DEFAULTS]) < 0.5, mesh


def _seq(values: list[float], spec: str = "+.2f") -> str:
    return ", ".join(format(v, spec) for v in values)


def test_curvature_color_page_quotes_the_record(record):
    """The numbers of "Why smooth mode centres K" and "Sharp mode against the reference" are the record's."""
    page = " ".join((ROOT / "docs" / "rewards" / "curvature_color.md").read_text().split())
    diag = [record["curvature_color_diagnostics"][m] for m in record["settings"]["meshes"]]
    smooth = [d["spearman_with_red_minus_blue"]["curvature_color/smooth"] for d in diag]
    h_means, k_means = [d["atlas_mean_of_K"]["mean"] for d in diag], [d["atlas_mean_of_K"]["k_min"] for d in diag]
    assert "texkit's $H$ gives {}".format(", ".join(f"{v:+.2g} ({m})" for v, m in zip(h_means, record["settings"]["meshes"]))) in page
    assert f"texkit's $k_\\text{{min}}$ {_seq(k_means, '+.2g')}" in page
    assert f"ρ = {_seq([s['compat'] for s in smooth])} (cow, rabbit, balloon, demo)" in page
    assert f"drops to ρ = {_seq([s[bench.DEFAULTS] for s in smooth])}." in page
    assert f"it is {_seq([d['spearman_default_vs_compat_centred'] for d in diag])}" in page
    sharp = [d["spearman_with_red_minus_blue"]["curvature_color/sharp"] for d in diag]
    assert f"at most {max(abs(v) for s in sharp for v in s.values()):.2f} for every setting" in page
    tau = [d["below_tau"] for d in diag]
    assert f"is {100 * tau[0]['mean']:.0f} % for $H$ and {100 * tau[0]['k_min']:.2f} % for $k_\\text{{min}}$ on the cow" in page
