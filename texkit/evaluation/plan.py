"""From an eval spec to the list of items to paint: adapters found, settings resolved, items named.

An item is one (model, mesh, prompt, seed); the models are the base model (always, first) and
each adapter. The painting settings come from the first adapter's run config, replaced by what
the spec sets (`texkit.evaluation.spec`). Each item has its own folder under ``items/``, named
from its model's weights (a digest of the adapter's files), its mesh, prompt and seed, so a rerun
finds the items already done, and a retrained adapter is never mistaken for the old one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from texkit.config import RunConfig, parse_config
from texkit.errors import ConfigError, TexkitError, WeightsError
from texkit.evaluation.spec import EvalSpec, MetricSpec
from texkit.run_record import recorded_settings

__all__ = ["AdapterSource", "Model", "Item", "EvalPlan", "resolve_adapter", "plan_eval", "view_seeds", "BASE_LABEL"]

BASE_LABEL = "base"
"""The label of the base model (the generator without any adapter) in every result."""

_RUN_MARKERS = ("config.json", "run.json", "metrics.jsonl")


def view_seeds(seed: int, views: int) -> list[int]:
    """The noise seeds of an item's painted views: view k of seed s uses ``1000 s + k``.

    Both the base model and every adapter paint an item with these, so their textures differ
    only by the weights (a paired comparison).
    """
    return [1000 * seed + k for k in range(views)]


def _digest_folder(folder: Path) -> str:
    """SHA-256 (hex) of the names and contents of the files in ``folder`` (recursively, sorted)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _slug(text: str, limit: int = 40) -> str:
    """Lower-case letters, digits and dashes of ``text`` (at most ``limit``), for folder names."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or "x"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class AdapterSource:
    """An adapter to evaluate.

    Attributes:
        label: its name in the results (the path as given).
        weights: the folder ``Generator.load_adapter`` reads.
        run_dir: the training run it comes from, when known.
        config: that run's config (None for an adapter without a run folder).
        digest: SHA-256 of the adapter folder's files (names the item folders).
    """

    label: str
    weights: Path
    run_dir: Path | None
    config: RunConfig | None
    digest: str


def _read_run_config(run_dir: Path) -> RunConfig | None:
    """The run's ``config.json`` validated; None when the folder has none."""
    path = run_dir / "config.json"
    if not path.is_file():
        return None
    try:
        return parse_config(recorded_settings(json.loads(path.read_text(encoding="utf-8"))))
    except (ValueError, ConfigError) as err:
        raise ConfigError(f"{path} is not a valid run config ({' '.join(str(err).split())[:200]}); pass the adapter folder itself") from None


def resolve_adapter(path: str | Path) -> AdapterSource:
    """Find the adapter weights and the run config behind ``path``.

    ``path`` may be a run folder of ``texkit train`` (its final ``adapter/`` and ``config.json``),
    an adapter folder (a run's ``adapter/`` or a checkpoint's ``checkpoints/step_<n>/adapter``;
    the run config is looked up in the folders above it), or a file inside an adapter folder.

    Raises:
        WeightsError: the path does not exist, is a run folder without a final adapter, or holds no files.
    """
    given = str(path).rstrip("/") or str(path)
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"adapter {given} does not exist; pass a run folder of `texkit train` or its adapter folder")
    folder = path.parent if path.is_file() else path
    if (folder / "adapter").is_dir():
        return _source(given, folder / "adapter", folder)
    if any((folder / marker).exists() for marker in _RUN_MARKERS):
        raise WeightsError(
            f"run folder {given} has no final adapter (adapter/ is written when training finishes); finish it with "
            "`texkit train --resume` or pass a checkpoint's adapter folder (checkpoints/step_<n>/adapter)"
        )
    if not any(p.is_file() for p in folder.iterdir()):
        raise WeightsError(f"adapter folder {given} holds no files; pass the adapter folder a training run wrote (<run>/adapter)")
    run_dir = next((p for p in list(folder.parents)[:3] if (p / "config.json").is_file()), None)
    return _source(given, folder, run_dir)


