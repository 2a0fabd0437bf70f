"""Every reward default that differs from the reference, measured on random textures over the shared meshes.

Each texture-space reward that exists in the reference code has ``compat = "reference"``, which
gives every setting listed in its module's ``REFERENCE_SETTINGS`` the reference's value. A
*switch* is such a setting whose texkit default differs. For each reward (both modes of
``curvature_color``), each mesh and each switch, this script scores the same random textures

* in compat mode (``compat = "reference"``),
* with that one switch set to texkit's default on top of compat mode ("effect of the switch"),
* with texkit's defaults (every switch at once, ``compat = "texkit"``),

and records, per (reward, switch, mesh), the Spearman rank correlation of the switched values with
the compat values over the textures (does the default rank textures as the reference does?) and
the value change (median and largest of ``|switched - compat| / |compat|`` over the textures, and
the median ``|switched - compat|`` in units of the compat values' spread, which stays meaningful
where the compat value crosses 0).

Inputs: the shared meshes cow, rabbit, balloon (``../shared/assets``) and the built-in demo gourd,
each with texkit's own geometry (curvature, fields, mirror pairs: texkit computes them; the
reference read files made with outside tools). Coverage: every texel inside the UV atlas painted,
none outside (what painting from enough views gives). The ``reference`` reward compares with a
random target texture of the same generator (seed ``10_000 + i``).

Random textures (`random_texture`), varied on purpose, seeded ``0 .. n - 1``:

* a sum of six octaves of smooth noise (Gaussian grids of 2, 4, ..., 64 cells upsampled bicubically
  to the texture size), octave f weighted f^-beta with a spectral slope beta ~ U(0.5, 2) per
  texture, from rough (0.5) to smooth (2);
* three channels mixed by a random 3x3 matrix (correlated, coloured patterns), scaled to a
  contrast (standard deviation) ~ U(0.03, 0.25);
* plus a global colour c ~ U(0.15, 0.85)^3 (the overall balance, including red minus blue);
* in one texture of three, the field posterised into 2-5 levels (flat regions with step edges);
* clamped to [0, 1].

Run (about 3 minutes on 2 CPU cores; ``--tiny`` for a seconds-long smoke run):

    python benchmarks/reward_defaults.py --out benchmarks/results/reward_defaults.json

``--markdown`` prints, per reward page, the measured table the docs show (from ``--record`` or the
run); tests/test_reward_defaults_docs.py checks that docs/rewards/*.md show exactly these numbers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
MESHES = ("cow", "rabbit", "balloon", "demo")
RECORD = ROOT / "benchmarks" / "results" / "reward_defaults.json"

GENERATOR_DESCRIPTION = (
    "six octaves of smooth noise (Gaussian grids of 2..64 cells, bicubic), octave f weighted f^-beta with beta ~ U(0.5, 2); "
    "channels mixed by a random 3x3 matrix; contrast (std) ~ U(0.03, 0.25); plus a global colour ~ U(0.15, 0.85)^3; "
    "one texture in three posterised into 2-5 levels; clamped to [0, 1]; seed i for texture i"
)


@dataclass
class Case:
    """One reward configuration to measure: the reward, fixed parameters, and the switches to skip (no effect by construction)."""

    key: str
    reward: str
    fixed: dict[str, Any] = field(default_factory=dict)
    skip: tuple[str, ...] = ()
    label: str = ""


CASES = (
    Case("curvature_color/sharp", "curvature_color", {"mode": "sharp"}, skip=("centre",), label="curvature_color (sharp)"),
    Case("curvature_color/smooth", "curvature_color", {"mode": "smooth"}, skip=("denominator",), label="curvature_color (smooth)"),
    Case("feature_emphasis", "feature_emphasis", label="feature_emphasis"),
    Case("curvature_alignment", "curvature_alignment", label="curvature_alignment"),
    Case("symmetry", "symmetry", label="symmetry"),
    Case("reference", "reference", label="reference (texture mode)"),
)

#: Name of the row with every switch at texkit's default.
DEFAULTS = "texkit defaults"


def random_texture(seed: int, size: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A random ``(size, size, 3)`` texture in [0, 1] from the generator described in the module docstring.

    Args:
        seed: the texture's seed (one texture per seed, the same on every machine).
        size: texture side in texels.
        dtype: floating point type of the result.

    Returns:
        ``(size, size, 3)`` RGB in [0, 1].
    """
    gen = torch.Generator().manual_seed(seed)

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape or (1,), generator=gen, dtype=torch.float64)

    beta = float(uniform(0.5, 2.0))
    noise = torch.zeros(3, size, size, dtype=torch.float64)
    for cells in (2, 4, 8, 16, 32, 64):
        grid = torch.randn(1, 3, cells + 3, cells + 3, generator=gen, dtype=torch.float64)
        up = F.interpolate(grid, size=(size + size * 3 // cells,) * 2, mode="bicubic", align_corners=False)[0]
        offset = size * 3 // (2 * cells)  # drop the border cells, where bicubic interpolation sees padding
        noise += cells ** (-beta) * up[:, offset : offset + size, offset : offset + size]
    mixing = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    field_ = torch.einsum("ij,jhw->ihw", mixing, noise)
    field_ = (field_ - field_.mean()) / field_.std().clamp_min(1e-12)
    if float(uniform(0.0, 1.0)) < 1.0 / 3.0:
        levels = int(torch.randint(2, 6, (1,), generator=gen))
        field_ = torch.round(field_.clamp(-2, 2) * levels / 4) * 4 / levels
        field_ = (field_ - field_.mean()) / field_.std().clamp_min(1e-12)
    contrast = float(uniform(0.03, 0.25))
    colour = uniform(0.15, 0.85, 3)
    image = (colour[:, None, None] + contrast * field_).clamp(0.0, 1.0)
    return image.permute(1, 2, 0).contiguous().to(dtype)


def load_mesh(name: str) -> Any:
    """A benchmark mesh: ``demo`` is texkit's built-in gourd, the others ``../shared/assets/<name>.obj``."""
    import texkit

    if name == "demo":
        from texkit.geometry.primitives import demo_mesh

        return demo_mesh()
    path = ASSETS / f"{name}.obj"
    if not path.is_file():
        raise SystemExit(f"shared mesh not found: {path} (../shared/assets next to the repository)")
    return texkit.Mesh.load(path)


def switches(case: Case) -> dict[str, tuple[Any, Any]]:
    """``{setting: (texkit default, reference value)}`` of the settings where the two differ."""
    import texkit

    cls = texkit.get_registry().get("rewards", case.reward).obj
    module = sys.modules[cls.__module__]
    fields = cls.Params.model_fields
    out = {}
    for key, reference in module.REFERENCE_SETTINGS.items():
        default = fields[key].default
        if default != reference and key not in case.skip:
            out[key] = (default, reference)
    return out


def variants(case: Case) -> dict[str, dict[str, Any]]:
    """``{row name: reward parameters}``: compat mode, one switch at texkit's default each, and texkit's defaults."""
    out = {"compat": {**case.fixed, "compat": "reference"}}
    for key, (default, _) in switches(case).items():
        out[key] = {**case.fixed, "compat": "reference", key: default}
    out[DEFAULTS] = dict(case.fixed)
    return out


def _make_reward(case: Case, params: dict[str, Any], target: str | None) -> Any:
    import texkit

    if case.reward == "reference":
        params = {**params, "texture": target}
    return texkit.get_registry().make_reward(case.reward, params)


def score_mesh(name: str, textures: list[torch.Tensor], target: str, progress: Any = None) -> dict[str, dict[str, list[float]]]:
    """``{case key: {row name: [value per texture]}}`` on one mesh."""
    import texkit
    from texkit.geometry.precompute import curvature_maps

    mesh = load_mesh(name)
    cache = texkit.GeometryCache(mesh, root=False)
    size = textures[0].shape[0]
    coverage = curvature_maps(cache, size)["mask"].to(textures[0].dtype)[..., None]
    out: dict[str, dict[str, list[float]]] = {}
    for case in CASES:
        out[case.key] = {}
        for row, params in variants(case).items():
            reward = _make_reward(case, params, target)
            reward.prepare(mesh, cache)
            values = []
            with torch.no_grad():
                for image in textures:
                    ctx = texkit.RewardContext(mesh=mesh, texture=texkit.Texture(image, coverage), geometry=cache)
                    values.append(float(reward(ctx).value))
            out[case.key][row] = values
            if progress is not None:
                progress()
    return out


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman rank correlation (average ranks for ties); NaN when either side is constant."""
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def compare(values: list[float], compat: list[float]) -> dict[str, float]:
    """Spearman against compat mode and the value change of one row on one mesh."""
    v, c = np.asarray(values), np.asarray(compat)
    delta = np.abs(v - c)
    relative = delta / np.maximum(np.abs(c), 1e-300)
    spread = float(c.std())
    return {
        "spearman": round(spearman(values, compat), 4),
        "median_relative_change": float(f"{np.median(relative):.3g}"),
        "max_relative_change": float(f"{relative.max():.3g}"),
        "median_change_over_spread": float(f"{np.median(delta) / spread:.3g}") if spread > 0 else float("nan"),
    }


def curvature_diagnostics(name: str, size: int, textures: list[torch.Tensor], values: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """What drives curvature_color on one mesh.

    * ``atlas_mean_of_K``: the atlas mean of min-max scaled K per curvature (the uncentred smooth
      value is ``mean(K) mean(R - B) + cov(K, R - B)``; its first term is the texture's balance);
    * ``spearman_with_red_minus_blue``: per case and row, the Spearman correlation of the values with
      the atlas mean of R - B over the textures (near +-1: the row ranks textures by their balance);
    * ``spearman_default_vs_compat_centred``: smooth mode, texkit's defaults against compat mode with
      only ``centre`` on (the part of the reference that is not the balance);
    * ``below_tau``: sharp mode, the atlas fraction with K < tau (-0.7) per curvature, and their IoU.
    """
    from texkit_rewards_geometry.curvature_color import CurvatureColor, normalized_curvature

    import texkit
    from texkit.geometry.precompute import curvature_maps

    mesh = load_mesh(name)
    cache = texkit.GeometryCache(mesh, root=False)
    maps = curvature_maps(cache, size)
    mask = maps["mask"].to(torch.bool)
    k = {curv: normalized_curvature(maps, curv, "minmax")[mask] for curv in ("mean", "k_min")}
    tau = CurvatureColor.Params().tau
    low = {curv: kk < tau for curv, kk in k.items()}
    union = float((low["mean"] | low["k_min"]).sum())
    balance = [float((t[..., 0] - t[..., 2])[mask].mean()) for t in textures]
    with_balance = {
        case: {row: round(spearman(v, balance), 4) for row, v in values[case].items()} for case in ("curvature_color/sharp", "curvature_color/smooth")
    }
    smooth = values["curvature_color/smooth"]
    return {
        "atlas_mean_of_K": {curv: round(float(kk.mean()), 4) for curv, kk in k.items()},
        "spearman_with_red_minus_blue": with_balance,
        "spearman_default_vs_compat_centred": round(spearman(smooth[DEFAULTS], smooth["centre"]), 4) if "centre" in smooth else None,
        "below_tau": {
            "tau": tau,
            **{curv: round(float(m.double().mean()), 4) for curv, m in low.items()},
            "iou": round(float((low["mean"] & low["k_min"]).sum()) / union, 4) if union else None,
        },
        "red_minus_blue_atlas_means": [round(b, 5) for b in balance],
    }


def border_diagnostics(textures: list[torch.Tensor], values: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """What the Sobel padding does to feature_emphasis on these textures.

    * ``max_G_on_border``: per padding, the fraction of textures whose largest gradient magnitude G
      (the min-max normaliser of ``L_mag``) lies on the outermost ring of texels: with zero padding
      the Sobel filter sees an edge to black there, as high as the border's grey level;
    * ``spearman_with_border_grey``: per row, the Spearman correlation of the values with the mean
      grey level of that ring.
    """
    from texkit_rewards_geometry.texture_ops import gradient_magnitude, grey, sobel_uv

    border, on_border = [], {"zeros": 0, "replicate": 0}
    for t in textures:
        g = grey(t, "reference")
        ring = torch.ones_like(g, dtype=torch.bool)
        ring[1:-1, 1:-1] = False
        border.append(float(g[ring].mean()))
        for padding in on_border:
            magnitude = gradient_magnitude(sobel_uv(g, padding), 1e-3)
            on_border[padding] += bool(ring.flatten()[int(magnitude.argmax())])
    return {
        "max_G_on_border": {padding: round(count / len(textures), 4) for padding, count in on_border.items()},
        "spearman_with_border_grey": {row: round(spearman(v, border), 4) for row, v in values["feature_emphasis"].items()},
    }


def summarise(values: dict[str, dict[str, dict[str, list[float]]]]) -> list[dict[str, Any]]:
    """One row per (case, switch, mesh): the comparisons against compat mode."""
    rows = []
    for case in CASES:
        settings = switches(case)
        for row in [*settings, DEFAULTS]:
            for mesh, by_case in values.items():
                entry = {"case": case.key, "reward": case.reward, "switch": row, "mesh": mesh}
                if row in settings:
                    entry["texkit_value"], entry["reference_value"] = settings[row]
                entry.update(compare(by_case[case.key][row], by_case[case.key]["compat"]))
                rows.append(entry)
    return rows


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import scipy

    import texkit

    return {
        "texkit": texkit.__version__,
        "texkit-rewards-geometry": version("texkit-rewards-geometry"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run(meshes: tuple[str, ...], count: int, size: int, quiet: bool = False) -> dict[str, Any]:
    """Score every case on every mesh and return the record (without the command line)."""
    from PIL import Image

    textures = [random_texture(i, size) for i in range(count)]
    begin = time.perf_counter()
    values: dict[str, Any] = {}
    diagnostics: dict[str, Any] = {}
    border: dict[str, Any] = {}
    total = len(meshes) * sum(len(variants(case)) for case in CASES)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "target.png"
        Image.fromarray((random_texture(10_000, size).numpy() * 255).round().astype(np.uint8)).save(target)
        with _progress(total, quiet) as advance:
            for name in meshes:
                values[name] = score_mesh(name, textures, str(target), advance)
                diagnostics[name] = curvature_diagnostics(name, size, textures, values[name])
                border[name] = border_diagnostics(textures, values[name])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "seconds": round(time.perf_counter() - begin, 1),
        "settings": {
            "meshes": list(meshes),
            "textures": count,
            "texture_size": size,
            "dtype": "float64",
            "coverage": "every texel inside the UV atlas painted (coverage 1), none outside (coverage 0)",
            "texture_generator": GENERATOR_DESCRIPTION,
            "reference_target": "random_texture(10000) as an 8-bit PNG",
        },
        "switches": {case.key: {k: {"texkit": d, "reference": r} for k, (d, r) in switches(case).items()} for case in CASES},
        "results": summarise(values),
        "curvature_color_diagnostics": diagnostics,
        "feature_emphasis_diagnostics": border,
        "values": values,
    }


class _progress:
    """A rich progress bar over the scored (mesh, case, row) combinations, or nothing when quiet."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet = total, quiet

    def __enter__(self):
        if self.quiet:
            return lambda: None
        from rich.progress import Progress

        self.bar = Progress(transient=False)
        self.bar.start()
        task = self.bar.add_task("scoring random textures", total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if not self.quiet:
            self.bar.stop()


# -- the tables the docs show ----------------------------------------------------------------------


def _rho(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.2f}"


def _change(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value == 0:
        return "0"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.2g}" if value >= 1e-3 else f"{value:.1e}"


def rows_of(record: dict[str, Any], case: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``{switch: {mesh: result}}`` of one case."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in record["results"]:
        if entry["case"] == case:
            out.setdefault(entry["switch"], {})[entry["mesh"]] = entry
    return out


#: Which cases each reward page shows, with the prefix of each case in a cell.
PAGES = {
    "curvature_color": {"curvature_color/sharp": "sharp: ", "curvature_color/smooth": "smooth: "},
    "feature_emphasis": {"feature_emphasis": ""},
    "curvature_alignment": {"curvature_alignment": ""},
    "symmetry": {"symmetry": ""},
    "reference": {"reference": ""},
}

#: Header of the column the "Differences from the reference" tables add.
COLUMN = "random textures (cow, rabbit, balloon, demo): Spearman ρ vs compat; median relative change Δ, largest"


def differences_cell(record: dict[str, Any], page: str, switch: str) -> str:
    """The random-texture cell of one row of a page's "Differences from the reference" table.

    Args:
        record: the benchmark record.
        page: the reward page (a key of `PAGES`).
        switch: the setting of the row, or `DEFAULTS` for the row of texkit's defaults.

    Returns:
        ``"ρ a, b, c, d; Δ a, b, c, d, max e"`` (Spearman and median relative change per mesh, the
        largest relative change over meshes and textures) per case of the page that has the switch
        (prefixed by the case and joined by ``<br>`` when the page shows several), or ``""`` when
        none has it.
    """
    meshes = record["settings"]["meshes"]
    parts = []
    for case, prefix in PAGES[page].items():
        by_mesh = rows_of(record, case).get(switch)
        if by_mesh is None:
            continue
        rho = ", ".join(_rho(by_mesh[m]["spearman"]) for m in meshes)
        change = ", ".join(_change(by_mesh[m]["median_relative_change"]) for m in meshes)
        largest = _change(max(by_mesh[m]["max_relative_change"] for m in meshes))
        parts.append(f"{prefix}ρ {rho}; Δ {change}, max {largest}")
    return "<br>".join(parts)


def page_switches(record: dict[str, Any], page: str) -> list[str]:
    """Every measured switch of a page's cases (each needs a row in its table), then `DEFAULTS`."""
    out: list[str] = []
    for case in PAGES[page]:
        out += [s for s in rows_of(record, case) if s not in out and s != DEFAULTS]
    return [*out, DEFAULTS]


def markdown(record: dict[str, Any]) -> str:
    """Per page, the cell of every switch (to paste into its "Differences from the reference" table)."""
    out = []
    for page in PAGES:
        out += [f"docs/rewards/{page}.md ({COLUMN})"]
        out += [f"  {switch}: {differences_cell(record, page, switch)}" for switch in page_switches(record, page)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark (or only print the docs tables of a record) and return the record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="+", default=list(MESHES), choices=MESHES)
    parser.add_argument("--textures", type=int, default=24, help="random textures per mesh (at least 20 for the docs)")
    parser.add_argument("--size", type=int, default=256, help="texture size in texels")
    parser.add_argument("--out", type=Path, help="write the JSON record here (atomically)")
    parser.add_argument("--markdown", action="store_true", help="print the docs tables instead of the JSON")
    parser.add_argument("--record", type=Path, help="with --markdown: read this record instead of running")
    parser.add_argument("--tiny", action="store_true", help="smoke run: 2 meshes (demo, balloon), 4 textures of 32 px")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.record is not None:
        record = json.loads(args.record.read_text())
    else:
        meshes, count, size = (("demo", "balloon"), 4, 32) if args.tiny else (tuple(args.meshes), args.textures, args.size)
        torch.set_num_threads(max(1, torch.get_num_threads()))
        record = {"command": "python benchmarks/reward_defaults.py " + shlex.join(argv if argv is not None else sys.argv[1:])}
        record.update(run(meshes, count, size, quiet=args.quiet))
        if args.out is not None:
            from texkit.io import atomic_write_text

            atomic_write_text(args.out, json.dumps(record, indent=1) + "\n")
    print(markdown(record) if args.markdown else json.dumps({k: v for k, v in record.items() if k != "values"}, indent=1))
    return record


if __name__ == "__main__":
    main()
