"""The ``texkit`` command (typer + rich).

Errors a user causes (`texkit.TexkitError`, usage errors such as a missing argument or an
unknown command, an unreadable path) print one line and exit with code 2, without a traceback;
Ctrl-C prints one line and exits 130, SIGTERM 143 (``texkit train`` first checkpoints the steps
done and names the command that resumes). Listings print a table on a terminal and plain,
tab-separated lines (never truncated) when piped; every listing has ``--json``. Plugins may add
sub-commands through the ``texkit_register_commands`` hook.
"""

from __future__ import annotations

import errno
import json
import shlex
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from texkit.commands.checks import check_output_dir, check_weights_dir
from texkit.defaults import DEFAULT_RENDERER
from texkit.errors import TexkitError
from texkit.interrupts import Interrupted, raise_on_sigterm

app = typer.Typer(
    name="texkit",
    help="Geometry-aware 3D texture generation with differentiable-reward fine-tuning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"texkit {texkit_version()}")
        raise typer.Exit(0)


def texkit_version() -> str:
    """The installed texkit version (from the package metadata)."""
    from importlib import metadata

    try:
        return metadata.version("texkit")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown (not installed)"


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Print the texkit version and exit."),
) -> None:
    """Geometry-aware 3D texture generation with differentiable-reward fine-tuning."""


def note(message: str) -> None:
    """Print a one-line notice (an input was converted) on stderr."""
    err_console.print(f"texkit: note: {message}", markup=False, highlight=False, soft_wrap=True)