def _source(label: str, weights: Path, run_dir: Path | None) -> AdapterSource:
    config = _read_run_config(run_dir) if run_dir is not None else None
    return AdapterSource(label, weights, run_dir, config, _digest_folder(weights))


@dataclass(frozen=True)
class Model:
    """The base model or one adapter.

    Attributes:
        label: ``"base"`` or the adapter's label.
        key: its folder name under ``items/``.
        adapter: the adapter (None for the base model).
    """

    label: str
    key: str
    adapter: AdapterSource | None = None


@dataclass(frozen=True)
class Item:
    """One (model, mesh, prompt, seed) to paint and score.

    Attributes:
        model: the model that paints it.
        mesh: the mesh (file or built-in name) as the spec gives it.
        prompt: the prompt.
        seed: the seed (its views' noise seeds: `view_seeds`).
        folder: its folder, relative to the eval's output folder.
    """

    model: Model
    mesh: str
    prompt: str
    seed: int
    folder: Path


@dataclass
class EvalPlan:
    """Everything ``texkit eval`` will do, resolved from a spec.

    Attributes:
        spec: the spec, with adapters, prompts, seeds, meshes and metrics made explicit.
        config: the run config the items are painted with (mesh: the first of ``meshes``; no rewards).
        models: the base model, then each adapter.
        meshes: the meshes.
        prompts: the prompts.
        seeds: the seeds.
        metrics: the metrics.
        notes: one-line notices (eval prompts that are training prompts of an adapter).
    """

    spec: EvalSpec
    config: RunConfig
    models: list[Model]
    meshes: list[str]
    prompts: list[str]
    seeds: list[int]
    metrics: list[MetricSpec]
    notes: list[str] = field(default_factory=list)

    def items(self) -> list[Item]:
        """Every item, in result order: model, then mesh, prompt and seed."""
        out = []
        for model in self.models:
            for mesh in self.meshes:
                mesh_key = f"{_slug(Path(mesh).stem, 24)}-{_short_hash(mesh)}"
                for prompt in self.prompts:
                    prompt_key = f"{_slug(prompt)}-{_short_hash(prompt)}"
                    for seed in self.seeds:
                        out.append(Item(model, mesh, prompt, seed, Path("items") / model.key / mesh_key / prompt_key / f"seed_{seed}"))
        return out

    def settings(self) -> dict[str, Any]:
        """What an item's values depend on besides its model, mesh, prompt and seed (a rerun must match it)."""
        cfg = self.config.model_dump(mode="json")
        return {
            "generator": cfg["generator"],
            "renderer": cfg["renderer"],
            "cameras": cfg["cameras"],
            "texture": cfg["texture"],
            "prompt_style": {k: cfg["prompts"][k] for k in ("prefix", "negative", "view_suffix")},
            "mesh_normalize": cfg["mesh"]["normalize"],
            "mixed_precision": cfg["training"]["mixed_precision"],
            "metrics": [m.model_dump(mode="json") for m in self.metrics],
            "grid_views": self.spec.grid_views,
        }


def _base_config(spec: EvalSpec, adapters: list[AdapterSource]) -> RunConfig:
    """The first adapter's run config (defaults when none has one) with the spec's tables put in."""
    known = next((a.config for a in adapters if a.config is not None), None)
    data = (known or RunConfig()).model_dump(mode="json")
    for key in ("generator", "renderer"):  # a component is replaced whole (name and options)
        value = getattr(spec, key)
        if value is not None:
            data[key] = value.model_dump(mode="json")
    for key in ("cameras", "texture"):  # keys the spec sets replace the run's; the others stay
        value = getattr(spec, key)
        if value is not None:
            data[key].update(value.model_dump(mode="json", exclude_unset=True))
    if spec.device is not None:
        data["device"] = spec.device
    data["cameras"]["learn"] = []
    data["rewards"] = {}
    # the eval paints `samples` items per batch through Session.paint, without gradients; in the config
    # training.batch_size only sizes Session.build's memory check of a *training* step, so ask it for one sample
    data["training"]["batch_size"] = 1
    data["output"]["grid_views"] = spec.grid_views
    return parse_config(data)


