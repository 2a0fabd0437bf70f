"""The studio's web page: Gradio components wired to `texkit.studio.workspace.Studio`.

Imported only by `texkit.studio.create_app` once gradio is known to be installed. The page has a
mesh picker (built-in meshes and uploads) above four tabs (Paint, Refine, Score, Fine-tune) and a
result column: the textured mesh in 3D (``gr.Model3D``, GLB), the view grid, the texture, the
files to download. The option forms of generators and rewards are drawn from their ``Params``
schemas (`texkit.studio.forms`). Every action is also an API endpoint (``/paint``, ``/refine``,
``/score``, ``/fine_tune``, ``/stop``, ``/resume``, ``/show_mesh``; see the page's "Use via API"
link), taking the generator options and the rewards as JSON text. Errors are one-line messages
in the page (``gr.Error``, the CLI's texts); the server log gets no traceback for them.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from texkit.errors import TexkitError
from texkit.studio.forms import FormField, collect_options, form_fields, widget_value
from texkit.studio.jobs import RunSnapshot
from texkit.studio.workspace import PaintRequest, PaintResult, Studio

__all__ = ["build_app", "STUDIO_CSS"]

_NO_ADAPTER = "none"
STUDIO_CSS = """
#status, #train-status, #plan { min-height: 1.5em; }
#views img, #texture img, #latest img, #curves img { width: 100%; height: 100%; object-fit: contain; }
#texture img, #latest img, #views img { image-rendering: pixelated; }
"""
"""The page's few style rules (pass to ``launch(css=...)``; `texkit.studio.launch_options` does)."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _action(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a page action; a user error becomes a one-line message in the page without a traceback in the log."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        from texkit.commands.errors import describe_os_error

        try:
            return fn(*args, **kwargs)
        except TexkitError as err:
            raise gr.Error(_one_line(str(err)), title="texkit", print_exception=False) from None
        except OSError as err:
            raise gr.Error(describe_os_error(err), title="texkit", print_exception=False) from None

    return run


