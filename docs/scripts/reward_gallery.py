"""Make the reward gallery (docs/rewards/gallery.md and its pictures) from every installed reward.

For each reward the registry lists, on each mesh, runs `texkit.explain.explain_reward` (what
``texkit explain REWARD MESH`` does): the reward's ``visualize()`` texture on the mesh beside what a
few hundred Adam steps on the texture alone reach from grey. Composes one small PNG per reward and
mesh (palette-quantised) into ``docs/images/reward-gallery/``, records what it made in
``gallery.json`` there, and writes the page from that record::

    .venv/bin/python docs/scripts/reward_gallery.py                        # every reward, ~5 min on 2 CPU cores
    .venv/bin/python docs/scripts/reward_gallery.py --only clip_score      # add or redo one reward, keep the rest

A reward that cannot be made here (its model weights are not available, a parameter it requires)
gets a one-line note instead of pictures; one that is not differentiable gets its target only
(or a note). `GALLERY_PARAMS` gives the parameters a reward needs for the gallery (``reference``
gets a UV checkerboard to copy).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[2]
RABBIT = REPO.parent / "shared" / "assets" / "rabbit.obj"
DEFAULT_MESHES = ["demo", str(RABBIT)]
IMAGES = REPO / "docs" / "images" / "reward-gallery"
PAGE = REPO / "docs" / "rewards" / "gallery.md"
MANIFEST = "gallery.json"
CAPTION = 16  # px of caption above each picture


def gallery_params(reward: str, work: Path) -> dict[str, Any]:
    """Parameters a reward gets in the gallery (its defaults for the rest); may write files into ``work``."""
    if reward == "reference":  # needs something to copy: a UV checkerboard
        from texkit.commands.rendering import checkerboard
        from texkit.imageio import write_image

        path = work / "checkerboard.png"
        write_image(path, checkerboard(128))
        return {"texture": str(path)}
    return {}


#: What the page says about the parameters `gallery_params` gives.
GALLERY_PARAMS_NOTE = {"reference": "`texture` = a UV checkerboard (the reward needs something to copy)"}
#: How to read a reward's pictures, where they need a word.
READING = {
    "symmetry": "Every mirror-symmetric texture is optimal, so the ascent only evens the start's noise out "
    "across the mirror plane and the optimum stays grey; the target shows the mirror pairs it compares "
    "(both points of a pair in one colour)",
}


def mesh_label(spec: str) -> str:
    """``demo`` for a built-in mesh, the file's stem (``rabbit``) for a path."""
    return Path(spec).stem


def mesh_argument(spec: str) -> str:
    """The mesh as the page's command line names it (paths relative to the repository)."""
    path = Path(spec)
    if not path.is_absolute():
        return spec
    try:
        return Path("..", path.relative_to(REPO.parent)).as_posix()
    except ValueError:
        return path.as_posix()


def compose(target: Path | None, optimum: Path | None, steps: int, out: Path) -> None:
    """The target and optimum view rows side by side under captions, saved as a 96-colour PNG."""
    tiles = [("asks for (visualize)", target), (f"optimum after {steps} Adam steps from grey", optimum)]
    tiles = [(label, Image.open(path).convert("RGB")) for label, path in tiles if path is not None]
    width = sum(tile.width for _, tile in tiles) + 12 * (len(tiles) - 1)
    height = max(tile.height for _, tile in tiles) + CAPTION
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for label, tile in tiles:
        draw.text((x + 4, 2), label, fill="black", font=ImageFont.load_default())
        canvas.paste(tile, (x, CAPTION))
        x += tile.width + 12
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.quantize(96, dither=Image.Dither.NONE).save(out, optimize=True)


