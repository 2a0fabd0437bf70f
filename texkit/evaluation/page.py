"""``eval.html``: the summary table, one paired plot per metric, and the textures side by side.

Assembled from the same page parts as a training run's report (`texkit.page_parts`); every image
is a file in the eval's folder linked by a relative path, so the page works from disk.

Each metric's plot (``plots/<metric>.png``) has two panels per adapter: on the left the base
model's value and the adapter's value of every (mesh, prompt, seed) item joined by a line (the
paired before/after); on the right the paired differences ``adapter - base`` with their mean
and its bootstrap confidence interval as an error bar, and the win rate in the title.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from texkit.evaluation.plan import BASE_LABEL, EvalPlan
from texkit.evaluation.summary import ALL_MESHES, pairs, table_cells
from texkit.io import atomic_path, atomic_write_text
from texkit.page_parts import figure, flatten, img, links, page, read_json, table

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_metric", "write_page", "GRID_ROWS"]

GRID_ROWS = 64
"""Rows (mesh, prompt, seed) of the texture grid on the page; the files hold every item."""


def plot_metric(results: list[dict[str, Any]], summary: dict[str, Any], metric: str, path: Path) -> "Figure":
    """Draw ``metric``'s paired plot into ``path`` (PNG; matplotlib's Agg canvas, no display needed).

    Returns:
        The figure: two axes per adapter (paired values; differences with mean and CI), one for
        the base model's values when there is no adapter.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    adapters = [m for m in summary["models"] if m != BASE_LABEL]
    rows = {(r["model"], r["metric"]): r for r in summary["rows"] if r["mesh"] == ALL_MESHES}
    panels = max(1, len(adapters))
    fig = Figure(figsize=(9.0, 3.4 * panels), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    if not adapters:
        ax = fig.add_subplot(1, 1, 1)
        values = [r["metrics"][metric] for r in results if r["model"] == BASE_LABEL and metric in r["metrics"]]
        ax.plot([0] * len(values), values, "o", alpha=0.6)
        ax.set_xticks([0], [BASE_LABEL])
        ax.set_ylabel(f"{metric} (higher is better)")
        ax.set_title(f"{metric}: base model, {len(values)} items", fontsize=10)
    for i, adapter in enumerate(adapters):
        base, ours = pairs(results, adapter, metric)
        row = rows.get((adapter, metric), {})
        left = fig.add_subplot(panels, 2, 2 * i + 1)
        for b, a in zip(base, ours):
            left.plot([0, 1], [b, a], color="C2" if a > b else "C3", alpha=0.5, marker="o", markersize=3, linewidth=1)
        left.set_xticks([0, 1], [BASE_LABEL, _short(adapter)])
        left.set_xlim(-0.3, 1.3)
        left.set_ylabel(f"{metric} (higher is better)")
        left.set_title(f"paired values, {len(base)} items", fontsize=10)
        left.grid(True, axis="y", alpha=0.3)
        right = fig.add_subplot(panels, 2, 2 * i + 2)
        diffs = [a - b for b, a in zip(base, ours)]
        jitter = [((k * 0.618034) % 1.0 - 0.5) * 0.3 for k in range(len(diffs))]  # deterministic spread
        right.plot(jitter, diffs, "o", color="C0", alpha=0.5, markersize=4)
        right.axhline(0.0, color="#888", linewidth=1)
        mean, low, high = row.get("mean_difference", math.nan), row.get("ci_low", math.nan), row.get("ci_high", math.nan)
        if not math.isnan(mean):
            right.errorbar([0.45], [mean], yerr=[[mean - low], [high - mean]], fmt="s", color="black", capsize=6, markersize=6)
        right.set_xlim(-0.4, 0.7)
        right.set_xticks([0, 0.45], ["items", "mean, CI"])
        right.set_ylabel(f"{_short(adapter)} - base")
        level = summary["bootstrap"]["confidence"]
        win = row.get("win_rate", math.nan)
        right.set_title(f"mean Δ {mean:.3g}, {level:.0%} CI [{low:.3g}, {high:.3g}]\nwin rate {win:.0%}", fontsize=10)
        right.grid(True, axis="y", alpha=0.3)
    fig.savefig(path, format="png")
    return fig


def _short(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else "…" + label[-(limit - 1) :]


def _summary_table(summary: dict[str, Any]) -> str:
    """The summary rows as an HTML table (the markdown table's columns)."""
    head_cells, rows = table_cells(summary)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in head_cells)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="summary"><tr>{head}</tr>{body}</table>'


def _grid(out: Path, results: list[dict[str, Any]], models: list[str], metrics: list[str]) -> str:
    """One table row per (mesh, prompt, seed), one column per model: its views, texture and metric values."""
    by_item: dict[tuple[str, str, int], dict[str, dict[str, Any]]] = {}
    for r in results:
        by_item.setdefault((r["mesh"], r["prompt"], r["seed"]), {})[r["model"]] = r
    keys = list(by_item)
    head = "<tr><th>mesh · prompt · seed</th>" + "".join(f"<th>{html.escape(m)}</th>" for m in models) + "</tr>"
    rows = []
    for mesh, prompt, seed in keys[:GRID_ROWS]:
        cells = [f"<td>{html.escape(Path(mesh).name)}<br>{html.escape(prompt)}<br>seed {seed}</td>"]
        for model in models:
            r = by_item[(mesh, prompt, seed)].get(model)
            if r is None:
                cells.append("<td></td>")
                continue
            values = "<br>".join(f"{html.escape(k)} {r['metrics'][k]:.4g}" for k in metrics if k in r["metrics"])
            alt = f"{model}: {prompt}, seed {seed}"
            cells.append(f"<td>{img(out, out / r['views'], alt + ' (views)', 256)}{img(out, out / r['texture'], alt + ' (texture)', 64)}<br><small>{values}</small></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p>The first {GRID_ROWS} of {len(keys)} rows; every item is in items/ and results.jsonl.</p>" if len(keys) > GRID_ROWS else ""
    return f'<table class="grid">{head}{"".join(rows)}</table>{more}'


_STYLE = " .grid td{vertical-align:top;font-size:0.85em} .grid img{display:inline-block;vertical-align:top;margin:0 2px 2px 0} #summary td{font-variant-numeric:tabular-nums}"


def write_page(out: Path, plan: EvalPlan, results: list[dict[str, Any]], summary: dict[str, Any]) -> Path:
    """Write ``plots/<metric>.png`` and ``eval.html`` into ``out``; returns the page's path."""
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    sections = []
    for metric in summary["metrics"]:
        path = plots / f"{metric}.png"
        with atomic_path(path) as tmp:
            plot_metric(results, summary, metric, tmp)
        sections.append(f"<h3>{html.escape(metric)}</h3>" + figure(out, path, f"{metric}: paired values per item (left), differences adapter - base with mean and CI (right)"))
    boot = summary["bootstrap"]
    n_models = len(summary["models"])
    intro = (
        f"<p>{summary['items']} items: {n_models} model(s) ({', '.join(html.escape(m) for m in summary['models'])}) × "
        f"{len(plan.meshes)} mesh(es) × {len(plan.prompts)} prompt(s) × {len(plan.seeds)} seed(s). Δ is the mean paired "
        f"difference adapter - base over the same items (same noise); the interval is a percentile bootstrap "
        f"({boot['resamples']} resamples, seed {boot['seed']}, {boot['confidence']:.0%}); the win rate is the share of "
        "items the adapter scores higher (ties count one half). Every metric: higher is better.</p>"
    )
    files = {name: out / name for name in ("results.jsonl", "summary.json", "summary.csv", "summary.md", "spec.toml", "versions.json")}
    body = (
        intro
        + "<h2>Summary</h2>"
        + _summary_table(summary)
        + "<h2>Metrics</h2>"
        + "".join(sections)
        + "<h2>Textures side by side</h2>"
        + _grid(out, results, summary["models"], summary["metrics"])
        + f"<h2>Files</h2><p>{links(out, files)}</p>"
        + f"<details><summary>Settings</summary>{table(flatten(plan.settings()), ('setting', 'value'))}</details>"
        + f"<details><summary>Versions</summary>{table(flatten(read_json(out / 'versions.json')), ('package', 'version'))}</details>"
    )
    atomic_write_text(out / "eval.html", page(f"texkit eval: {out.resolve().name}", body, _STYLE))
    return out / "eval.html"