def _print_rows(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A rich table on a terminal; tab-separated lines with a header when piped (nothing truncated)."""
    if not console.is_terminal:
        typer.echo("\t".join(columns))
        for row in rows:
            typer.echo("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in row))
        return
    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, overflow="fold", no_wrap=(i == 0), min_width=None)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _parse_params(items: list[str]) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; values are parsed as JSON when they can be (numbers, lists, booleans)."""
    from texkit.options import parse_key_values

    return parse_key_values(items, "--param")


def run_overrides(seed: int | None, prompt: str | None, device: str | None) -> list[str]:
    """``--set`` overrides for the ``--seed``, ``--prompt`` and ``--device`` options of train and generate."""
    out = []
    if seed is not None:
        out.append(f"training.seed={seed}")
    if prompt is not None:
        out += [f"prompts.text={json.dumps([prompt])}", "prompts.file=''"]
    if device is not None:
        out.append(f"device={json.dumps(device)}")
    return out


@app.command("plugins")
def plugins_command(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """List installed plugins: distribution, version and what each registers."""
    from texkit.registry import get_registry

    reg = get_registry()
    rows = [
        {
            "distribution": p.distribution,
            "version": p.version,
            "entry_point": getattr(p, "entry_point", ""),
            "module": getattr(p, "module", ""),
            "registers": {k: v for k, v in p.registers.items() if v},
            "error": p.error,
        }
        for p in reg.plugins + reg.failures
    ]
    schemas = reg.schemas()
    for row in rows:  # every registered reward, renderer and generator with its option schema
        row["options"] = {kind: {name: schemas[kind][name] for name in names if name in schemas.get(kind, {})} for kind, names in row["registers"].items() if kind in schemas}
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    by_package: dict[str, dict[str, Any]] = {}  # one row per installed package (--json keeps one per entry point)
    for row in rows:
        package = by_package.setdefault(row["distribution"], {"version": row["version"], "registers": {}, "errors": []})
        for kind, names in row["registers"].items():
            package["registers"].setdefault(kind, []).extend(names)
        if row["error"]:
            package["errors"].append(f"{row['entry_point']} failed to import: {row['error']}")
    lines = []
    for dist, package in sorted(by_package.items()):
        regs = "; ".join(f"{k}: {', '.join(v)}" for k, v in package["registers"].items())
        lines.append([dist, package["version"], "; ".join([regs, *package["errors"]] if regs else package["errors"])])
    _print_rows("texkit plugins", ["distribution", "version", "registers"], lines)


@app.command("rewards")
def rewards_command(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """List every reward: description, parameters and whether it is differentiable."""
    from texkit.registry import get_registry

    reg = get_registry()
    rows = []
    for name in reg.names("rewards"):
        entry = reg.get("rewards", name)
        cls = entry.obj
        params = {
            key: {"type": _type_name(field.annotation), "default": _field_default(field), "help": field.description or ""}
            for key, field in cls.Params.model_fields.items()
        }
        rows.append(
            {
                "name": name,
                "description": cls.description,
                "differentiable": bool(cls.differentiable),
                "distribution": entry.distribution,
                "params": params,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    lines = []
    for row in rows:
        params = ", ".join(f"{k}={json.dumps(v['default'])}" for k, v in row["params"].items())
        lines.append([row["name"], "yes" if row["differentiable"] else "no (scoring only)", row["description"], params, row["distribution"]])
    _print_rows("texkit rewards", ["name", "differentiable", "description", "parameters", "from"], lines)


def _field_default(field: Any) -> Any:
    """A pydantic field's default as JSON (calling a default factory; ``"(required)"`` when there is none)."""
    if field.is_required():
        return "(required)"
    return _jsonable(field.get_default(call_default_factory=True))


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def _jsonable(value: Any) -> Any:
    """``value`` when JSON can encode it, else its repr (also used by the docs' reference generator)."""
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


@app.command("render")
def render_command(
    mesh: Path = typer.Argument(..., help="Mesh file (OBJ, GLB/GLTF, PLY, OFF) or 'demo' for the built-in mesh."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    texture: Optional[Path] = typer.Option(None, "--texture", help="Texture PNG; default: the mesh file's own texture, else a UV checkerboard."),
    views: int = typer.Option(8, "--views", min=1, help="Number of orbit views."),
    size: int = typer.Option(256, "--size", min=16, help="Image size in pixels."),
    elevation: float = typer.Option(-20.0, "--elevation", help="Camera elevation in degrees (negative = above)."),
    renderer: str = typer.Option(DEFAULT_RENDERER, "--renderer", help="Renderer name (see `texkit plugins`)."),
    device: str = typer.Option("cpu", "--device", help="Where to render: cpu, cuda, cuda:1, auto."),
) -> None:
    """Render a mesh from an orbit of views into a PNG grid (``OUT/views.png``)."""
    from texkit.commands.rendering import render_views_grid

    check_output_dir(out)
    path = render_views_grid(str(mesh), out, texture, views, size, elevation, renderer, notify=note, device=device)
    console.print(f"wrote {path}")


@app.command("score")
def score_command(
    mesh: Path = typer.Argument(..., help="Mesh file or 'demo'."),
    texture: Optional[Path] = typer.Argument(
        None,
        help="Texture image. Default: the mesh's own texture (the base-colour texture of a GLB/glTF, "
        "the map_Kd image of an OBJ's MTL, or its constant base colour).",
        show_default=False,
    ),
    reward: list[str] = typer.Option(..., "--reward", help="Reward name; repeat for several."),
    param: list[str] = typer.Option([], "--param", help="Reward parameter key=value (applies to every --reward)."),
    views: str = typer.Option("tilted_short", "--views", help="Camera preset for rewards that read renders."),
    size: int = typer.Option(256, "--size", min=16, help="Render size for rewards that read renders."),
    renderer: str = typer.Option(DEFAULT_RENDERER, "--renderer", help="Renderer for rewards that read renders."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    device: str = typer.Option("cpu", "--device", help="Where to score and render: cpu, cuda, cuda:1, auto."),
) -> None:
    """Score a textured mesh with one or more rewards and print the value and metrics.

    Without TEXTURE, scores the texture the mesh file carries (e.g. the mesh.glb that `texkit generate` writes); a mesh without one is an error that says why.
    """
    from texkit.commands.score import score_texture

    results = score_texture(str(mesh), texture, reward, _parse_params(param), views, size, renderer, notify=note, device=device)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    for name, res in results.items():
        metrics = ", ".join(f"{k}={v:.5g}" for k, v in res["metrics"].items())
        console.print(f"[bold]{name}[/bold] = {res['value']:.6g}" + (f"  ({metrics})" if metrics else ""))


@app.command("explain")
def explain_command(
    reward: str = typer.Argument(..., help="Reward name (see `texkit rewards`), built-in or third-party."),
    mesh: str = typer.Argument("demo", help="Mesh file or a built-in mesh name ('demo', 'sphere', 'cylinder', 'cube')."),
    out: Path = typer.Option(..., "--out", help="Output folder: target.png, optimum.png, optimum_texture.png, explain.json."),
    steps: int = typer.Option(300, "--steps", min=1, help="Adam steps of the gradient ascent on the texture."),
    size: int = typer.Option(128, "--size", min=16, help="Texture size and the size of each rendered view."),
    views: int = typer.Option(4, "--views", min=1, help="Orbit views per picture."),
    param: list[str] = typer.Option([], "--param", help="Reward parameter key=value; repeat for several."),
    renderer: str = typer.Option(DEFAULT_RENDERER, "--renderer", help="Renderer of the pictures and of rewards that read renders."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, auto."),
) -> None:
    """Show what a reward asks for on a mesh and what gradient ascent on the texture alone converges to.

    Writes target.png (the reward's visualize() texture on the mesh) and optimum.png (the texture that
    a few hundred Adam steps from grey reach, no diffusion), each a row of orbit views.
    """
    from texkit.explain import explain_reward

    check_output_dir(out)
    result = explain_reward(reward, mesh, out, steps=steps, size=size, views=views, params=_parse_params(param), renderer_name=renderer, device=device, console=err_console)
    for path in (result.target, result.optimum):
        if path is not None:
            console.print(f"wrote {path}")
    if result.final_value is not None:
        console.print(f"{reward}: {result.start_value:.4g} (grey) -> {result.final_value:.4g} after {result.steps} steps ({result.seconds:.1f} s)")
    for line in result.notes:
        note(line)


@app.command("new-reward")
def new_reward_command(
    name: str = typer.Argument(..., help="Reward name, e.g. 'stripes' (a Python identifier)."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where to create the package folder."),
) -> None:
    """Scaffold a pip-installable reward package (pyproject, Reward subclass, test, README)."""
    from texkit.commands.scaffold import create_reward_package

    path = create_reward_package(name, directory)
    console.print(f"created {path}\nnext: pip install -e {path} && texkit rewards")


@app.command("doctor")
def doctor_command(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Check torch, CUDA, every renderer, the attention backend and GPU memory; print fixes."""
    from texkit.commands.doctor import run_checks

    checks = run_checks()
    if as_json:
        typer.echo(json.dumps([{"name": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix} for c in checks], indent=2))
        if not all(c.ok for c in checks):
            raise typer.Exit(1)
        return
    failed = 0
    for check in checks:
        mark = "[green]ok[/green]" if check.ok else "[red]FAIL[/red]"
        console.print(f"{mark}  {check.name}: {check.detail}")
        if not check.ok:
            failed += 1
            console.print(f"      fix: {check.fix}")
    if failed:
        raise typer.Exit(1)


@app.command("generate")
def generate_command(
    config: Path = typer.Argument(..., help="Run config (TOML) or a preset name (`texkit presets`)."),
    adapter: Optional[Path] = typer.Option(None, "--adapter", help="LoRA adapter folder to load first."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: from the config)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set training.lr=1e-4."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the outputs of an earlier `generate` in the output folder."),
    threads: Optional[int] = typer.Option(None, "--threads", min=0, help="Intra-op CPU threads (0: torch's default); default: from the work size (1 for the tiny model on the CPU) or TEXKIT_NUM_THREADS."),
    samples: int = typer.Option(1, "--samples", min=1, help="Textures to paint in one batch (prompts cycle through the config's); each goes to sample_<i>/."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (training.seed; for generate the preview's noise seed)."),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="Use this prompt instead of the config's (prompts.text)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1, auto (the config's device)."),
) -> None:
    """Paint a texture with the view loop: writes texture.png, a textured GLB and a view grid."""
    from texkit.commands.generate import generate
    from texkit.presets import load_run_config

    if out is not None:
        check_output_dir(out)
    if adapter is not None:
        check_weights_dir(adapter, "--adapter")
    cfg = load_run_config(config, [*set_, *run_overrides(None, prompt, device)])
    folder = generate(cfg, adapter=adapter, out=out, overwrite=overwrite, threads=threads, samples=samples, seed=seed, notify=note)
    console.print(f"wrote {folder}")


@app.command("train")
def train_command(
    config: Path = typer.Argument(..., help="Run config (TOML) or a preset name (`texkit presets`), e.g. symmetry-quick."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set training.lr=1e-4."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the run folder from its newest valid checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run already in the run folder (its checkpoints, metrics and outputs)."),
    allow_config_change: bool = typer.Option(
        False, "--allow-config-change", help="With --resume: continue although settings that cannot change mid-run (mesh, prompts, rewards, generator, batch, ...) differ from the run's."
    ),
    threads: Optional[int] = typer.Option(None, "--threads", min=0, help="Intra-op CPU threads (0: torch's default); default: from the work size (1 for the tiny model on the CPU) or TEXKIT_NUM_THREADS."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the predicted seconds per step, the predicted time of all training.steps, peak GPU memory and the largest batch size that fits; load nothing."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (training.seed; for generate the preview's noise seed)."),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="Use this prompt instead of the config's (prompts.text)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1, auto (the config's device)."),
) -> None:
    """Fine-tune the generator with the configured rewards (LoRA and, optionally, camera angles).

    CONFIG is a TOML file or the name of a preset (`texkit presets`): `texkit train symmetry --set mesh.path=balloon.obj`.
    """
    from texkit.presets import check_inputs, load_run_config, resolve_preset
    from texkit.training import train

    cfg = load_run_config(config, [*set_, *run_overrides(seed, prompt, device)])
    if dry_run:
        from texkit.devices import resolve_device
        from texkit.planning import check_duration, check_sizes, plan_run

        check_sizes(cfg, resolve_device(cfg.device), cfg.training.batch_size)
        plan = plan_run(cfg)
        check_duration(plan, cfg)
        for line in plan.lines(cfg.training.batch_size, cfg.training.steps):
            console.print(line, soft_wrap=True)
        return
    preset = resolve_preset(config)
    if preset is not None:
        check_inputs(preset, cfg)  # the mesh and reference files it needs, before anything loads
    from texkit.distributed import is_main
    from texkit.report import write_run_report
    from texkit.run_lock import hold_folder

    try:
        with hold_folder(cfg.output.dir, notify=note, enabled=is_main()):  # held while the run folder is written
            result = train(cfg, resume=resume, overwrite=overwrite, threads=threads, notify=note, allow_config_change=allow_config_change)
            if is_main():  # under torchrun only rank 0 writes the report, from the run folder's plain data
                console.print(f"report: {write_run_report(result.run_dir)}")
    except (Interrupted, KeyboardInterrupt) as stop:
        raise _train_interrupted(stop, Path(cfg.output.dir)) from None


@app.command("eval")
def eval_command(
    spec: Optional[Path] = typer.Argument(None, help="Eval spec (TOML, docs/guide/evaluate.md) or a preset name (its eval spec); optional when the options below say enough."),
    out: Path = typer.Option(..., "--out", help="Output folder (a rerun with the same folder resumes it)."),
    adapter: list[Path] = typer.Option([], "--adapter", help="A run folder of `texkit train` or an adapter folder; repeat for several. The base model is always evaluated."),
    prompt: list[str] = typer.Option([], "--prompt", help="A held-out prompt; repeat for several (replaces the spec's prompts)."),
    prompts_file: Optional[Path] = typer.Option(None, "--prompts-file", help="Text file with one held-out prompt per line."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Comma-separated seeds, e.g. 0,1,2,3 (replaces the spec's)."),
    num_seeds: Optional[int] = typer.Option(None, "--num-seeds", min=1, help="Use seeds 0 .. N-1."),
    mesh: list[str] = typer.Option([], "--mesh", help="Mesh file or built-in name; repeat for several (default: the adapter run's mesh)."),
    metric: list[str] = typer.Option([], "--metric", help="Metric: a reward NAME, NAME:KEY=VALUE,... or NAME@LABEL:KEY=VALUE,..., e.g. curvature_color@ref:compat=reference; repeat for several (default: the adapter run's rewards)."),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Items painted together in one batch (the training batch path)."),
    set_: list[str] = typer.Option([], "--set", help="Override a spec value, e.g. --set texture.size=256."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier eval in the output folder instead of resuming it."),
    threads: Optional[int] = typer.Option(None, "--threads", min=0, help="Intra-op CPU threads (0: torch's default); default: from the work size or TEXKIT_NUM_THREADS."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1, auto (default: the adapter run's device)."),
) -> None:
    """Evaluate adapters against the base model on held-out prompts, seeds and meshes.

    Writes results.jsonl (one line per item), summary.json/.csv/.md and eval.html (paired plots, bootstrap CIs, win rates, textures side by side) into --out.
    """
    from texkit.evaluation import plan_eval, run_eval
    from texkit.evaluation.spec import parse_metric
    from texkit.presets import load_eval_spec

    check_output_dir(out)
    fields: dict[str, Any] = {}  # what the options give replaces the spec's fields (None: back to the default)
    if prompt or prompts_file is not None:
        fields.update(prompts=list(prompt), prompts_file=str(prompts_file) if prompts_file is not None else None)
    if seeds is not None or num_seeds is not None:
        fields.update(seeds=_parse_seeds(seeds), num_seeds=num_seeds)
    if mesh:
        fields["meshes"] = list(mesh)
    if metric:
        fields["metrics"] = [parse_metric(m) for m in metric]
    fields.update({k: v for k, v in (("samples", samples), ("device", device)) if v is not None})
    loaded = load_eval_spec(spec, set_, fields)
    if adapter:
        loaded = loaded.model_copy(update={"adapters": [*loaded.adapters, *(str(a) for a in adapter)]})
    result = run_eval(plan_eval(loaded), out, overwrite=overwrite, threads=threads, notify=note)
    console.print(f"{len(result.results)} items ({result.painted} painted now); page: {out / 'eval.html'}")


def _parse_seeds(text: str | None) -> list[int] | None:
    """``"0,1,2"`` -> ``[0, 1, 2]``; one-line error for anything else."""
    if text is None:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise TexkitError(f"--seeds '{text}' must be comma-separated integers, e.g. --seeds 0,1,2,3") from None


@app.command("presets")
def presets_command(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """List the presets: the paper's experiments as ready run configs, each with a -quick variant.

    Run one with `texkit train NAME --set mesh.path=MESH`, or write it out with `texkit init NAME`.
    """
    from texkit.presets import all_presets

    rows = []
    for preset in all_presets():
        data = preset.config_data()
        rows.append(
            {
                "name": preset.name,
                "reward": preset.reward_summary(),
                "mesh": data["mesh"]["path"],
                "steps": data["training"]["steps"],
                "description": preset.description,
                "inputs": preset.inputs,
                "eval_command": f"texkit eval {preset.name}",
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    lines = [[r["name"], r["reward"], r["mesh"], str(r["steps"]), r["description"]] for r in rows]
    _print_rows("texkit presets", ["name", "reward", "mesh", "steps", "description"], lines)


@app.command("init")
def init_command(
    preset: str = typer.Argument(..., help="Preset name (`texkit presets` lists them)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="File to write (default: PRESET.toml, or PRESET.eval.toml with --eval)."),
    force: bool = typer.Option(False, "--force", help="Replace the file if it exists."),
    eval_spec: bool = typer.Option(False, "--eval", help="Write the preset's eval spec instead of its run config."),
) -> None:
    """Write a preset as a commented run config (or, with --eval, its eval spec) to edit and run.

    The file is written atomically; an existing file is kept unless --force is given.
    """
    from texkit.commands.checks import check_output_file
    from texkit.io import atomic_write_text
    from texkit.presets import get_preset

    chosen = get_preset(preset)
    target = out if out is not None else Path(f"{chosen.name}.eval.toml" if eval_spec else f"{chosen.name}.toml")
    check_output_file(target, force)
    text = chosen.eval_text() if eval_spec else chosen.config_text()
    what = "eval spec" if eval_spec else "run config"
    atomic_write_text(target, f"# Written by `texkit init {chosen.name}{' --eval' if eval_spec else ''}` (texkit {texkit_version()}): the preset's {what}.\n{text}")
    if eval_spec:
        next_step = f"check its adapters and metrics, then texkit eval {target} --out evals/{chosen.name}"
    else:
        next_step = f"set {' and '.join(chosen.inputs) or 'its settings'} to your files, then texkit train {target}"
    console.print(f"wrote {target}\nnext: {next_step}", soft_wrap=True)


@app.command("warmup")
def warmup_command(
    config: Path = typer.Argument(..., help="Run config (TOML) of the run to prepare, or a preset name (`texkit presets`)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set training.batch_size=8."),
    threads: Optional[int] = typer.Option(None, "--threads", min=0, help="Intra-op CPU threads (0: torch's default); default: from the work size (1 for the tiny model on the CPU) or TEXKIT_NUM_THREADS."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1, auto (the config's device)."),
) -> None:
    """Precompile a config's generator calls into the compile cache (one training step, nothing written to the run folder)."""
    from texkit.commands.warmup import warmup
    from texkit.presets import load_run_config

    cfg = load_run_config(config, [*set_, *run_overrides(None, None, device)])
    result = warmup(cfg, threads=threads, notify=note, console=err_console)
    console.print(result.summary(), soft_wrap=True, markup=False, highlight=False)


@app.command("demo")
def demo_command(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder."),
    steps: int = typer.Option(30, "--steps", min=1, help="Training steps."),
    threads: Optional[int] = typer.Option(None, "--threads", min=0, help="Intra-op CPU threads (0: torch's default); default: 1 (the tiny model on the CPU) or TEXKIT_NUM_THREADS."),
) -> None:
    """Train the tiny built-in generator on the built-in mesh (CPU, a few minutes) and write a report.

    An earlier demo run in the same folder is replaced (said in one line); other runs are refused.
    """
    from texkit.commands.demo import run_demo

    check_output_dir(out)
    report = run_demo(out, steps, threads=threads, notify=note)
    console.print(f"report: {report}")


@app.command("studio")
def studio_command(
    config: Optional[Path] = typer.Option(None, "--config", help="Run config (TOML) the page starts from: device, texture and render sizes, generator and its options, cameras, rewards."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(7860, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
    share: bool = typer.Option(False, "--share", help="Also serve through a temporary public Gradio link."),
    workspace: Path = typer.Option(Path("texkit-studio"), "--workspace", help="Folder for uploads, paints, scores and fine-tune runs."),
) -> None:
    """Paint, refine, score and fine-tune in the browser, with the mesh in 3D (needs `pip install 'texkit[studio]'`).

    A local web app on the same code as these commands; Ctrl-C stops it (a running fine-tune keeps its checkpoints).
    """
    from texkit.studio import serve

    if workspace.exists() and not workspace.is_dir():
        raise TexkitError(f"--workspace {workspace} is a file; pass a folder")
    serve(config, workspace, host, port, share, say=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))


_KEPT = "every output file is either complete or was not written"
_INTERRUPTED = f"interrupted; {_KEPT}, run the command again to finish"
_ARGV: list[str] = []  # the arguments of this invocation, for the command that resumes an interrupted run


def _train_interrupted(stop: BaseException, run_dir: Path) -> Interrupted:
    """The one-line message for a stopped ``texkit train``, naming the exact command that continues it."""
    from texkit.checkpoint import read_run_id
    from texkit.interrupts import RunStopped, signal_name

    signum = stop.signum if isinstance(stop, Interrupted) else signal.SIGINT
    args = [a for a in _ARGV if a != "--overwrite"]
    if isinstance(stop, RunStopped):
        what = str(stop)
    else:
        what = f"interrupted by {signal_name(signum)}; {_KEPT}"
    if read_run_id(run_dir) is None:  # nothing of the run is kept: the same command starts it again
        return Interrupted(signum, f"{what}; the run folder is as it was, run the command again: {shlex.join(['texkit', *_ARGV])}")
    command = shlex.join(["texkit", *args, *([] if "--resume" in args else ["--resume"])])
    return Interrupted(signum, f"{what}; resume with: {command}")


def _fail(message: str, code: int = 2) -> None:
    """Print ``texkit: error: <message>`` as one line on stderr and exit with ``code``."""
    line = " ".join(str(message).split())
    err_console.print(f"texkit: error: {line}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; user errors print one line and exit 2 (Ctrl-C: 130, SIGTERM: 143)."""
    _ARGV[:] = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    previous = raise_on_sigterm()  # a scheduler's SIGTERM: one line and exit 143, not a silent end
    try:
        _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> None:
    """`main` without the SIGTERM handler: run the app and turn every user error into one line."""
    from texkit.commands.errors import click_exception_classes, describe_os_error, describe_usage_error, is_no_args_help

    click_error, click_abort, click_exit = click_exception_classes()
    try:
        from texkit.registry import get_registry

        get_registry().add_commands(app)
        code = app(args=argv, standalone_mode=False, prog_name="texkit")  # returns exit codes instead of raising
        if code == 130:  # typer turns Ctrl-C into exit code 130
            _fail(_INTERRUPTED, 130)
        if isinstance(code, int) and code:
            sys.exit(code)
    except TexkitError as err:
        _fail(str(err))
    except click_exit as ex:
        sys.exit(getattr(ex, "exit_code", 0))
    except click_error as err:
        if is_no_args_help(err):  # plain `texkit`: the help, as click would show it
            typer.echo(err.ctx.get_help() if getattr(err, "ctx", None) else "see `texkit --help`")
            sys.exit(0)
        _fail(describe_usage_error(err))
    except Interrupted as stop:
        _fail(str(stop) if stop.detailed else f"{stop}; {_KEPT}, run the command again to finish", stop.exit_code)
    except (*click_abort, KeyboardInterrupt):
        _fail(_INTERRUPTED, 130)
    except OSError as err:  # a path the checks above did not catch (permissions, disk full, ...)
        if err.errno == errno.EPIPE:  # `texkit rewards | head -1`: the reader left, nothing to report
            sys.exit(1)
        _fail(describe_os_error(err))


if __name__ == "__main__":  # pragma: no cover
    main()