def _elem(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", "-".join(parts))


def _short(help_text: str) -> str | None:
    """The first sentence of an option's description (the widget's info line)."""
    if not help_text:
        return None
    first = re.split(r"(?<=[.;])\s", help_text, maxsplit=1)[0]
    return first if len(first) <= 160 else first[:157] + "..."


def _widget(field: FormField, value: Any, elem_id: str) -> gr.components.Component:
    """One form field as a Gradio input (no min/max: the option's own validation says what is wrong)."""
    shown = widget_value(field, value)
    common: dict[str, Any] = {"label": field.label, "info": _short(field.help), "elem_id": elem_id}
    if field.kind in ("choice", "optional_bool"):
        choices = list(field.choices) if field.kind == "choice" else ["(default)", "true", "false"]
        return gr.Dropdown(choices=choices, value=shown, **common)
    if field.kind == "bool":
        return gr.Checkbox(value=bool(shown), **common)
    if field.kind in ("int", "number"):
        return gr.Number(value=shown, precision=0 if field.kind == "int" else None, **common)
    if field.kind == "json":
        common["label"] = f"{field.label} (JSON)"
    if field.kind == "optional_number":
        common["placeholder"] = "default"
    return gr.Textbox(value=shown, lines=1, **common)


class _Forms:
    """The option forms of every installed generator and reward, and how to read them back."""

    def __init__(self, studio: Studio) -> None:
        from texkit.registry import get_registry
        from texkit.session import RUN_OWNED_OPTIONS

        schemas = get_registry().schemas()
        self.generator_fields = {name: form_fields(schema, RUN_OWNED_OPTIONS) for name, schema in schemas.get("generators", {}).items()}
        self.reward_fields = {name: form_fields(schema) for name, schema in schemas.get("rewards", {}).items()}
        self.generator_widgets: dict[str, list[gr.components.Component]] = {}
        self.reward_widgets: dict[str, list[gr.components.Component]] = {}  # [weight, *fields]
        self.reward_groups: dict[str, gr.Accordion] = {}
        self.studio = studio

    def draw_generators(self, selected: str) -> dict[str, gr.Group]:
        """One group of fields per generator, visible for ``selected``; base-config values shown for the base generator."""
        base = self.studio.base.generator
        groups = {}
        for name, fields in self.generator_fields.items():
            given = base.options if name == base.name else {}
            with gr.Group(visible=name == selected) as group:
                with gr.Accordion(f"Options of {name}", open=False, elem_id=_elem("gen", name, "options")):
                    self.generator_widgets[name] = [
                        _widget(f, given.get(f.name, f.default), _elem("gen", name, f.name)) for f in fields
                    ]
            groups[name] = group
        return groups

    def draw_rewards(self, selected: list[str]) -> None:
        """One accordion per reward (weight + parameters), visible while it is chosen."""
        base = self.studio.base.rewards
        for name, fields in self.reward_fields.items():
            given = base[name].params() if name in base else {}
            weight = base[name].weight if name in base else 1.0
            with gr.Accordion(f"{name}", open=False, visible=name in selected) as group:
                self.reward_widgets[name] = [gr.Number(value=weight, label="weight", elem_id=_elem("reward", name, "weight"))] + [
                    _widget(f, given.get(f.name, f.default), _elem("reward", name, f.name)) for f in fields
                ]
            self.reward_groups[name] = group

    def all_generator_widgets(self) -> list[gr.components.Component]:
        return [w for name in self.generator_fields for w in self.generator_widgets[name]]

    def all_reward_widgets(self) -> list[gr.components.Component]:
        return [w for name in self.reward_fields for w in self.reward_widgets[name]]

    def generator_options(self, generator: str, values: tuple[Any, ...]) -> str:
        """The selected generator's options as JSON (only values that differ from the defaults)."""
        at = 0
        for name, fields in self.generator_fields.items():
            if name == generator:
                return json.dumps(collect_options(fields, values[at : at + len(fields)], f"generator '{name}'"))
            at += len(fields)
        return "{}"

    def rewards_table(self, selected: list[str], values: tuple[Any, ...]) -> str:
        """The chosen rewards as a ``[rewards]`` table in JSON: ``{name: {"weight": w, param: value}}``."""
        table, at = {}, 0
        for name, fields in self.reward_fields.items():
            count = 1 + len(fields)
            if name in (selected or []):
                weight = values[at]
                options = collect_options(fields, values[at + 1 : at + count], f"reward '{name}'")
                table[name] = {"weight": 1.0 if weight is None else float(weight), **options}
            at += count
        return json.dumps(table)


class _Live:
    """Curves of the fine-tune drawn once per change, shared by every watching browser."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self._lock = threading.Lock()
        self._curves: tuple[str, Path] | None = None
        self._drawn: list[Path] = []

    def curves(self, snap: RunSnapshot) -> Path | None:
        """A PNG of the run's reward curves (`texkit.report.plot_curves`), redrawn when a step was added."""
        from texkit.report import plot_curves

        if not snap.metrics:
            return None
        key = f"{snap.name}:{len(snap.metrics)}"
        with self._lock:
            if self._curves is None or self._curves[0] != key:
                folder = self.studio.workspace / "live"
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"{snap.name}-curves-{len(snap.metrics)}.png"  # a new name: browsers fetch the new picture
                plot_curves(snap.metrics, path, width_in=3.2)
                self._drawn.append(path)
                while len(self._drawn) > 3:  # older pictures were copied into Gradio's cache when they were shown
                    self._drawn.pop(0).unlink(missing_ok=True)
                self._curves = (key, path)
            return self._curves[1]


def _status(snap: RunSnapshot | None) -> str:
    if snap is None:
        return "No fine-tune yet."
    line = f"**{snap.name}**: {snap.state}, step {snap.step} of {snap.steps}"
    if snap.metrics and isinstance(snap.metrics[-1].get("reward/total"), (int, float)):
        line += f", reward {snap.metrics[-1]['reward/total']:.5g}"
    return line + (f". {snap.message}" if snap.message else "")


def _paint_outputs(result: PaintResult, what: str, seconds: float, adapter: str) -> tuple[Any, ...]:
    downloads = [str(result.glb), str(result.texture)]
    used = f" with adapter {adapter}" if adapter and adapter != _NO_ADAPTER else ""
    status = f"{what} {result.folder}{used} in {seconds:.1f} s; `texkit generate {result.folder}/config.toml` repaints it" + (
        f" (add `--adapter {adapter}`)" if used else ""
    )
    return (
        str(result.glb),
        str(result.views),
        str(result.texture),
        result.folder,
        downloads,
        gr.update(value=[str(p) for p in result.samples], visible=len(result.samples) > 1),
        str(result.texture),
        status,
    )


def build_app(studio: Studio) -> gr.Blocks:
    """The studio page for ``studio`` (not launched)."""
    from texkit.cameras import CAMERA_PRESETS
    from texkit.devices import resolve_device
    from texkit.geometry.primitives import BUILTIN_MESHES
    from texkit.registry import get_registry

    reg = get_registry()
    base = studio.base
    forms = _Forms(studio)
    live = _Live(studio)
    generators = reg.names("generators")
    rewards = reg.names("rewards")
    presets = list(CAMERA_PRESETS)
    base_paint = base.cameras.paint if isinstance(base.cameras.paint, str) else "config"
    if base_paint == "config":
        presets = ["config", *presets]  # the base config's explicit camera path
    start_mesh = base.mesh.path if base.mesh.path in BUILTIN_MESHES else "demo"
    device = str(resolve_device(base.device))

    with gr.Blocks(title="texkit studio", analytics_enabled=False, delete_cache=(3600, 86400)) as page:
        gr.Markdown(
            f"## texkit studio\nPaint, refine, score and fine-tune textures on a mesh. Device **{device}**; "
            f"workspace `{studio.workspace}`; generators: {', '.join(generators) or 'none installed'}.",
            elem_id="header",
        )
        with gr.Row():
            with gr.Column(scale=2):
                mesh = gr.Dropdown(choices=list(BUILTIN_MESHES), value=start_mesh, allow_custom_value=True, label="Mesh", elem_id="mesh",
                                   info="A built-in mesh, or an uploaded one (its workspace path).")
                upload = gr.UploadButton("Upload a mesh: OBJ (select its .mtl and images too), GLB, glTF, PLY or OFF", file_count="multiple",
                                         elem_id="upload", size="sm")
                notices = gr.Markdown(elem_id="mesh-notices")
                with gr.Tabs():
                    with gr.Tab("Paint", id="paint-tab"):
                        prompt = gr.Textbox(label="Prompt", value=base.prompts.text[0] if base.prompts.text else "", elem_id="prompt")
                        negative = gr.Textbox(label="Negative prompt", value=base.prompts.negative, elem_id="negative")
                        with gr.Row():
                            seed = gr.Number(label="Seed", value=1234, precision=0, elem_id="seed")
                            samples = gr.Number(label="Samples", value=1, precision=0, elem_id="samples")
                        with gr.Row():
                            generator = gr.Dropdown(choices=generators, value=base.generator.name, label="Generator", elem_id="generator")
                            cameras = gr.Dropdown(choices=presets, value=base_paint, label="Cameras", elem_id="cameras",
                                                  info="Painting views: a preset (or the base config's path).")
                        adapter = gr.Dropdown(choices=[_NO_ADAPTER, *studio.adapters()], value=_NO_ADAPTER, label="Adapter",
                                              info="A LoRA adapter from a finished fine-tune.", elem_id="adapter")
                        generator_groups = forms.draw_generators(base.generator.name)
                        paint_button = gr.Button("Paint", variant="primary", elem_id="paint")
                    with gr.Tab("Refine", id="refine-tab"):
                        gr.Markdown("Repaint the current texture (or the mesh's own) with the Paint tab's prompt and settings. "
                                    "Draw on the texture to mark texels to repaint.")
                        mode = gr.Radio(["refine", "inpaint"], value="refine", label="Mode", elem_id="mode",
                                        info="refine: repaint everything close to the texture; inpaint: keep painted texels, fill the rest and the mask.")
                        strength = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Strength (refine)", elem_id="strength")
                        mask = gr.ImageEditor(label="Mask: draw on the texture", type="numpy", sources=(), elem_id="mask",
                                              brush=gr.Brush(colors=["#ff0000"], color_mode="fixed"), height=360)
                        refine_button = gr.Button("Refine", variant="primary", elem_id="refine")
                    with gr.Tab("Score", id="score-tab"):
                        chosen = gr.CheckboxGroup(choices=rewards, value=[r for r in base.rewards if r in rewards], label="Rewards",
                                                  elem_id="rewards")
                        forms.draw_rewards(list(base.rewards))
                        score_button = gr.Button("Score", variant="primary", elem_id="score")
                        scores = gr.Markdown(elem_id="scores")
                        pictures = gr.Gallery(label="What each reward asks for (visualize)", elem_id="pictures", columns=1, height=260,
                                              object_fit="contain")
                    with gr.Tab("Fine-tune", id="train-tab"):
                        gr.Markdown("Trains the generator (LoRA) with the rewards and weights of the Score tab, the prompt, "
                                    "mesh and cameras of the Paint tab: a `texkit train` run under `runs/` of the workspace.")
                        with gr.Row():
                            steps = gr.Number(label="Steps", value=base.training.steps, precision=0, elem_id="steps")
                            batch = gr.Number(label="Batch size", value=base.training.batch_size, precision=0, elem_id="batch")
                            lr = gr.Number(label="Learning rate", value=base.training.lr, elem_id="lr")
                        run_name = gr.Textbox(label="Run name", placeholder="run-<n>", elem_id="run-name")
                        plan = gr.Markdown(elem_id="plan")
                        with gr.Row():
                            start_button = gr.Button("Start fine-tune", variant="primary", elem_id="start")
                            stop_button = gr.Button("Stop", elem_id="stop")
                            resume_button = gr.Button("Resume", elem_id="resume")
                        train_status = gr.Markdown(_status(None), elem_id="train-status")
                        curves = gr.Image(label="Reward curves", type="filepath", interactive=False, elem_id="curves", height=260)
                        latest = gr.Image(label="Latest painted views", type="filepath", interactive=False, elem_id="latest", height=260)
            with gr.Column(scale=3):
                view3d = gr.Model3D(label="3D view", elem_id="view3d", height=420, clear_color=(1.0, 1.0, 1.0, 1.0))
                with gr.Row():
                    views = gr.Image(label="View grid", type="filepath", interactive=False, elem_id="views", height=260)
                    texture = gr.Image(label="Texture", type="filepath", interactive=False, elem_id="texture", height=260)
                current = gr.Textbox(label="Current texture (paint folder in the workspace)", interactive=False, elem_id="current")
                downloads = gr.File(label="Download (GLB, PNG)", file_count="multiple", interactive=False, elem_id="downloads")
                gallery = gr.Gallery(label="Samples (view grids)", columns=2, height=200, elem_id="samples-gallery", visible=False,
                                     object_fit="contain")
                status = gr.Markdown(elem_id="status")
        options_json = gr.Textbox(visible=False)
        rewards_json = gr.Textbox(visible=False)
        seen = gr.State("")
        timer = gr.Timer(1.0)

        # -- mesh ------------------------------------------------------------------------
        def mesh_outputs(view: Any) -> tuple[Any, ...]:
            lines = "\n".join(f"- {n}" for n in view.notices)
            return str(view.glb), lines, "", None, None, None, gr.update(value=[], visible=False)

        mesh_targets = [view3d, notices, current, views, texture, mask, gallery]

        @_action
        def show_mesh(spec: str) -> tuple[Any, ...]:
            return mesh_outputs(studio.show_mesh(spec))

        @_action
        def uploaded(files: list[str] | None) -> tuple[Any, ...]:
            if not files:
                return (gr.skip(),) * (len(mesh_targets) + 1)
            view = studio.upload([Path(f) for f in files])
            return (gr.update(choices=[*BUILTIN_MESHES, view.spec], value=view.spec), *mesh_outputs(view))

        page.load(show_mesh, [mesh], mesh_targets, api_name=False, show_progress="hidden")
        mesh.input(show_mesh, [mesh], mesh_targets, api_name="show_mesh", show_progress="hidden")
        upload.upload(uploaded, [upload], [mesh, *mesh_targets], api_name=False, show_progress="hidden")

        # -- paint / refine --------------------------------------------------------------
        gen_widgets = forms.all_generator_widgets()
        generator.change(lambda g: [gr.update(visible=n == g) for n in generator_groups], [generator], list(generator_groups.values()),
                         api_name=False)

        @_action
        def collect_generator(gen: str, *values: Any) -> str:
            return forms.generator_options(gen, values)

        paint_targets = [view3d, views, texture, current, downloads, gallery, mask, status]

        @_action
        def paint(mesh_spec: str, text: str, neg: str, seed_value: float, count: float, gen: str, options: str, preset: str, adapter_path: str,
                  progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
            started = time.perf_counter()
            request = PaintRequest(text, neg, int(seed_value or 0), gen, options, _preset(preset), adapter_path)
            result = studio.paint(mesh_spec, request, int(count or 1), lambda f, line: progress(f, desc=line))
            return _paint_outputs(result, "painted", time.perf_counter() - started, adapter_path)

        paint_button.click(collect_generator, [generator, *gen_widgets], [options_json], api_name=False).success(
            paint, [mesh, prompt, negative, seed, samples, generator, options_json, cameras, adapter], paint_targets, api_name="paint"
        )

        @_action
        def refine(mesh_spec: str, folder: str, text: str, how: str, amount: float, drawn: Any, neg: str, seed_value: float, gen: str,
                   options: str, preset: str, adapter_path: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
            started = time.perf_counter()
            mask_path = _mask_from_editor(studio, drawn)
            request = PaintRequest(text, neg, int(seed_value or 0), gen, options, _preset(preset), adapter_path)
            result = studio.refine(mesh_spec, folder, request, how, float(amount), mask_path, lambda f, line: progress(f, desc=line))
            return _paint_outputs(result, "refined" if how == "refine" else "inpainted", time.perf_counter() - started, adapter_path)

        refine_button.click(collect_generator, [generator, *gen_widgets], [options_json], api_name=False).success(
            refine, [mesh, current, prompt, mode, strength, mask, negative, seed, generator, options_json, cameras, adapter], paint_targets,
            api_name="refine",
        )

        # -- score -----------------------------------------------------------------------
        reward_widgets = forms.all_reward_widgets()
        chosen.change(lambda names: [gr.update(visible=n in (names or [])) for n in forms.reward_groups], [chosen],
                      list(forms.reward_groups.values()), api_name=False)

        @_action
        def collect_rewards(names: list[str], *values: Any) -> str:
            return forms.rewards_table(names, values)

        @_action
        def score(mesh_spec: str, folder: str, table: str, text: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
            result = studio.score(mesh_spec, folder, table, text, lambda f, line: progress(f, desc=line))
            rows = ["| reward | value | × | metrics |", "|---|---|---|---|"]
            for row in result.rows:
                metrics = ", ".join(f"{k}={v:.4g}" for k, v in row["metrics"].items())
                rows.append(f"| {row['reward']} | {row['value']:.6g} | {row['weight']:g} | {metrics} |")
            rows.append(f"| **weighted total** | **{result.total:.6g}** | | |")
            gallery_items = [(str(p), name) for name, p in result.pictures.items()]
            return "\n".join(rows), gallery_items, f"scored {folder or 'the mesh texture'} into {result.folder}"

        score_button.click(collect_rewards, [chosen, *reward_widgets], [rewards_json], api_name=False).success(
            score, [mesh, current, rewards_json, prompt], [scores, pictures, status], api_name="score"
        )

        # -- fine-tune -------------------------------------------------------------------
        @_action
        def collect_both(gen: str, names: list[str], *values: Any) -> tuple[str, str]:
            count = len(gen_widgets)
            return forms.generator_options(gen, values[:count]), forms.rewards_table(names, values[count:])

        @_action
        def fine_tune(mesh_spec: str, text: str, neg: str, gen: str, options: str, preset: str, table: str, count: float, size: float,
                      rate: float, name: str) -> tuple[str, str]:
            run = studio.new_run_name((name or "").strip())
            config = studio.fine_tune_config(mesh_spec, PaintRequest(text, neg, generator=gen, options=options, cameras=_preset(preset)), table,
                                             int(count or 0), int(size or 1), float(rate or base.training.lr), run)
            predicted = studio.plan(config)
            snap = studio.start_fine_tune(config, run)
            return _status(snap), predicted

        start_button.click(collect_both, [generator, chosen, *gen_widgets, *reward_widgets], [options_json, rewards_json], api_name=False).success(
            fine_tune, [mesh, prompt, negative, generator, options_json, cameras, rewards_json, steps, batch, lr, run_name], [train_status, plan],
            api_name="fine_tune",
        )

        @_action
        def stop() -> str:
            return _status(studio.stop_fine_tune())

        @_action
        def resume(name: str) -> str:
            return _status(studio.resume_fine_tune((name or "").strip()))

        stop_button.click(stop, None, [train_status], api_name="stop")
        resume_button.click(resume, [run_name], [train_status], api_name="resume")

        @_action
        def predict(gen: str, preset: str, count: float, size: float, *values: Any) -> str:
            try:
                options = forms.generator_options(gen, values)
                config = studio.run_config({"generator": {"name": gen, "options": json.loads(options)},
                                            "training": {"steps": int(count or 0), "batch_size": max(1, int(size or 1))},
                                            **({"cameras": {"paint": _preset(preset)}} if _preset(preset) else {})})
                return studio.plan(config)
            except TexkitError as err:
                return f"no prediction: {_one_line(str(err))}"

        for trigger in (steps, batch, generator, cameras):
            trigger.change(predict, [generator, cameras, steps, batch, *gen_widgets], [plan], api_name=False, show_progress="hidden")
        page.load(predict, [generator, cameras, steps, batch, *gen_widgets], [plan], api_name=False)

        def watch(last: str) -> tuple[Any, ...]:
            run = studio.fine_tune
            snap = run.snapshot() if run is not None else None
            version = snap.version if snap is not None else ""
            if version == last:
                return (last,) + (gr.skip(),) * 5
            picture = live.curves(snap) if snap is not None else None
            views_png = str(snap.latest / "views.png") if snap is not None and snap.latest is not None else None
            choices = gr.update(choices=[_NO_ADAPTER, *studio.adapters()])
            return version, _status(snap), picture, views_png, choices, gr.update(interactive=bool(run and run.active))

        timer.tick(watch, [seen], [seen, train_status, curves, latest, adapter, stop_button], api_name=False, show_progress="hidden",
                   concurrency_limit=None)
    return page


def _preset(choice: str) -> str:
    """The camera dropdown's value as a preset name; ``""`` for the base config's own path."""
    return "" if choice == "config" else choice


def _mask_from_editor(studio: Studio, drawn: Any) -> Path | None:
    """The texels drawn on in the mask editor (any layer's alpha > 0) as a mask PNG; None when nothing is drawn."""
    import numpy as np

    if not isinstance(drawn, dict):
        return None
    layers = [np.asarray(layer) for layer in drawn.get("layers") or [] if layer is not None]
    painted = [layer[..., 3] > 0 for layer in layers if layer.ndim == 3 and layer.shape[-1] == 4]
    if not painted or not any(p.any() for p in painted):
        return None
    return studio.save_mask(np.logical_or.reduce(painted))
