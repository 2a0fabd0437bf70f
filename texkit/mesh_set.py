"""The meshes of a run and the rule that draws them: one mesh, or a collection trained into one adapter.

A run config names its meshes with ``[[meshes]]`` tables or with ``mesh.path`` (a file or built-in
name, a folder, a glob or a ``.txt`` list file); `mesh_items` turns either into `MeshItem`\\ s.
`MeshSampler` is the documented draw rule (``mesh.sampling``): draw ``u`` of step ``s``, with ``U``
draws per step, takes

* ``cycle``: mesh ``(s * U + u) % M``, the collection in order;
* ``weighted``: ``random.Random(f"texkit:mesh:{seed}:{s}:{u}").choices(range(M), weights)[0]``.

A draw is a pure function of the run seed, the step and ``u``, so the mesh draws need no state of
their own in a checkpoint: a resumed run draws exactly what an uninterrupted one draws. A draw is
one micro-batch (``mesh.batching = "per_batch"``: ``u = rank * grad_accum + micro``) or one sample
(``"mixed"``: ``u = (rank * grad_accum + micro) * batch_size + b``), so ranks and micro-batches
draw different meshes.

`load_collection` loads every mesh (with a progress bar) before anything else of a run is built,
so a mesh that does not load stops the run with one line naming its file; `prepare_geometry` then
runs the rewards' geometry precomputation for every mesh (cached on disk, `texkit.geometry.cache`).
The loaded meshes stay on the CPU; `texkit.session.Session.on_mesh` moves one to the device when a
batch draws it.
"""

from __future__ import annotations

import glob
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from texkit.errors import ConfigError, MeshError

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from texkit.config import RunConfig
    from texkit.geometry.cache import GeometryCache
    from texkit.geometry.mesh import Mesh
    from texkit.initial_texture import InitialTexture
    from texkit.reward_set import RewardSet

__all__ = [
    "MeshItem",
    "LoadedMesh",
    "MeshSampler",
    "mesh_items",
    "expand_mesh_path",
    "is_collection",
    "primary_item",
    "with_name",
    "mesh_name",
    "load_collection",
    "prepare_geometry",
    "preview_indices",
    "LIST_SUFFIX",
]

#: Suffix of a list file given as ``mesh.path``: one mesh per line, relative to the list file.
LIST_SUFFIX = ".txt"

NAME_FIELD = "{name}"


@dataclass(frozen=True)
class MeshItem:
    """One mesh of a run.

    Attributes:
        name: its name in prompts (``{name}``), metrics and the report (unique in the run).
        path: the file or built-in name, as `texkit.geometry.primitives.load_mesh` takes it.
        prompts: the prompts drawn for it; None: the run's ``[prompts]``.
        weight: relative draw probability under ``mesh.sampling = "weighted"``.
    """

    name: str
    path: str
    prompts: tuple[str, ...] | None = None
    weight: float = 1.0


@dataclass
class LoadedMesh:
    """A mesh of the run, loaded on the CPU with what painting and scoring it needs.

    Attributes:
        item: what the config says about it.
        mesh: the normalised mesh (CPU).
        cache: its geometry cache (memory and disk).
        initial: its initial texture (``texture.init``), or None.
    """

    item: MeshItem
    mesh: "Mesh"
    cache: "GeometryCache"
    initial: "InitialTexture | None" = None


def with_name(prompts: list[str] | tuple[str, ...], name: str) -> list[str]:
    """The prompts with ``{name}`` replaced by the mesh's name (other braces are left as they are)."""
    return [p.replace(NAME_FIELD, name) for p in prompts]


def _mesh_files(folder: Path) -> list[str]:
    from texkit.geometry.mesh import SUPPORTED_SUFFIXES

    return [str(p) for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES]


