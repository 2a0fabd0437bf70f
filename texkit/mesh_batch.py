"""One training batch on the run's meshes: which mesh each sample paints, painting and scoring them.

A one-mesh run paints its batch as it always did (`texkit.session.Session.draw_batch`, one
`Session.paint`, one `Session.score_batch`). A collection (`texkit.mesh_set`) draws meshes with
the run's `MeshSampler`: with ``mesh.batching = "per_batch"`` the whole batch paints one mesh; with
``"mixed"`` every sample draws its own, and the samples of each mesh are painted (and scored) together,
one group after the other, each group with its mesh's geometry through the view loop, the renderer
and the back-projection. Sample ``b`` always takes the prompt and seeds of its slot of the step
(`Session.draw`) from its mesh's prompts, so a mixed batch equals its samples run one by one.
Only the meshes of the current batch are on the device (`Session.on_mesh`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from texkit.mesh_set import LoadedMesh, MeshSampler, preview_indices
from texkit.reward_set import Scores

if TYPE_CHECKING:  # pragma: no cover
    from texkit.session import Session
    from texkit.types import Texture

__all__ = ["BatchResult", "MeshBatcher", "mesh_step_metrics", "MESH_PREVIEWS"]

#: Folder of a run with the previews of the collection's other meshes: ``meshes/<name>/before|after/``.
MESH_PREVIEWS = "meshes"


@dataclass
class BatchResult:
    """B painted and scored samples.

    Attributes:
        totals: ``(B,)`` weighted reward sums (differentiable).
        metrics: one dict of floats per sample (`texkit.reward_set.Scores.metrics`).
        prompts: the B prompts.
        meshes: the B mesh names (empty for a one-mesh run).
        first: the texture of sample 0 (its ``(T, T, 3)`` image and coverage; what ``texkit train`` shows as the latest).
        first_mesh: the collection index of sample 0's mesh (0 for a one-mesh run).
    """

    totals: torch.Tensor
    metrics: list[dict[str, float]]
    prompts: list[str]
    meshes: list[str] = field(default_factory=list)
    first: "Texture | None" = None
    first_mesh: int = 0

    def mean_metrics(self) -> dict[str, float]:
        """Every metric averaged over the samples (as `texkit.reward_set.Scores.mean_metrics`)."""
        return Scores(self.totals, {}, self.metrics).mean_metrics()


class MeshBatcher:
    """Paints and scores the batches of a run on its mesh or collection.

    Args:
        session: the run's session (built on the first mesh).
        loaded: the collection's meshes (`texkit.mesh_set.load_collection`); None or one mesh: the
            session's own mesh.
    """

    def __init__(self, session: "Session", loaded: list[LoadedMesh] | None = None) -> None:
        self.session = session
        self.loaded = list(loaded) if loaded and len(loaded) > 1 else []
        cfg = session.config
        self.mixed = bool(self.loaded) and cfg.mesh.batching == "mixed"
        self.sampler = MeshSampler([m.item for m in self.loaded], cfg.mesh.sampling, cfg.training.seed) if self.loaded else None
        self._active: tuple[int, "Session"] | None = None

    @property
    def names(self) -> list[str]:
        """The collection's mesh names (empty for a one-mesh run)."""
        return [m.item.name for m in self.loaded]

    def session_for(self, index: int) -> "Session":
        """The session on mesh ``index`` of the collection (the last one asked for stays on the device)."""
        if not self.loaded:
            return self.session
        if self._active is None or self._active[0] != index:
            self._active = None  # release the previous mesh's device copy first
            self._active = (index, self.session.on_mesh(self.loaded[index]))
        return self._active[1]

    def write_previews(self, run_dir: Path, which: str, seed: int) -> list[Path]:
        """Paint the previews of the collection's sampled meshes (``mesh.previews``, `preview_indices`)
        other than the first (whose previews are ``before/`` and ``after/``) into
        ``<run_dir>/meshes/<name>/<which>/``; returns the folders (none for a one-mesh run)."""
        if not self.loaded:
            return []
        folders = []
        for index in preview_indices(len(self.loaded), self.session.config.mesh.previews)[1:]:
            folder = Path(run_dir) / MESH_PREVIEWS / self.loaded[index].item.name / which
            self.session_for(index).preview(folder, seed)
            folders.append(folder)
        return folders

    def mesh_indices(self, step: int, rank: int, micro: int, world_size: int = 1) -> list[int]:
        """The mesh index of each sample of micro-batch ``micro`` of ``rank`` at ``step`` (`MeshSampler`)."""
        cfg = self.session.config.training
        batch, accum = cfg.batch_size, cfg.grad_accum
        if self.sampler is None:
            return [0] * batch
        unit = rank * accum + micro
        if not self.mixed:
            return [self.sampler.draw(step, unit, world_size * accum)] * batch
        return [self.sampler.draw(step, unit * batch + b, world_size * accum * batch) for b in range(batch)]

    def run(self, step: int, rank: int, micro: int, world_size: int = 1) -> BatchResult:
        """Paint and score micro-batch ``micro`` of ``rank`` at ``step``: sample ``b`` takes slot
        ``(rank * grad_accum + micro) * batch_size + b`` of the step's draws (`Session.draw`)."""
        cfg = self.session.config.training
        first = (rank * cfg.grad_accum + micro) * cfg.batch_size
        indices = self.mesh_indices(step, rank, micro, world_size)
        totals: list[torch.Tensor | None] = [None] * len(indices)
        metrics: list[dict[str, float]] = [{} for _ in indices]
        prompts = [""] * len(indices)
        first_texture: "Texture | None" = None
        for index in dict.fromkeys(indices):  # each mesh of the batch once, in order of first appearance
            samples = [b for b, i in enumerate(indices) if i == index]
            session = self.session_for(index)
            group_prompts, seeds = [], []
            for b in samples:
                prompt, view_seeds = session.draw(step, first + b)
                group_prompts.append(prompt)
                seeds.append(view_seeds)
            textures = session.paint(group_prompts, seeds)
            scores = session.score_batch(textures, group_prompts)
            if samples[0] == 0:  # the group of sample 0 (the first group)
                first_texture = textures.sample(0)
            for k, b in enumerate(samples):
                totals[b], metrics[b], prompts[b] = scores.total[k], scores.metrics[k], group_prompts[k]
        names = [self.loaded[i].item.name for i in indices] if self.loaded else []
        return BatchResult(torch.stack([t.reshape(()) for t in totals if t is not None]), metrics, prompts, names, first_texture, indices[0])


def mesh_step_metrics(samples: list[dict[str, Any]], merged: dict[str, Any]) -> None:
    """Put a collection step's per-mesh metrics into ``merged`` (the step's metrics), from the
    micro-batches' metrics of every rank in slot order: ``meshes`` (every sample's mesh) and
    ``reward_by_mesh`` (``{name: mean reward/total}`` of the meshes drawn this step). The raw
    ``mesh_rewards`` entries are dropped. Nothing changes for a one-mesh run."""
    merged.pop("mesh_rewards", None)
    names = [n for s in samples for n in s.get("meshes", [])]
    if not names:
        return
    rewards = [r for s in samples for r in s.get("mesh_rewards", [])]
    by_mesh: dict[str, list[float]] = {}
    for name, reward in zip(names, rewards):
        by_mesh.setdefault(name, []).append(reward)
    merged["meshes"] = names
    merged["reward_by_mesh"] = {name: sum(v) / len(v) for name, v in by_mesh.items()}
