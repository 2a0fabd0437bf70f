"""What the studio does, without the web page: every action goes through the command line's code.

`Studio` owns a workspace folder and the device queue. Its actions are the CLI's:

* painting and refining build a run config from the page's values on top of the base config (the
  ``--config`` file) and write what ``texkit generate`` writes (`texkit.commands.generate.write_outputs`,
  `texkit.session.Session`), so each paint folder's ``config.toml`` repaints it from the command line;
* scoring is ``texkit score`` (`texkit.commands.score.score_texture`) with each reward's parameters
  and its ``visualize()`` picture;
* a fine-tune is a ``texkit train`` process in a run folder under ``runs/`` (`texkit.studio.jobs.FineTune`),
  its predicted time from the planner (`texkit.planning.plan_run`).

The workspace holds ``uploads/`` (uploaded meshes with their side files), ``paints/<n>/``,
``scores/<n>/``, ``masks/``, ``runs/<name>/``, ``configs/<name>.toml`` (each fine-tune's config) and
``logs/<name>.log`` (each fine-tune's output). Paths the page or an API client passes back in are
relative to the workspace and must stay inside it. Every user error is a one-line `TexkitError`
(running out of memory too: `texkit.out_of_memory`, the commands' message).
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from texkit.config import RunConfig, parse_config, to_toml
from texkit.errors import ConfigError, TexkitError
from texkit.geometry.primitives import BUILTIN_MESHES
from texkit.io import atomic_write_text
from texkit.out_of_memory import out_of_memory_as_error, out_of_memory_while
from texkit.studio.jobs import DeviceQueue, FineTune, RunSnapshot
from texkit.studio.meshes import load_with_notices, store_upload, write_view_glb

__all__ = ["Studio", "MeshView", "PaintRequest", "PaintResult", "ScoreResult", "Progress"]

Progress = Callable[[float, str], None]
"""``progress(fraction in [0, 1], one line)``: how a long action reports."""

_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class MeshView:
    """A mesh as the page shows it: its spec (built-in name or workspace path), a GLB and the load notices."""

    spec: str
    glb: Path
    notices: list[str]
    has_texture: bool = False


@dataclass
class PaintRequest:
    """What the Paint tab sets: the prompt and the generator, for painting, refining and fine-tuning.

    Attributes:
        prompt: the text prompt.
        negative: the negative prompt.
        seed: the noise seed of the painted views (view k: ``seed + k``).
        generator: a registered generator name (default: the base config's).
        options: the generator's options, JSON text or a dict (as ``generator.options``).
        cameras: a camera preset for the painting views (default: the base config's path).
        adapter: a finished run's adapter folder in the workspace (None or ``"none"``: none).
    """

    prompt: str
    negative: str = ""
    seed: int = 1234
    generator: str = ""
    options: str | dict[str, Any] | None = None
    cameras: str = ""
    adapter: str | None = None


@dataclass
class PaintResult:
    """A painted (or refined) texture: its folder under ``paints/`` and the files in it.

    Attributes:
        folder: workspace-relative folder (the page's "current texture").
        glb: the textured mesh; views: the view grid; texture: the UV texture (sample 0).
        samples: the view grids of every sample (one entry for one sample).
        config: the folder's ``config.toml`` (``texkit generate`` repaints it).
    """

    folder: str
    glb: Path
    views: Path
    texture: Path
    samples: list[Path] = field(default_factory=list)
    config: Path | None = None


@dataclass
class ScoreResult:
    """Each reward's value and metrics, the weighted total and each reward's picture."""

    rows: list[dict[str, Any]]
    total: float
    pictures: dict[str, Path]
    folder: str


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in, tables recursively (other values replaced)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _json_object(text: str | dict[str, Any] | None, what: str) -> dict[str, Any]:
    """A JSON object given as text (API clients) or already parsed; one-line error otherwise."""
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{what} is not valid JSON ({err.msg} at character {err.pos}); pass a JSON object such as {{}}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a JSON object such as {{}}, not {type(value).__name__}")
    return value


class Studio:
    """The studio's state and actions on one workspace.

    Args:
        base: the run config the page's values are applied to (device, sizes, renderer, defaults).
        workspace: the folder for uploads, paints, scores and runs.
    """

    def __init__(self, base: RunConfig, workspace: Path) -> None:
        self.base = base
        self.workspace = Path(workspace).resolve()
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.queue = DeviceQueue()
        self._lock = threading.Lock()
        self._generator: tuple[str, Any] | None = None  # (key, generator) kept between paints
        self.fine_tune: FineTune | None = None

    # -- paths -----------------------------------------------------------------------------
    def _next_folder(self, kind: str) -> Path:
        """``<workspace>/<kind>/<n>`` with n one more than the largest there (created)."""
        with self._lock:
            parent = self.workspace / kind
            parent.mkdir(parents=True, exist_ok=True)
            numbers = [int(p.name) for p in parent.iterdir() if p.name.isdigit()]
            folder = parent / f"{max(numbers, default=0) + 1:04d}"
            folder.mkdir()
            return folder

    def relative(self, path: Path) -> str:
        """``path`` relative to the workspace, as the page and API clients pass it back."""
        return Path(path).resolve().relative_to(self.workspace).as_posix()

    def inside(self, path: str, what: str) -> Path:
        """A workspace-relative (or absolute) path that must lie inside the workspace.

        Raises:
            TexkitError: the path leaves the workspace or does not exist.
        """
        resolved = (self.workspace / path).resolve()
        if not resolved.is_relative_to(self.workspace):
            raise TexkitError(f"{what} '{path}' is outside the studio's workspace {self.workspace}; pass a path inside it")
        if not resolved.exists():
            raise TexkitError(f"{what} '{path}' does not exist in the workspace {self.workspace}")
        return resolved

    def mesh_path(self, spec: str) -> str:
        """A built-in mesh name as it is, an uploaded mesh as its absolute path.

        Raises:
            TexkitError: no mesh chosen, or a file outside the workspace.
        """
        spec = (spec or "").strip()
        if not spec:
            raise TexkitError(f"no mesh chosen; pick a built-in one ({', '.join(BUILTIN_MESHES)}) or upload a mesh file")
        return spec if spec in BUILTIN_MESHES else str(self.inside(spec, "mesh"))

    # -- meshes ----------------------------------------------------------------------------
    def upload(self, files: list[Path]) -> MeshView:
        """Store an uploaded mesh (with its side files) and load it.

        Raises:
            MeshError: not a mesh file, or one that does not load (one line; nothing is kept).
        """
        folder = self._next_folder("uploads")
        try:
            mesh_file = store_upload([Path(f) for f in files], folder)
            return self.show_mesh(self.relative(mesh_file))
        except TexkitError:
            shutil.rmtree(folder, ignore_errors=True)  # a refused upload leaves nothing behind
            raise

    def show_mesh(self, spec: str) -> MeshView:
        """Load a mesh as a run would and write a GLB of it for the 3D view (its texture or a checkerboard)."""
        mesh, notices = load_with_notices(self.mesh_path(spec), self.base.mesh.normalize)
        key = re.sub(r"[^A-Za-z0-9_-]", "_", spec)
        glb = self.workspace / "views" / f"{key}.glb"
        glb.parent.mkdir(parents=True, exist_ok=True)
        write_view_glb(mesh, glb)
        return MeshView(spec, glb, notices, mesh.texture is not None)

    # -- configs ---------------------------------------------------------------------------
    def run_config(self, changes: dict[str, Any]) -> RunConfig:
        """The base config with ``changes`` merged in (validated: one-line ConfigError, as the CLI's)."""
        base = self.base.model_dump(mode="json", exclude_none=True)
        for table in ("generator", "rewards"):
            if table in changes:
                base.pop(table, None)  # replaced, not merged: options of another generator or reward do not carry over
        return parse_config(_merge(base, changes))

    def paint_changes(self, mesh: str, request: PaintRequest) -> dict[str, Any]:
        """The run-config changes the Paint tab makes."""
        if not (request.prompt or "").strip():
            raise ConfigError("the prompt is empty; describe the texture to paint, e.g. 'a glazed ceramic vase'")
        return {
            "mesh": {"path": self.mesh_path(mesh)},
            "prompts": {"text": [request.prompt.strip()], "negative": request.negative or "", "file": None},
            "generator": {"name": request.generator or self.base.generator.name, "options": _json_object(request.options, "generator options")},
            "cameras": {"paint": request.cameras or self.base.cameras.paint},
        }

    def adapter_path(self, adapter: str | None) -> Path | None:
        """The adapter folder of a finished run (workspace-relative), None for none."""
        if not adapter or adapter == "none":
            return None
        return self.inside(adapter, "adapter")

    def adapters(self) -> list[str]:
        """Workspace-relative adapter folders of the finished runs, newest first."""
        runs = self.workspace / "runs"
        found = [p for p in runs.glob("*/adapter") if p.is_dir()] if runs.is_dir() else []
        return [self.relative(p) for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]

    # -- painting --------------------------------------------------------------------------
    def _session(self, config: RunConfig, adapter: Path | None, notify: Callable[[str], None]) -> Any:
        """A session for ``config``, reusing the generator kept from the last paint when it is the same one."""
        from texkit.devices import resolve_device
        from texkit.session import Session, generator_options
        from texkit.threads import apply_threads, model_parameters

        device = resolve_device(config.device)
        options = generator_options(config, device)
        stamp = adapter.stat().st_mtime_ns if adapter is not None else 0
        key = json.dumps([config.generator.name, options, str(adapter), stamp], sort_keys=True, default=str)
        kept = self._generator[1] if self._generator is not None and self._generator[0] == key else None
        self._generator = None  # a failed build must not keep a half-loaded generator
        session = Session.build(config, need_rewards=False, notify=notify, generator=kept)
        if kept is None and adapter is not None:
            session.generator.load_adapter(adapter)
        self._generator = (key, session.generator)
        size = max(config.texture.size, config.texture.render_size) ** 2
        apply_threads(session.device, model_parameters(session.generator), size, None)
        return session

    def release_device(self) -> None:
        """Forget the kept generator (a fine-tune is about to use the device)."""
        import gc

        import torch

        self._generator = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _paint(self, config: RunConfig, adapter: Path | None, samples: int, seed: int, progress: Progress, what: str) -> PaintResult:
        from texkit.commands.generate import write_outputs
        from texkit.config import camera_angles

        views = len(camera_angles(config.cameras.paint)[0])
        notes: list[str] = []

        def painted(view: int) -> None:
            progress((view + 1) / max(views, 1), f"{what}: view {view + 1} of {views}")

        with self.queue.turn(what, lambda line: progress(0.0, line)), out_of_memory_as_error(config, samples=samples):
            progress(0.0, f"{what}: loading {config.generator.name}")
            session = self._session(config, adapter, notes.append)
            folder = self._next_folder("paints")
            write_outputs(session, folder, samples, seed, painted)
        first = folder / "sample_0" if samples > 1 else folder
        grids = [folder / f"sample_{i}" / "views.png" for i in range(samples)] if samples > 1 else [folder / "views.png"]
        return PaintResult(self.relative(folder), first / "mesh.glb", first / "views.png", first / "texture.png", grids, folder / "config.toml")

    def paint(self, mesh: str, request: PaintRequest, samples: int = 1, progress: Progress | None = None) -> PaintResult:
        """Paint a texture from scratch (``texkit generate``; ``samples`` textures in one batch)."""
        if int(samples) < 1:
            raise ConfigError(f"samples {samples}: paint at least 1 sample")
        config = self.run_config(self.paint_changes(mesh, request))
        return self._paint(config, self.adapter_path(request.adapter), int(samples), int(request.seed), progress or _quiet, "painting")

    def refine(
        self,
        mesh: str,
        texture: str,
        request: PaintRequest,
        mode: str = "refine",
        strength: float = 0.5,
        mask: Path | None = None,
        progress: Progress | None = None,
    ) -> PaintResult:
        """Repaint the current texture: ``refine`` (SDEdit at ``strength``) or ``inpaint`` (keep painted texels).

        Args:
            texture: the paint folder whose ``texture.png`` to start from; empty: the mesh's own texture.
            mask: PNG of texels to repaint although painted (white = repaint), drawn on the texture.
        """
        changes = self.paint_changes(mesh, request)
        init = str(self.inside(f"{texture}/texture.png", "texture")) if texture else "mesh"
        changes["texture"] = {"init": init, "mode": mode, "strength": float(strength)}
        if mask is not None:
            changes["texture"]["mask"] = str(mask)
        config = self.run_config(changes)
        what = f"{mode} ({float(strength):g})" if mode == "refine" else mode
        return self._paint(config, self.adapter_path(request.adapter), 1, int(request.seed), progress or _quiet, what)

    def save_mask(self, mask: Any) -> Path:
        """Write a mask drawn on the texture (``(H, W)`` bool/float array, true = repaint) as a PNG under ``masks/``."""
        import numpy as np
        from PIL import Image

        folder = self._next_folder("masks")
        path = folder / "mask.png"
        Image.fromarray((np.asarray(mask, dtype=np.float32) > 0).astype(np.uint8) * 255).save(path)
        return path

    # -- scoring ---------------------------------------------------------------------------
    def score(self, mesh: str, texture: str, rewards: str | dict[str, Any], prompt: str = "", progress: Progress | None = None) -> ScoreResult:
        """Score the current texture (``texkit score``) with rewards ``{name: {"weight": w, param: value}}``.

        Args:
            texture: the paint folder whose ``texture.png`` to score; empty: the mesh's own texture.
            rewards: the rewards as the ``[rewards]`` table of a run config (JSON text or a dict).
        """
        from texkit.commands.score import score_texture
        from texkit.devices import resolve_device

        table = _json_object(rewards, "rewards")
        if not table:
            raise ConfigError("no rewards chosen; pick at least one (`texkit rewards` lists them)")
        config = self.run_config({"mesh": {"path": self.mesh_path(mesh)}, "rewards": table})
        path = str(self.inside(f"{texture}/texture.png", "texture")) if texture else None
        preset = config.cameras.reward if isinstance(config.cameras.reward, str) else "tilted_short"
        progress = progress or _quiet
        task = f"scoring {texture or mesh} with {', '.join(table)}"
        advice = f"lower the render size ({config.texture.render_size} px)"
        with self.queue.turn("scoring", lambda line: progress(0.0, line)), out_of_memory_while(task, advice, config.device):
            progress(0.1, f"scoring with {', '.join(table)}")
            folder = self._next_folder("scores")
            results = score_texture(
                config.mesh.path,
                path,
                list(config.rewards),
                camera_preset=preset,
                size=config.texture.render_size,
                renderer_name=config.renderer.name,
                device=str(resolve_device(config.device)),
                reward_params={name: cfg.params() for name, cfg in config.rewards.items()},
                prompt=prompt or "",
                pictures=folder,
                picture_views=config.output.grid_views,
                out_of_memory_advice=advice,
            )
        rows = []
        total = 0.0
        for name, res in results.items():
            weight = config.rewards[name].weight
            total += weight * res["value"]
            rows.append({"reward": name, "value": res["value"], "weight": weight, "metrics": res["metrics"]})
        atomic_write_text(folder / "scores.json", json.dumps({"rows": rows, "total": total}, indent=2) + "\n")
        pictures = {name: Path(res["picture"]) for name, res in results.items() if "picture" in res}
        return ScoreResult(rows, total, pictures, self.relative(folder))

    # -- fine-tuning -----------------------------------------------------------------------
    def fine_tune_config(
        self, mesh: str, request: PaintRequest, rewards: str | dict[str, Any], steps: int, batch_size: int, lr: float, name: str
    ) -> RunConfig:
        """The run config of a fine-tune: the paint settings (not the seed or adapter), the rewards, and ``[training]``."""
        changes = self.paint_changes(mesh, request)
        table = _json_object(rewards, "rewards")
        if not table:
            raise ConfigError("no rewards chosen to train on; pick at least one in the Score tab")
        changes["rewards"] = table
        changes["training"] = {"steps": int(steps), "batch_size": int(batch_size), "lr": float(lr), "checkpoint_every": 1}
        changes["output"] = {"dir": str(self.workspace / "runs" / name), "latest_every": 1}
        return self.run_config(changes)

    def plan(self, config: RunConfig) -> str:
        """One line: the planner's predicted time of the whole run (`texkit.planning.plan_run`)."""
        from texkit.planning import plan_run

        plan = plan_run(config)
        p = plan.prediction
        if p is None:
            return f"no measured configuration to predict the time from on {plan.device} (see docs/performance.md)"
        total = p.seconds * config.training.steps + p.compile_seconds
        return (
            f"predicted about {_duration(total)} for {config.training.steps} steps ({p.seconds:.1f} s/step at batch_size "
            f"{config.training.batch_size} on {plan.device}; from measurements of {p.basis})"
        )

    def new_run_name(self, name: str = "") -> str:
        """``name`` checked (letters, digits, ``_ . -``; not taken), or the next free ``run-<n>``."""
        runs = self.workspace / "runs"
        if name:
            if not _RUN_NAME.match(name):
                raise ConfigError(f"run name '{name}' may use letters, digits, '_', '.' and '-' only (up to 64); choose another")
            if (runs / name).exists():
                raise ConfigError(f"a run named '{name}' exists in the workspace; choose another name or Resume it")
            return name
        taken = {p.name for p in runs.iterdir()} if runs.is_dir() else set()
        n = 1
        while f"run-{n}" in taken:
            n += 1
        return f"run-{n}"

    def start_fine_tune(self, config: RunConfig, name: str) -> RunSnapshot:
        """Write the run's config and start ``texkit train`` on it (queued behind running jobs).

        Raises:
            TexkitError: a fine-tune is already queued or running; a reward that cannot be trained on or a
                bad generator option (checked here first, with the messages ``texkit train`` gives).
        """
        from texkit.planning import plan_run
        from texkit.session import training_rewards

        self._check_idle()
        training_rewards(config)  # a reward that cannot be trained on is refused now, as `texkit train` would
        plan_run(config)  # and so is a misspelt generator option
        path = self.workspace / "configs" / f"{name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, to_toml(config))
        self.fine_tune = FineTune(
            name, path, Path(config.output.dir), self.workspace / "logs" / f"{name}.log", config.training.steps, self.queue, before_start=self.release_device
        ).start()
        return self.fine_tune.snapshot()

    def _check_idle(self) -> None:
        run = self.fine_tune
        if run is not None and run.active:
            snap = run.snapshot()
            raise TexkitError(f"fine-tune {run.name} is {run.state} (step {snap.step} of {snap.steps}); stop it or wait until it ends")

    def stop_fine_tune(self) -> RunSnapshot:
        """Stop the running fine-tune (its checkpoints are kept).

        Raises:
            TexkitError: none is running.
        """
        run = self.fine_tune
        if run is None or not run.active:
            raise TexkitError("no fine-tune is running")
        run.stop()
        return run.snapshot()

    def resume_fine_tune(self, name: str = "") -> RunSnapshot:
        """Continue a stopped (or failed) fine-tune from its newest checkpoint (``texkit train --resume``).

        Args:
            name: the run (default: the last one started here).

        Raises:
            TexkitError: no such run, or a fine-tune is running.
        """
        self._check_idle()
        last = self.fine_tune
        name = name or (last.name if last is not None else "")
        config = self.workspace / "configs" / f"{name}.toml"
        if not name or not config.is_file():
            raise TexkitError("no stopped fine-tune to resume; start one first" if not name else f"no fine-tune named '{name}' in this workspace")
        from texkit.config import load_config

        steps = load_config(config).training.steps
        self.fine_tune = FineTune(
            name, config, self.workspace / "runs" / name, self.workspace / "logs" / f"{name}.log", steps, self.queue, resume=True,
            before_start=self.release_device,
        ).start()
        return self.fine_tune.snapshot()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _quiet(fraction: float, line: str) -> None:
    """A progress callback that shows nothing."""
