"""The collection part of a run's report (`texkit.report`): reward per mesh over the steps and a
before/after grid per mesh.

A collection run (`texkit.mesh_set`) records in every line of ``metrics.jsonl`` the meshes the
step drew (``meshes``) and their mean reward (``reward_by_mesh``); `plot_mesh_curves` draws that
reward per mesh against the step into ``reward_by_mesh.png``. The grid shows, for each mesh with
previews (the first mesh's are ``before/`` and ``after/``, the others' ``meshes/<name>/before|after/``,
``mesh.previews`` of them evenly spaced over the collection), its before and after views side by
side, and a table gives every mesh's draws and its first and last drawn reward. For a large
collection the plot shows the meshes with previews (at most `MAX_CURVES`) and the mean over all.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from texkit.page_parts import figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["collection_names", "mesh_history", "plot_mesh_curves", "mesh_section", "first_mesh_prompt", "MESH_CURVES_FILE", "MAX_CURVES"]

#: The per-mesh reward plot of a collection run, in the run folder.
MESH_CURVES_FILE = "reward_by_mesh.png"

#: At most this many meshes get their own curve; a larger collection shows those with previews.
MAX_CURVES = 8


def collection_names(config: dict[str, Any], metrics: list[dict[str, Any]]) -> list[str]:
    """The mesh names of a collection run in collection order (`texkit.mesh_set.mesh_items` of its
    ``config.json``); from ``metrics.jsonl`` in order of first draw when the config cannot be read
    (a mesh folder moved). Empty for a one-mesh run."""
    from texkit.config import parse_config
    from texkit.errors import TexkitError
    from texkit.mesh_set import mesh_items
    from texkit.run_record import recorded_settings

    try:
        names = [item.name for item in mesh_items(parse_config(recorded_settings(config)))]
    except (TexkitError, ValueError, TypeError):
        names = list(dict.fromkeys(n for m in metrics for n in m.get("meshes", []) if isinstance(n, str)))
    return names if len(names) > 1 else []


def mesh_history(metrics: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """``{mesh: [(step, mean reward of its samples that step), ...]}`` from the steps' ``reward_by_mesh``."""
    out: dict[str, list[tuple[int, float]]] = {}
    for line in metrics:
        by_mesh, step = line.get("reward_by_mesh"), line.get("step")
        if isinstance(by_mesh, dict) and isinstance(step, (int, float)):
            for name, value in by_mesh.items():
                if isinstance(value, (int, float)):
                    out.setdefault(name, []).append((int(step), float(value)))
    return out


def plot_mesh_curves(history: dict[str, list[tuple[int, float]]], shown: list[str], path: Path) -> "Figure":
    """Plot the reward of each mesh in ``shown`` against the step (a marker per draw) and, when the
    collection has more meshes than that, the mean of each step's draws over all; into a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7.0, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, name in enumerate(shown):
        series = history.get(name, [])
        if series:
            steps, values = zip(*series)
            ax.plot(steps, values, color=f"C{i % 10}", marker=".", linewidth=1.2, label=name)
    if len(history) > len(shown):
        by_step: dict[int, list[float]] = {}
        for series in history.values():
            for step, value in series:
                by_step.setdefault(step, []).append(value)
        steps = sorted(by_step)
        ax.plot(steps, [sum(by_step[s]) / len(by_step[s]) for s in steps], color="black", linewidth=2, label=f"all {len(history)} meshes (mean of the draws)")
    ax.set_xlabel("training step")
    ax.set_ylabel("reward of the mesh's samples")
    ax.set_title("reward per mesh (each point: a step that drew the mesh)", fontsize=10)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if shown:
        ax.legend(fontsize=8, loc="best")
    fig.savefig(path)
    return fig


def _previews(run: Path, names: list[str]) -> list[tuple[str, Path | None, Path | None]]:
    """``(name, before views, after views)`` of each mesh with previews, in collection order."""
    from texkit.mesh_batch import MESH_PREVIEWS

    rows = []
    for index, name in enumerate(names):
        folder = run if index == 0 else run / MESH_PREVIEWS / name
        before, after = folder / "before" / "views.png", folder / "after" / "views.png"
        if after.exists() or before.exists():
            rows.append((name, before if before.exists() else None, after if after.exists() else None))
    return rows


def mesh_section(run: Path, metrics: list[dict[str, Any]], names: list[str]) -> str:
    """The report's "Meshes" section of a collection run (writes ``reward_by_mesh.png``); "" for one mesh."""
    if not names:
        return ""
    history = mesh_history(metrics)
    previews = _previews(run, names)
    with_previews = [name for name, _, _ in previews]
    shown = names if len(names) <= MAX_CURVES else with_previews[:MAX_CURVES]
    plot_mesh_curves(history, shown, run / MESH_CURVES_FILE)
    grid = "".join(
        f'<div class="pair"><h3>{html.escape(name)}</h3>{figure(run, before, f"{name}: before")}{figure(run, after, f"{name}: after")}</div>'
        for name, before, after in previews
    )
    rows = []
    for name in names:
        series = history.get(name, [])
        first, last = (f"{series[0][1]:.4f}", f"{series[-1][1]:.4f}") if series else ("", "")
        trend = "up" if len(series) > 1 and series[-1][1] > series[0][1] else "down" if len(series) > 1 else ""
        rows.append(f'<tr><td>{html.escape(name)}</td><td>{len(series)}</td><td>{first}</td><td class="{trend}">{last}</td></tr>')
    sample = "" if len(previews) == len(names) else f" (previews of {len(previews)} of the {len(names)} meshes, evenly spaced: <code>mesh.previews</code>)"
    return f"""<h2>Meshes ({len(names)})</h2>
<figure><img src="{MESH_CURVES_FILE}" alt="reward per mesh against the training step"><figcaption>reward per mesh over the steps (metrics.jsonl: reward_by_mesh)</figcaption></figure>
<p>Before and after, per mesh{sample}:</p>
{grid}
<details><summary>Reward per mesh ({len(names)} meshes)</summary><table><tr><th>mesh</th><th>steps drawn</th><th>first draw</th><th>last draw</th></tr>{"".join(rows)}</table></details>"""


def first_mesh_prompt(prompt: str, names: list[str]) -> str:
    """The previews' prompt with ``{name}`` filled in for the collection's first mesh (whose previews the page shows first)."""
    return prompt.replace("{name}", names[0]) if names else prompt

