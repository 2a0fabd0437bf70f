"""``texkit eval``: paint every item of an `EvalPlan`, score it, write it, then summarise.

The generator is built once. For each mesh, each model (the base model first, then each
adapter, loaded over the base weights) paints its items in batches of ``samples`` through the
same batched path training uses (`texkit.session.Session.paint`), and every metric scores the
batch from one render of the reward cameras (`texkit.reward_set.RewardSet`). Each item is
written as a whole folder, atomically (`texkit.io.atomic_folder`): ``texture.png``, ``views.png``
and ``result.json``. A rerun skips every batch whose items all exist; a batch with some missing
is painted again whole (so its items see the same batch as in an uninterrupted run) and only
the missing ones are written. At the end ``results.jsonl``, the summaries and ``eval.html`` are
rebuilt from the item files (`texkit.evaluation.summary`, `texkit.evaluation.page`), so the same
inputs give byte-identical results.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from texkit.errors import TexkitError
from texkit.evaluation.page import write_page
from texkit.evaluation.plan import EvalPlan, Item, Model, view_seeds
from texkit.evaluation.summary import summarize, write_summaries
from texkit.imageio import write_image
from texkit.io import atomic_folder, atomic_write_text
from texkit.page_parts import flatten
from texkit.registry import get_registry
from texkit.reward_set import RewardSet
from texkit.run_record import versions_record
from texkit.session import Session
from texkit.threads import apply_threads, model_parameters

__all__ = ["run_eval", "EvalResult", "EVAL_FILE", "EVAL_OUTPUTS"]

EVAL_FILE = "eval.json"
"""The file that marks a folder as an eval's and records the settings its items were painted with."""

EVAL_OUTPUTS = (EVAL_FILE, "spec.toml", "items", "results.jsonl", "summary.json", "summary.csv", "summary.md", "eval.html", "plots", "versions.json")
"""What ``texkit eval`` writes into its output folder (what ``--overwrite`` removes)."""


@dataclass
class EvalResult:
    """What an eval wrote.

    Attributes:
        out: the output folder.
        results: one dict per item (the lines of ``results.jsonl``).
        summary: the content of ``summary.json``.
        painted: items painted by this call (the others existed already).
    """

    out: Path
    results: list[dict[str, Any]]
    summary: dict[str, Any]
    painted: int


def _prepare_folder(out: Path, settings: dict[str, Any], overwrite: bool) -> None:
    """Claim ``out`` for this eval: new, the same eval resumed, or replaced with ``overwrite``.

    Raises:
        TexkitError: ``out`` is a file, holds other files, or holds an eval with other settings.
    """
    if out.exists() and not out.is_dir():
        raise TexkitError(f"--out {out} is a file; pass a folder (it is created when missing)")
    record = out / EVAL_FILE
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in EVAL_OUTPUTS and not p.name.startswith("."))
        if foreign:
            raise TexkitError(f"--out {out} holds files texkit eval did not write ({', '.join(foreign[:3])}); pass --out with another folder")
        if overwrite:
            for name in EVAL_OUTPUTS:
                path = out / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        elif record.exists():
            try:
                before = json.loads(record.read_text(encoding="utf-8")).get("settings")
            except ValueError:
                before = None
            if before != settings:
                changed = _first_difference(before, settings)
                raise TexkitError(
                    f"--out {out} holds an eval painted with other settings ({changed}); pass --overwrite to replace it or --out with another folder"
                )
        elif any(out.iterdir()):
            raise TexkitError(f"--out {out} holds eval outputs without {EVAL_FILE}; pass --overwrite to replace them or --out with another folder")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record, json.dumps({"settings": settings}, indent=2) + "\n")


def _first_difference(before: Any, now: dict[str, Any]) -> str:
    """``key: old -> new`` of the first setting that differs (for the one-line error)."""
    if not isinstance(before, dict):
        return f"{EVAL_FILE} is unreadable"
    old, new = flatten(before), flatten(now)
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return f"{key}: {old.get(key, '(unset)')} -> {new.get(key, '(unset)')}"
    return "unknown"


def _done(out: Path, item: Item) -> bool:
    return (out / item.folder / "result.json").is_file()


def _use_model(session: Session, model: Model, base_state: list[torch.Tensor]) -> None:
    """Put the base weights back, then load ``model``'s adapter over them (nothing for the base model)."""
    with torch.no_grad():
        for param, value in zip(session.generator.trainable_parameters(), base_state):
            param.copy_(value)
    if model.adapter is not None:
        session.generator.load_adapter(model.adapter.weights)