def _check_generators(spec: EvalSpec, config: RunConfig, adapters: list[AdapterSource]) -> None:
    """Every adapter must have been trained with the generator the eval paints with."""
    for adapter in adapters:
        if adapter.config is None:
            continue
        theirs = adapter.config.generator
        if theirs.name != config.generator.name:
            raise TexkitError(
                f"adapter {adapter.label} was trained with generator '{theirs.name}' but the eval paints with "
                f"'{config.generator.name}'; evaluate adapters of one generator together"
            )
        if spec.generator is None and theirs.options != config.generator.options:
            raise TexkitError(
                f"adapter {adapter.label} was trained with generator options {json.dumps(theirs.options, sort_keys=True)} but "
                f"{adapters[0].label} with {json.dumps(config.generator.options, sort_keys=True)}; set [generator] in the eval "
                "spec to paint both the same way, or evaluate them separately"
            )


def _overlap_notes(prompts: list[str], adapters: list[AdapterSource]) -> list[str]:
    """One line per adapter whose training prompts include eval prompts."""
    notes = []
    for adapter in adapters:
        if adapter.config is None:
            continue
        try:
            trained = set(adapter.config.prompts.all_prompts())
        except ConfigError:  # its prompts file is gone: nothing to compare with
            continue
        shared = [p for p in prompts if p in trained]
        if shared:
            notes.append(
                f"{len(shared)} of {len(prompts)} eval prompts are training prompts of {adapter.label} (e.g. '{shared[0]}'); "
                "held-out results need prompts the adapter was not trained on"
            )
    return notes


def plan_eval(spec: EvalSpec) -> EvalPlan:
    """Resolve a spec: find the adapters, build the painting config, list prompts, seeds, meshes and metrics.

    Raises:
        WeightsError: an adapter cannot be found (`resolve_adapter`).
        TexkitError: adapters of different generators, no prompts, no metrics, two adapters given twice.
        ConfigError: an invalid setting.
    """
    adapters = [resolve_adapter(a) for a in spec.adapters]
    adapters = [dataclasses.replace(a, label=f"./{a.label}") if a.label == BASE_LABEL else a for a in adapters]
    labels = [a.label for a in adapters]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"adapter {next(x for x in labels if labels.count(x) > 1)} is given twice; give each adapter once")
    config = _base_config(spec, adapters)
    _check_generators(spec, config, adapters)
    prompts = spec.prompt_list()
    seeds = spec.seed_list()
    meshes = list(dict.fromkeys(spec.meshes)) or [config.mesh.path]
    metrics = list(spec.metrics)
    if not metrics:
        known = next((a.config for a in adapters if a.config is not None), None)
        if known is None or not known.rewards:
            raise ConfigError("no metrics: pass --metric NAME (repeat it) or set [[metrics]] in the eval spec (`texkit rewards` lists them)")
        metrics = [MetricSpec(name=name, params=reward.params()) for name, reward in known.rewards.items()]
    models = [Model(BASE_LABEL, BASE_LABEL)]
    for adapter in adapters:
        name = adapter.run_dir.name if adapter.run_dir is not None else adapter.weights.name
        models.append(Model(adapter.label, f"{_slug(name, 24)}-{adapter.digest[:10]}", adapter))
    explicit = spec.model_copy(update={"prompts": prompts, "prompts_file": None, "seeds": seeds, "num_seeds": None, "meshes": meshes, "metrics": metrics})
    return EvalPlan(explicit, config.model_copy(update={"mesh": config.mesh.model_copy(update={"path": meshes[0]})}), models, meshes, prompts, seeds, metrics, _overlap_notes(prompts, adapters))