def expand_mesh_path(spec: str) -> list[str]:
    """The meshes ``mesh.path`` names: a built-in name or file (itself), a folder (its mesh files,
    sorted), a glob (its matches, sorted) or a ``.txt`` list file (its lines, relative to the file).

    Raises:
        MeshError: a folder, glob or list file that names no mesh, or a list file that cannot be read.
    """
    from texkit.geometry.mesh import SUPPORTED_SUFFIXES
    from texkit.geometry.primitives import BUILTIN_MESHES

    if spec in BUILTIN_MESHES:
        return [spec]
    path = Path(spec)
    if path.is_dir():
        found = _mesh_files(path)
        if not found:
            raise MeshError(f"mesh folder {path} holds no mesh file ({', '.join(SUPPORTED_SUFFIXES)}); add mesh files to it or set mesh.path to a mesh file")
        return found
    if path.suffix.lower() == LIST_SUFFIX and path.is_file():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise MeshError(f"cannot read the mesh list {path} ({type(err).__name__}); save it as UTF-8 text, one mesh per line") from None
        entries = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        if not entries:
            raise MeshError(f"mesh list {path} names no mesh; add one mesh file per line")
        return [e if e in BUILTIN_MESHES or Path(e).is_absolute() else str(path.parent / e) for e in entries]
    if glob.has_magic(spec):
        found = sorted(p for p in glob.glob(spec) if Path(p).is_file())
        if not found:
            raise MeshError(f"mesh pattern {spec} matches no file; check the pattern (relative to the working directory)")
        return found
    return [spec]


def mesh_name(path: str) -> str:
    """The default name of a mesh: the built-in name, or the file name without its suffix."""
    from texkit.geometry.primitives import BUILTIN_MESHES

    return path if path in BUILTIN_MESHES else Path(path).stem


def _unique(names: list[str]) -> list[str]:
    """Names made unique in order: a repeated name gets ``-2``, ``-3``, ..."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        out.append(name if count == 1 else f"{name}-{count}")
    return out


def mesh_items(config: "RunConfig") -> list[MeshItem]:
    """The run's meshes in draw order: its ``[[meshes]]`` tables, else what ``mesh.path`` names.

    Raises:
        ConfigError: ``mesh.per_rank`` together with a ``mesh.path`` that names several meshes, or two
            ``[[meshes]]`` tables with the same explicit name.
        MeshError: a folder, glob or list file that names no mesh.
    """
    if config.meshes:
        explicit = [e.name for e in config.meshes if e.name]
        repeated = next((n for n in explicit if explicit.count(n) > 1), None)
        if repeated:
            raise ConfigError(f"two [[meshes]] tables are named '{repeated}'; give each mesh its own name")
        names = _unique([e.name or mesh_name(e.path) for e in config.meshes])
        return [
            MeshItem(name, e.path, None if e.prompts is None else tuple(e.prompts), e.weight) for name, e in zip(names, config.meshes)
        ]
    paths = expand_mesh_path(config.mesh.path)
    if len(paths) > 1 and config.mesh.per_rank:
        raise ConfigError(f"mesh.per_rank cannot be combined with a mesh.path that names {len(paths)} meshes; remove mesh.per_rank (a collection spreads its meshes over the ranks itself)")
    return [MeshItem(name, path) for name, path in zip(_unique([mesh_name(p) for p in paths]), paths)]


def is_collection(config: "RunConfig") -> bool:
    """Whether the run trains on several meshes (``[[meshes]]``, or a ``mesh.path`` naming more than one)."""
    return len(mesh_items(config)) > 1


def primary_item(config: "RunConfig", rank: int = 0) -> MeshItem:
    """The mesh a session is built on: ``mesh.per_rank``/``mesh.path`` of a one-mesh run, else the
    collection's first (its previews are ``before/`` and ``after/``)."""
    items = mesh_items(config)
    if len(items) == 1 and config.mesh.per_rank:
        path = config.mesh.path_for_rank(rank)
        return MeshItem(mesh_name(path), path)
    return items[0]