def _batches(items: list[Item], size: int) -> list[list[Item]]:
    """Consecutive batches of ``size`` items (the last one may be shorter): the same on every run."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def _paint_batch(session: Session, metrics: RewardSet, batch: list[Item]) -> tuple[Any, Any]:
    """Paint and score one batch; returns the ``(B, T, T, 3)`` textures and the `Scores`."""
    views = len(session.angles["paint_elevation"])
    prompts = [item.prompt for item in batch]
    with torch.no_grad():
        textures = session.paint(prompts, [view_seeds(item.seed, views) for item in batch])
        scores = metrics.score(session.mesh, textures, session.cameras("reward"), session.render, session.cache, prompts, session.device)
    return textures, scores


def _write_item(out: Path, item: Item, texture: Any, views: torch.Tensor, values: dict[str, float], details: dict[str, float]) -> None:
    """Write one item's folder atomically: ``texture.png``, ``views.png``, then ``result.json``."""
    result = {
        "model": item.model.label,
        "adapter": None if item.model.adapter is None else item.model.adapter.label,
        "mesh": item.mesh,
        "prompt": item.prompt,
        "seed": item.seed,
        "metrics": values,
        "details": details,
        "texture": (item.folder / "texture.png").as_posix(),
        "views": (item.folder / "views.png").as_posix(),
    }
    with atomic_folder(out / item.folder) as tmp:
        write_image(tmp / "texture.png", texture.image)
        write_image(tmp / "views.png", views)
        (tmp / "result.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def run_eval(
    plan: EvalPlan,
    out: Path,
    overwrite: bool = False,
    threads: int | None = None,
    console: Console | None = None,
    notify: Callable[[str], None] | None = None,
) -> EvalResult:
    """Paint, score and write every item of ``plan`` not yet in ``out``; then write the summaries and page.

    Args:
        plan: what to evaluate (`texkit.evaluation.plan.plan_eval`).
        out: the output folder.
        overwrite: replace an earlier eval in ``out`` instead of resuming it.
        threads: intra-op CPU threads (0: torch's default); None: chosen from the work size.
        console: where the progress bar goes (stderr by default; shown on a terminal only).
        notify: receives one-line notices (prompt overlap, meshes converted on load).

    Raises:
        TexkitError: a bad output folder, adapter, mesh, metric or setting (one line).
    """
    out = Path(out)
    console = console or Console(stderr=True)
    reg = get_registry()
    metric_set = RewardSet({m.key: reg.make_reward(m.name, m.params) for m in plan.metrics})  # bad names fail before any work
    settings = plan.settings()
    _prepare_folder(out, settings, overwrite)
    atomic_write_text(out / "spec.toml", plan.spec.to_toml())
    for line in plan.notes:
        if notify is not None:
            notify(line)
    items = plan.items()
    todo = [item for item in items if not _done(out, item)]
    painted = 0
    if todo:
        painted = _paint_items(plan, out, items, metric_set, threads, console, notify)
    atomic_write_text(out / "versions.json", json.dumps(versions_record(), indent=2) + "\n")
    results = [json.loads((out / item.folder / "result.json").read_text(encoding="utf-8")) for item in items]
    atomic_write_text(out / "results.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in results))
    summary = summarize(results, [m.label for m in plan.models], [m.key for m in plan.metrics], plan.spec)
    write_summaries(out, summary)
    write_page(out, plan, results, summary)
    return EvalResult(out, results, summary, painted)


def _paint_items(
    plan: EvalPlan,
    out: Path,
    items: list[Item],
    metric_set: RewardSet,
    threads: int | None,
    console: Console,
    notify: Callable[[str], None] | None,
) -> int:
    """Build the generator once and paint every batch with a missing item; returns the items written."""
    session = Session.build(plan.config, need_rewards=False, notify=notify)
    tex = plan.config.texture
    count, why = apply_threads(session.device, model_parameters(session.generator), max(tex.size, tex.render_size) ** 2, threads)
    base_state = [p.detach().clone() for p in session.generator.trainable_parameters()]
    done = sum(_done(out, item) for item in items)
    columns = (TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn())
    console.print(f"eval: {len(items) - done} of {len(items)} items to paint, {plan.spec.samples} per batch; {count} intra-op CPU thread(s) ({why})", soft_wrap=True, markup=False, highlight=False)
    painted = 0
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as bar:
        task = bar.add_task("eval", total=len(items), completed=done, info="")
        for mesh_index, mesh in enumerate(plan.meshes):
            mesh_session = session if mesh_index == 0 else session.with_mesh(mesh, notify)
            metric_set.prepare(mesh_session.cache.mesh, mesh_session.cache)
            for model in plan.models:
                group = [item for item in items if item.model is model and item.mesh == mesh]
                batches = [b for b in _batches(group, plan.spec.samples) if not all(_done(out, item) for item in b)]
                if not batches:
                    continue
                _use_model(mesh_session, model, base_state)
                for batch in batches:
                    bar.update(task, info=f"{model.label} · {Path(mesh).name}")
                    textures, scores = _paint_batch(mesh_session, metric_set, batch)
                    grids = mesh_session.views_image(textures, plan.spec.grid_views)  # one render call for the batch
                    for b, item in enumerate(batch):
                        if _done(out, item):
                            continue
                        values = {key: float(scores.values[key][b]) for key in metric_set}
                        details = {k: v for k, v in scores.metrics[b].items() if not k.startswith("reward/")}
                        _write_item(out, item, textures.sample(b), grids[b], values, details)
                        painted += 1
                        bar.advance(task)
    return painted
