"""The summaries of an eval: per model and metric the mean, per adapter the paired comparison with
the base model (`texkit.evaluation.stats`), written as ``summary.json``, ``summary.csv`` and
``summary.md`` (a markdown table).

One row per (model, metric, mesh scope): the scope ``all`` pools every mesh; with several meshes
each mesh also gets its own rows. A base row holds the mean only; an adapter row also holds the
paired comparison against the base model on the same items: mean difference, its bootstrap
confidence interval and the win rate.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from texkit.evaluation.plan import BASE_LABEL
from texkit.evaluation.spec import EvalSpec
from texkit.evaluation.stats import summarize_pairs
from texkit.io import atomic_write_text

__all__ = ["summarize", "write_summaries", "markdown_table", "table_cells", "pairs", "CSV_COLUMNS", "ALL_MESHES"]

ALL_MESHES = "all"
"""The mesh scope of the rows that pool every mesh."""

CSV_COLUMNS = ("model", "metric", "mesh", "n", "mean", "base_mean", "mean_difference", "ci_low", "ci_high", "win_rate")
"""Columns of ``summary.csv`` (comparison columns are empty on the base model's rows)."""


def pairs(results: list[dict[str, Any]], model: str, metric: str, mesh: str = ALL_MESHES) -> tuple[list[float], list[float]]:
    """``(base values, model values)`` of ``metric`` on the items both painted, in result order."""
    key = ("mesh", "prompt", "seed")
    base = {tuple(r[k] for k in key): r["metrics"][metric] for r in results if r["model"] == BASE_LABEL and metric in r["metrics"]}
    base_values, model_values = [], []
    for r in results:
        if r["model"] != model or metric not in r["metrics"] or (mesh != ALL_MESHES and r["mesh"] != mesh):
            continue
        other = base.get(tuple(r[k] for k in key))
        if other is not None:
            base_values.append(other)
            model_values.append(r["metrics"][metric])
    return base_values, model_values


def summarize(results: list[dict[str, Any]], models: list[str], metrics: list[str], spec: EvalSpec) -> dict[str, Any]:
    """The ``summary.json`` content: ``{"rows": [...], "bootstrap": {...}, "models", "metrics", "meshes", "items"}``."""
    meshes = list(dict.fromkeys(r["mesh"] for r in results))
    scopes = [ALL_MESHES] + (meshes if len(meshes) > 1 else [])
    rows = []
    for metric in metrics:
        for scope in scopes:
            for model in models:
                values = [r["metrics"][metric] for r in results if r["model"] == model and (scope == ALL_MESHES or r["mesh"] == scope)]
                row: dict[str, Any] = {"model": model, "metric": metric, "mesh": scope, "n": len(values)}
                row["mean"] = sum(values) / len(values) if values else math.nan
                if model != BASE_LABEL:
                    base, ours = pairs(results, model, metric, scope)
                    paired = summarize_pairs(base, ours, spec.bootstrap_resamples, spec.confidence, spec.bootstrap_seed)
                    row.update(
                        base_mean=paired.base_mean,
                        mean_difference=paired.mean_difference,
                        ci_low=paired.ci_low,
                        ci_high=paired.ci_high,
                        win_rate=paired.win_rate,
                    )
                rows.append(row)
    return {
        "models": models,
        "metrics": metrics,
        "meshes": meshes,
        "items": len(results),
        "bootstrap": {"resamples": spec.bootstrap_resamples, "confidence": spec.confidence, "seed": spec.bootstrap_seed, "method": "percentile, paired"},
        "rows": rows,
    }


def _number(value: Any, digits: int = 4) -> str:
    if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}g}"


def table_cells(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The summary as text cells: the header and one row per summary row (model, metric, mesh, n, mean,
    difference from base with its CI, win rate); the markdown table and the page show these."""
    level = summary["bootstrap"]["confidence"]
    head = ["model", "metric", "mesh", "n", "mean", f"Δ vs base [{level:.0%} CI]", "win rate"]
    rows = []
    for row in summary["rows"]:
        diff = ""
        if "mean_difference" in row:
            diff = f"{_number(row['mean_difference'])} [{_number(row['ci_low'])}, {_number(row['ci_high'])}]"
        win = f"{row['win_rate']:.0%}" if isinstance(row.get("win_rate"), float) and not math.isnan(row["win_rate"]) else ""
        rows.append([row["model"], row["metric"], row["mesh"], str(row["n"]), _number(row["mean"]), diff, win])
    return head, rows


def markdown_table(summary: dict[str, Any]) -> str:
    """The rows as a markdown table (`table_cells`)."""
    head, rows = table_cells(summary)
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---:|---:|---|---:|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def write_summaries(out: Path, summary: dict[str, Any]) -> None:
    """Write ``summary.json``, ``summary.csv`` and ``summary.md`` into ``out`` (each atomically)."""
    import json

    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, allow_nan=True) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in summary["rows"]:
        writer.writerow(["" if row.get(c) is None else (repr(row[c]) if isinstance(row[c], float) else row[c]) for c in CSV_COLUMNS])
    atomic_write_text(out / "summary.csv", buffer.getvalue())
    level = summary["bootstrap"]
    note = (
        f"\nΔ: mean paired difference adapter - base over the same (mesh, prompt, seed) items; CI: percentile bootstrap, "
        f"{level['resamples']} resamples, seed {level['seed']}; win rate: share of items the adapter scores higher (ties count one half).\n"
    )
    atomic_write_text(out / "summary.md", "# texkit eval\n\n" + markdown_table(summary) + note)