class MeshSampler:
    """The draw rule of ``mesh.sampling`` (module docstring): which mesh draw ``u`` of a step trains on.

    Args:
        items: the collection, in order.
        rule: ``"cycle"`` or ``"weighted"``.
        seed: the run seed (``training.seed``).
    """

    def __init__(self, items: list[MeshItem], rule: str = "cycle", seed: int = 0) -> None:
        if rule not in ("cycle", "weighted"):
            raise ConfigError(f"unknown mesh.sampling '{rule}'; use \"cycle\" or \"weighted\"")
        self.items = list(items)
        self.rule = rule
        self.seed = seed
        self._weights = [item.weight for item in self.items]

    def draw(self, step: int, unit: int, units_per_step: int) -> int:
        """Index of the mesh of draw ``unit`` (0 .. ``units_per_step`` - 1) of ``step``."""
        count = len(self.items)
        if count == 1:
            return 0
        if self.rule == "cycle":
            return (step * units_per_step + unit) % count
        rng = random.Random(f"texkit:mesh:{self.seed}:{step}:{unit}")
        return rng.choices(range(count), weights=self._weights)[0]


def load_collection(
    config: "RunConfig", console: "Console | None" = None, notify: Callable[[str], None] | None = None
) -> list[LoadedMesh]:
    """Load every mesh of the run (CPU), its initial texture and an (empty) geometry cache, with a progress bar.

    Runs before any model weights are loaded, so a mesh that does not load stops the run at once.

    Args:
        config: the run config (``mesh.normalize`` and ``texture`` apply to every mesh).
        console: where the progress bar goes (shown on a terminal only).
        notify: receives one-line notices (a mesh's own texture, an initial texture resized).

    Raises:
        MeshError: a mesh that cannot be loaded: one line naming its file (and how many meshes there are).
        TexkitError: an initial texture that does not fit a mesh.
    """
    from texkit.geometry.cache import GeometryCache
    from texkit.geometry.primitives import load_mesh
    from texkit.initial_texture import load_initial_texture

    items = mesh_items(config)
    loaded = []
    with _bar("meshes", len(items), console) as advance:
        for index, item in enumerate(items):
            notes: list[str] = []  # a texture.init = "mesh" error says why the mesh's texture was not read
            try:
                mesh = load_mesh(item.path, config.mesh.normalize, notes.append)
            except MeshError as err:
                if len(items) == 1:
                    raise
                raise MeshError(f"mesh {index + 1} of {len(items)}: {err}") from None
            loaded.append(LoadedMesh(item, mesh, GeometryCache(mesh), load_initial_texture(config.texture, mesh, notify, notes)))
            for note in notes if notify is not None else ():
                notify(note)
            advance(item.name)
    return loaded


def prepare_geometry(loaded: list[LoadedMesh], rewards: "RewardSet", console: "Console | None" = None) -> None:
    """Run every reward's ``prepare`` (its geometry precomputation, cached on disk) for every mesh, with a
    progress bar, so training never waits for one; the results stay in the meshes' CPU caches."""
    with _bar("geometry", len(loaded), console) as advance:
        for entry in loaded:
            rewards.prepare(entry.mesh, entry.cache)
            advance(entry.item.name)


def preview_indices(count: int, wanted: int) -> list[int]:
    """``min(count, max(wanted, 1))`` mesh indices evenly spaced over a collection of ``count``, 0 first."""
    take = min(count, max(wanted, 1))
    return sorted({round(i * (count - 1) / max(take - 1, 1)) for i in range(take)}) if take > 1 else [0]


class _bar:
    """A rich progress bar over ``total`` meshes (disabled off a terminal); ``advance(name)`` ticks it."""

    def __init__(self, label: str, total: int, console: "Console | None") -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[name]}"),
            console=console, transient=True, disable=total < 2 or not console.is_terminal,
        )
        self.task = self.progress.add_task(label, total=total, name="")

    def __enter__(self) -> Callable[[str], None]:
        self.progress.start()
        return lambda name: self.progress.update(self.task, advance=1, name=name)

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()
