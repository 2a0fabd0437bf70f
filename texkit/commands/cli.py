"""The ``texkit`` command (typer + rich).

Errors a user causes (`texkit.TexkitError`) print one line and exit with code 2, without a
traceback. Plugins may add sub-commands through the ``texkit_register_commands`` hook.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from texkit.errors import TexkitError

app = typer.Typer(
    name="texkit",
    help="Geometry-aware 3D texture generation with differentiable-reward fine-tuning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _parse_params(items: list[str]) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; values are parsed as JSON when they can be (numbers, lists, booleans)."""
    params: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise TexkitError(f"--param '{item}' must look like key=value")
        key, raw = item.split("=", 1)
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


@app.command("plugins")
def plugins_command(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """List installed plugins: distribution, version and what each registers."""
    from texkit.registry import get_registry

    reg = get_registry()
    rows = [
        {
            "distribution": p.distribution,
            "version": p.version,
            "entry_point": p.entry_point,
            "module": p.module,
            "registers": {k: v for k, v in p.registers.items() if v},
            "error": p.error,
        }
        for p in reg.plugins + reg.failures
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="texkit plugins")
    for col in ("distribution", "version", "entry point", "registers"):
        table.add_column(col)
    for row in rows:
        regs = "; ".join(f"{k}: {', '.join(v)}" for k, v in row["registers"].items())
        if row["error"]:
            regs = f"[red]failed to import: {row['error']}[/red]"
        table.add_row(row["distribution"], row["version"], row["entry_point"], regs)
    console.print(table)


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
            key: {"type": _type_name(field.annotation), "default": _jsonable(field.default), "help": field.description or ""}
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
    table = Table(title="texkit rewards")
    for col in ("name", "differentiable", "description", "parameters", "from"):
        table.add_column(col)
    for row in rows:
        params = ", ".join(f"{k}={v['default']}" for k, v in row["params"].items())
        table.add_row(row["name"], "yes" if row["differentiable"] else "no (scoring only)", row["description"], params, row["distribution"])
    console.print(table)


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
    texture: Optional[Path] = typer.Option(None, "--texture", help="Texture PNG; default: a UV checkerboard."),
    views: int = typer.Option(8, "--views", min=1, help="Number of orbit views."),
    size: int = typer.Option(256, "--size", min=16, help="Image size in pixels."),
    elevation: float = typer.Option(-20.0, "--elevation", help="Camera elevation in degrees (negative = above)."),
    renderer: str = typer.Option("torch", "--renderer", help="Renderer name (see `texkit plugins`)."),
) -> None:
    """Render a mesh from an orbit of views into a PNG grid (``OUT/views.png``)."""
    from texkit.commands.rendering import render_views_grid

    path = render_views_grid(str(mesh), out, texture, views, size, elevation, renderer)
    console.print(f"wrote {path}")


@app.command("score")
def score_command(
    mesh: Path = typer.Argument(..., help="Mesh file or 'demo'."),
    texture: Path = typer.Argument(..., help="Texture image."),
    reward: list[str] = typer.Option(..., "--reward", help="Reward name; repeat for several."),
    param: list[str] = typer.Option([], "--param", help="Reward parameter key=value (applies to every --reward)."),
    views: str = typer.Option("tilted_short", "--views", help="Camera preset for rewards that read renders."),
    size: int = typer.Option(256, "--size", help="Render size for rewards that read renders."),
    renderer: str = typer.Option("torch", "--renderer", help="Renderer for rewards that read renders."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Score a textured mesh with one or more rewards and print the value and metrics."""
    from texkit.commands.score import score_texture

    results = score_texture(str(mesh), texture, reward, _parse_params(param), views, size, renderer)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    for name, res in results.items():
        metrics = ", ".join(f"{k}={v:.5g}" for k, v in res["metrics"].items())
        console.print(f"[bold]{name}[/bold] = {res['value']:.6g}" + (f"  ({metrics})" if metrics else ""))


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
def doctor_command() -> None:
    """Check torch, CUDA, every renderer, the attention backend and GPU memory; print fixes."""
    from texkit.commands.doctor import run_checks

    failed = 0
    for check in run_checks():
        mark = "[green]ok[/green]" if check.ok else "[red]FAIL[/red]"
        console.print(f"{mark}  {check.name}: {check.detail}")
        if not check.ok:
            failed += 1
            console.print(f"      fix: {check.fix}")
    if failed:
        raise typer.Exit(1)


@app.command("generate")
def generate_command(
    config: Path = typer.Argument(..., help="Run config (TOML)."),
    adapter: Optional[Path] = typer.Option(None, "--adapter", help="LoRA adapter folder to load first."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: from the config)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set training.lr=1e-4."),
) -> None:
    """Paint a texture with the view loop: writes texture.png, a textured GLB and a view grid."""
    from texkit.commands.generate import generate
    from texkit.config import load_config

    cfg = load_config(config, set_)
    folder = generate(cfg, adapter=adapter, out=out)
    console.print(f"wrote {folder}")


@app.command("train")
def train_command(
    config: Path = typer.Argument(..., help="Run config (TOML)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set training.lr=1e-4."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint of the run folder."),
) -> None:
    """Fine-tune the generator with the configured rewards (LoRA and, optionally, camera angles)."""
    from texkit.config import load_config
    from texkit.training import train

    cfg = load_config(config, set_)
    result = train(cfg, resume=resume)
    from texkit.distributed import is_main

    if is_main():  # under torchrun only rank 0 reports
        console.print(f"report: {result.report}")


@app.command("demo")
def demo_command(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder."),
    steps: int = typer.Option(30, "--steps", min=1, help="Training steps."),
) -> None:
    """Train the tiny built-in generator on the built-in mesh (CPU, a few minutes) and write a report."""
    from texkit.commands.demo import run_demo

    report = run_demo(out, steps)
    console.print(f"report: {report}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; a TexkitError prints one line and exits 2."""
    try:
        from texkit.registry import get_registry

        get_registry().add_commands(app)
    except TexkitError as err:
        err_console.print(f"texkit: error: {err}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    try:
        code = app(args=argv, standalone_mode=False)  # non-standalone typer returns exit codes instead of raising
        if isinstance(code, int) and code:
            sys.exit(code)
    except TexkitError as err:
        err_console.print(f"texkit: error: {err}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as ex:
        sys.exit(ex.exit_code)
    except Exception as err:  # click usage errors
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            sys.exit(2)
        if isinstance(err, click.exceptions.Abort):
            sys.exit(130)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