def explain_all(rewards: list[str], meshes: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Run the explanations and compose the pictures; returns the manifest entries of ``rewards``."""
    from texkit.errors import TexkitError
    from texkit.explain import explain_reward
    from texkit.registry import get_registry

    reg = get_registry()
    entries: dict[str, dict[str, Any]] = {}
    for name in rewards:
        cls = reg.get("rewards", name).obj
        entry: dict[str, Any] = {
            "description": cls.description,
            "distribution": reg.get("rewards", name).distribution,
            "differentiable": bool(cls.differentiable),
            "params_note": GALLERY_PARAMS_NOTE.get(name, ""),
            "skipped": None,
            "meshes": [],
        }
        for spec in meshes:
            label = mesh_label(spec)
            work = args.work / name / label
            work.mkdir(parents=True, exist_ok=True)
            print(f"$ texkit explain {name} {mesh_argument(spec)} --out x", flush=True)
            try:
                result = explain_reward(
                    name, spec, work, steps=args.steps, size=args.size, views=args.views, params=gallery_params(name, work)
                )
            except (TexkitError, OSError) as err:  # e.g. no model weights here: one line in the gallery
                entry["skipped"] = " ".join(str(err).split())
                print(f"  skipped: {entry['skipped']}", flush=True)
                break
            image = None
            if result.target is not None or result.optimum is not None:
                image = f"{name}-{label}.png"
                compose(result.target, result.optimum, result.steps, args.images / image)
            entry["meshes"].append(
                {
                    "mesh": label,
                    "argument": mesh_argument(spec),
                    "image": image,
                    "start_value": result.start_value,
                    "final_value": result.final_value,
                    "steps": result.steps,
                    "seconds": round(result.seconds, 1),
                    "notes": result.notes,
                }
            )
        entries[name] = entry
    return entries


def _reward_pages() -> dict[str, str]:
    """``{reward: "name.md"}`` for the rewards that have a page under docs/rewards (the docs hook's rule)."""
    spec = importlib.util.spec_from_file_location("texkit_docs_generate_reference", REPO / "docs" / "hooks" / "generate_reference.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    files = [
        SimpleNamespace(src_uri=f"rewards/{p.name}", content_string=p.read_text(encoding="utf-8"))
        for p in sorted((REPO / "docs" / "rewards").glob("*.md"))
    ]
    return {name: link.removeprefix("../rewards/") for name, link in hook.reward_page_links(files).items()}


def page_markdown(manifest: dict[str, Any], images_rel: str) -> str:
    """The gallery page from the manifest (``images_rel``: the images folder relative to the page)."""
    pages = _reward_pages()
    settings = manifest["settings"]
    lines = [
        "# Reward gallery",
        "",
        "What each installed reward asks for, and what it gets. For every reward, on two meshes: **left**, the",
        "reward's `visualize()` picture rendered on the mesh (what it asks for; rewards without `visualize()` show",
        f"none); **right**, what direct gradient ascent on the texture alone converges to: {settings['steps']} Adam steps",
        "on the texture's logits, from grey with a little noise, through the renderer when the reward reads",
        "renders. No generator, no diffusion: the reward's own optimum, which is what fine-tuning pushes the",
        "generator towards (weighted against the prompt and the other rewards).",
        "",
        "Make the same pictures for any installed reward, third-party ones included, on any mesh:",
        "",
        "```bash",
        "texkit explain curvature_color demo --out explain/curvature_color   # target.png, optimum.png, explain.json",
        "```",
        "",
        "This page is generated from the installed rewards by `docs/scripts/reward_gallery.py` (run it again after",
        "installing or changing a reward; `--only NAME` redoes one):",
        "",
        "```bash",
        ".venv/bin/python docs/scripts/reward_gallery.py",
        "```",
        "",
        f"Textures of {settings['size']} texels, views of {settings['size']} px; values are the reward of the start",
        "texture and of the optimum.",
        "",
    ]
    for name in sorted(manifest["rewards"]):
        entry = manifest["rewards"][name]
        title = f"[`{name}`]({pages[name]})" if name in pages else f"`{name}`"
        lines += [f"## {name}", "", f"{title} ({entry['distribution']}): {entry['description']}", ""]
        if entry["params_note"]:
            lines += [f"Gallery parameters: {entry['params_note']}.", ""]
        if name in READING:
            lines += [f"{READING[name]}.", ""]
        if entry["skipped"]:
            lines += [f"*Not shown: {entry['skipped']}.*", ""]
            continue
        if not any(shown["image"] for shown in entry["meshes"]):  # nothing to show on any mesh: its notes, once
            notes = dict.fromkeys(note for shown in entry["meshes"] for note in shown["notes"])
            lines += [f"*Nothing to show: {'; '.join(notes)}. `texkit score MESH TEXTURE --reward {name}` gives its value.*", ""]
            continue
        for shown in entry["meshes"]:
            value = f"{shown['start_value']:.3g} → {shown['final_value']:.3g}" if shown["final_value"] is not None else f"{shown['start_value']:.3g}"
            lines.append(f"**{shown['mesh']}** (`texkit explain {name} {shown['argument']} --out x`; reward {value})")
            lines.append("")
            if shown["image"]:
                lines += [f"![{name} on {shown['mesh']}: target and optimum]({images_rel}/{shown['image']})", ""]
            for note in shown["notes"]:
                lines += [f"*{note}.*", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_page(manifest: dict[str, Any], args: argparse.Namespace) -> None:
    """Write the page (``args.page``) from the manifest, linking the pictures in ``args.images``."""
    from texkit.io import atomic_write_text

    images_rel = Path(os.path.relpath(args.images.resolve(), args.page.resolve().parent)).as_posix()
    atomic_write_text(args.page, page_markdown(manifest, images_rel))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="+", default=DEFAULT_MESHES, help="meshes (built-in names or files); default: demo and the rabbit")
    parser.add_argument("--only", action="append", default=[], help="redo only this reward (repeat); the others stay as recorded")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps")
    parser.add_argument("--size", type=int, default=128, help="texture size and view size in px")
    parser.add_argument("--views", type=int, default=4, help="views per picture")
    parser.add_argument("--images", type=Path, default=IMAGES, help="folder of the pictures and gallery.json")
    parser.add_argument("--page", type=Path, default=PAGE, help="the page to write")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "gallery", help="work folder (replaced)")
    parser.add_argument("--page-only", action="store_true", help="only write the page again from the recorded gallery.json")
    args = parser.parse_args(argv)

    from texkit.io import atomic_write_text
    from texkit.registry import get_registry

    installed = get_registry().names("rewards")
    unknown = [name for name in args.only if name not in installed]
    if unknown:
        print(f"reward_gallery: not installed: {', '.join(unknown)} (installed: {', '.join(installed)})", file=sys.stderr)
        return 2
    manifest_path = args.images / MANIFEST
    if args.page_only:
        write_page(json.loads(manifest_path.read_text(encoding="utf-8")), args)
        return 0
    manifest: dict[str, Any] = {"settings": {}, "rewards": {}}
    if args.only and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    elif args.images.exists():  # a full run replaces every picture
        shutil.rmtree(args.images)
    manifest["settings"] = {"steps": args.steps, "size": args.size, "views": args.views, "meshes": [mesh_label(m) for m in args.meshes]}
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    manifest["rewards"].update(explain_all(args.only or list(installed), args.meshes, args))
    manifest["rewards"] = {name: manifest["rewards"][name] for name in sorted(manifest["rewards"]) if name in installed}
    args.images.mkdir(parents=True, exist_ok=True)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
    write_page(manifest, args)
    size = sum(p.stat().st_size for p in args.images.glob("*.png"))
    print(f"wrote {args.page} and {len(list(args.images.glob('*.png')))} pictures ({size // 1024} KiB) in {args.images}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
