"""Make the picture of the home page (docs/index.md): the demo mesh before and after ``texkit demo``.

Runs ``texkit demo`` (the tiny generator fine-tuned with ``curvature_color`` on the built-in mesh,
CPU) in a work folder and stacks three labelled rows into ``docs/images/home/demo.png``: the views
painted before training, what the reward asks for (its ``visualize()`` picture, same cameras) and
the views painted after training::

    .venv/bin/python docs/scripts/home_demo.py            # about 3 min on 2 CPU cores

The tiny generator has random weights, so it paints coloured noise; what the picture shows is the
reward moving that noise towards red on the convex belly and blue in the hollows.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from refine_a_texture import label_row, stack  # noqa: E402 - the sibling script's picture helpers

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "home-demo", help="run folder (replaced)")
    parser.add_argument("--image", type=Path, default=REPO / "docs" / "images" / "home" / "demo.png")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    print(f"$ texkit demo --out {args.work}", flush=True)
    subprocess.run([sys.executable, "-m", "texkit.commands.cli", "demo", "--out", str(args.work)], check=True)
    run = args.work
    stack(
        [
            label_row("before training", run / "before" / "views.png"),
            label_row("curvature_color\nasks for:\nred convex,\nblue concave", run / "after" / "reward_curvature_color.png"),
            label_row("after 30 steps", run / "after" / "views.png"),
        ],
        args.image,
    )


if __name__ == "__main__":
    main()
