"""Conformance of the geometry rewards with the reference implementation (issue 17).

``../shared/conformance`` (next to the repository) holds the reference code's values and gradients
for given precomputed inputs (curvature maps, UV points and direction vectors, UV pairs) on three
256 x 256 textures; its README states the math, the layouts and the tolerances. Every case runs the
reward's own math function (the one its ``__call__`` runs: ``curvature_color_value``,
``feature_emphasis_terms``, ``alignment_terms``, ``symmetry_value``; the ``reference`` reward itself)
with ``compat = "reference"`` in float64 and must match:

* value: relative error < 1e-5 against ``value_f64`` (and < 1e-4 when run in float32);
* gradient w.r.t. the float texture: cosine > 0.9999 with the stored full gradient, and the
  summaries within the README's tolerances (l2, l1 relative 1e-5; sum within 1e-5 l1; probe texels
  within 1e-5 of the largest probe value). For the feature-emphasis cases the README marks
  ill-conditioned (min G tied over hundreds of texels) only the value and the gradient with the
  min/max held constant are compared.

The negative cases toggle one reference quirk at a time on top of ``compat = "reference"`` and
show that the check then fails; quirks whose effect on these data is below the tolerance are
listed in ``BELOW_TOLERANCE`` with their measured effect (the switch changes the value, but by less
than the tolerance).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from texkit_rewards_geometry.curvature_alignment import CurvatureAlignment, alignment_terms
from texkit_rewards_geometry.curvature_color import CurvatureColor, curvature_color_value
from texkit_rewards_geometry.feature_emphasis import FeatureEmphasis, feature_emphasis_terms
from texkit_rewards_geometry.reference import Reference
from texkit_rewards_geometry.symmetry import Symmetry, symmetry_value
from texkit_rewards_geometry.texture_ops import extremes_held_constant

import texkit
from texkit.geometry.primitives import cube

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO.parent / "shared" / "conformance"
pytestmark = pytest.mark.skipif(
    not (FIXTURE / "reference_values.json").is_file(),
    reason=f"the reward conformance fixture is absent: expected {FIXTURE} (../shared/conformance next to the repository)",
)

TOL_VALUE = 1e-5  # relative, float64 (README "Tolerances")
TOL_GRAD = 1e-5  # l2 / l1 relative; sum relative to l1; probes relative to max |probe|
MIN_COSINE = 0.9999


# -- fixture access ----------------------------------------------------------------------------


@functools.cache
def _records() -> dict[str, Any]:
    return json.loads((FIXTURE / "reference_values.json").read_text())["rewards"]


@functools.cache
def _npz(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURE / f"{name}.npz") as z:
        return {key: z[key] for key in z.files}


@functools.cache
def _textures_u8() -> np.ndarray:
    """``(3, H, W, 3)`` uint8 RGB textures."""
    return np.ascontiguousarray(_npz("textures")["textures_nchw_u8"].transpose(0, 2, 3, 1))


def texture_f64(index: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Texture ``index`` as the reward sees it: ``(H, W, 3)`` uint8 / 255 (float64 unless told), requiring grad."""
    return (torch.from_numpy(_textures_u8()[index].copy()).to(dtype) / 255.0).requires_grad_(True)


def coverage_left_half(size: int = 256, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(H, W, 1)`` coverage painted on the left half only: texkit's default would ignore the other
    half, the reference counts every texel (quirk Q9), so the ``average`` switch is visible."""
    cov = torch.zeros(size, size, 1, dtype=dtype)
    cov[:, : size // 2] = 1.0
    return cov


def _f64(array: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A stored array as a tensor of the working precision (float32 arrays cast exactly to float64)."""
    return torch.from_numpy(np.asarray(array)).to(dtype)


def atlas_weights(z: dict[str, np.ndarray], data: str, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(H, W)`` texel weights as the texture-space rewards form them: painted coverage times the
    UV-atlas mask (the rabbit K's ``atlas_mask``; the synthetic K covers every texel)."""
    key = f"atlas_mask__{data}"
    mask = _f64(z[key], dtype) if key in z else torch.ones(256, 256, dtype=dtype)
    return coverage_left_half(dtype=dtype)[..., 0] * mask


# -- one runner per reward: (case, params overrides, extremes held) -> value tensor of texture x --


def _curvature_color(mode: str) -> Callable[..., torch.Tensor]:
    def run(case: dict, x: torch.Tensor, overrides: dict) -> torch.Tensor:
        z = _npz(f"curvature_score_{mode}")
        params = CurvatureColor.Params(mode=mode, tau=-0.7, sharpness=100.0, compat="reference", **overrides)
        return curvature_color_value(x, _f64(z[f"K__{case['data']}"], x.dtype), atlas_weights(z, case["data"], x.dtype), params)

    return run


@functools.cache
def _mse_target_png(tmp: str) -> str:
    from PIL import Image

    path = Path(tmp) / "curvcolour_target.png"
    Image.fromarray(_npz("curvature_score_mse")["target_u8__curvcolour_target"]).save(path)
    return str(path)


def _texture_mse(case: dict, x: torch.Tensor, overrides: dict, tmp: str) -> torch.Tensor:
    """The ``reference`` reward itself (texture mode), its target the fixture's 8-bit image as a PNG."""
    reward = Reference(texture=_mse_target_png(tmp), compat="reference", **overrides)
    ctx = texkit.RewardContext(mesh=cube(), texture=texkit.Texture(x, coverage_left_half(dtype=x.dtype)))
    return reward(ctx).value


def _feature_emphasis(case: dict, x: torch.Tensor, overrides: dict) -> torch.Tensor:
    z = _npz("mean_curvature_texture_alignment_reward")
    params = FeatureEmphasis.Params(ridge_threshold=0.6, colourfulness_weight=0.001, compat="reference", **overrides)
    assert params.direction == "constant"  # the reference's constant (0, 1): its direction argument is ignored
    k = _f64(z[f"K__{case['data']}"], x.dtype)
    direction = torch.tensor([0.0, 1.0], dtype=x.dtype).expand(*k.shape, 2)
    return feature_emphasis_terms(x, k, direction, atlas_weights(z, case["data"], x.dtype), params)["value"]


def _min_curvature(case: dict, x: torch.Tensor, overrides: dict) -> torch.Tensor:
    """U (2, N) raw OBJ UVs; V (2, N) the reference's vectors, (x, -y) of the file: in texkit's UV
    axes (v up) the file's (x, y) = (V0, -V1) (README: same cos^2)."""
    z = _npz("minimum_curvature_texture_alignment_reward")
    uv = _f64(z[f"uv__{case['data']}"], x.dtype).T
    vec = _f64(z[f"vec_uv__{case['data']}"], x.dtype)
    field = torch.stack((vec[0], -vec[1]), dim=-1)
    params = CurvatureAlignment.Params(compat="reference", **overrides)
    return alignment_terms(x, uv, field, coverage_left_half(dtype=x.dtype), params)


def _symmetry(case: dict, x: torch.Tensor, overrides: dict) -> torch.Tensor:
    z = _npz("symmetry_score")
    uv_a, uv_b = _f64(z[f"uv_orig__{case['pairs']}"], x.dtype), _f64(z[f"uv_mirror__{case['pairs']}"], x.dtype)
    params = Symmetry.Params(patch=int(case["patch_size"]), compat="reference", **overrides)
    return symmetry_value(x, uv_a, uv_b, coverage_left_half(dtype=x.dtype), params)


RUNNERS: dict[str, Callable[..., torch.Tensor]] = {
    "curvature_score_smooth": _curvature_color("smooth"),
    "curvature_score_sharp": _curvature_color("sharp"),
    "curvature_score_mse": _texture_mse,
    "mean_curvature_texture_alignment_reward": _feature_emphasis,
    "minimum_curvature_texture_alignment_reward": _min_curvature,
    "symmetry_score": _symmetry,
}


def run_case(reward: str, case: dict, overrides: dict, tmp: str, held_extremes: bool = False) -> tuple[float, np.ndarray]:
    """Value and ``(H, W, 3)`` gradient w.r.t. the texture of one fixture case, in float64."""
    x = texture_f64(case["texture_index"])
    runner = RUNNERS[reward]
    args = (case, x, overrides, tmp) if reward == "curvature_score_mse" else (case, x, overrides)
    if held_extremes:
        with extremes_held_constant():
            value = runner(*args)
    else:
        value = runner(*args)
    assert value.dtype == torch.float64
    (grad,) = torch.autograd.grad(value, x)
    return float(value.detach()), grad.numpy()


# -- comparisons ---------------------------------------------------------------------------------


def gradient_problems(grad: np.ndarray, summary: dict, probes: list, full: np.ndarray | None) -> list[str]:
    """README gradient tolerances: l2, l1 relative; sum against l1; probes against max |probe|; cosine."""
    problems = []
    l2, l1, total = float(np.sqrt((grad**2).sum())), float(np.abs(grad).sum()), float(grad.sum())
    if abs(l2 - summary["l2"]) > TOL_GRAD * summary["l2"]:
        problems.append(f"grad l2 {l2:.9e} vs {summary['l2']:.9e}")
    if abs(l1 - summary["l1"]) > TOL_GRAD * summary["l1"]:
        problems.append(f"grad l1 {l1:.9e} vs {summary['l1']:.9e}")
    if abs(total - summary["sum"]) > TOL_GRAD * summary["l1"]:
        problems.append(f"grad sum {total:.9e} vs {summary['sum']:.9e}")
    ours = np.array([grad[r, c] for r, c in probes])
    theirs = np.array(summary["at_probes"])
    if np.abs(ours - theirs).max() > TOL_GRAD * np.abs(theirs).max():
        problems.append(f"probe gradients differ by {np.abs(ours - theirs).max():.3e} (max |probe| {np.abs(theirs).max():.3e})")
    if full is not None:
        full = full.astype(np.float64)
        cosine = float(grad.ravel() @ full.ravel() / (np.linalg.norm(grad) * np.linalg.norm(full)))
        if not cosine > MIN_COSINE:
            problems.append(f"full-gradient cosine {cosine:.8f}")
    return problems


def case_problems(reward: str, case: dict, overrides: dict, tmp: str) -> tuple[float, list[str]]:
    """Our value and every disagreement of one case with the reference (empty list: conformant)."""
    z = _npz(reward)
    value, grad = run_case(reward, case, overrides, tmp)
    problems = []
    rel = abs(value - case["value_f64"]) / abs(case["value_f64"])
    if not rel < TOL_VALUE:
        problems.append(f"value {value:.10e} vs reference {case['value_f64']:.10e} (relative {rel:.2e})")
    if reward == "mean_curvature_texture_alignment_reward":
        if case["gradient_well_conditioned"]:
            full = z[case["grad_direct_key"]] + z[case["grad_extremes_key"]] if case["grad_direct_key"] else None
            problems += gradient_problems(grad, case["grad_f64"], case["probe_texels"], full)
        _, direct = run_case(reward, case, overrides, tmp, held_extremes=True)
        full_direct = z[case["grad_direct_key"]] if case["grad_direct_key"] else None
        problems += [f"[extremes held] {p}" for p in gradient_problems(direct, case["grad_direct_f64"], case["probe_texels"], full_direct)]
    else:
        full = z[case["full_grad_key"]] if case["full_grad_key"] else None
        problems += gradient_problems(grad, case["grad_f64"], case["probe_texels"], full)
    return value, problems


def _cases() -> list[tuple[str, str]]:
    if not (FIXTURE / "reference_values.json").is_file():
        return []
    return [(reward, case["id"]) for reward in RUNNERS for case in _records()[reward]["cases"]]


def _case(reward: str, case_id: str) -> dict:
    return next(c for c in _records()[reward]["cases"] if c["id"] == case_id)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("conformance"))


@pytest.mark.parametrize(("reward", "case_id"), _cases(), ids=[f"{r}-{c}" for r, c in _cases()])
def test_reward_matches_the_reference_in_compat_mode(reward, case_id, tmp):
    case = _case(reward, case_id)
    value, problems = case_problems(reward, case, {}, tmp)
    print(f"{reward} {case_id}: texkit {value:+.10e}  reference {case['value_f64']:+.10e}")
    assert not problems, f"{reward} {case_id}: " + "; ".join(problems)


@pytest.mark.parametrize(("reward", "case_id"), _cases(), ids=[f"{r}-{c}" for r, c in _cases()])
def test_float32_value_matches_the_reference_within_1e_4(reward, case_id, tmp):
    """README: < 1e-4 relative in float32 (the precision training runs in)."""
    case = _case(reward, case_id)
    x = texture_f64(case["texture_index"], torch.float32)
    args = (case, x, {}, tmp) if reward == "curvature_score_mse" else (case, x, {})
    value = RUNNERS[reward](*args)
    assert value.dtype == torch.float32
    rel = abs(float(value.detach()) - case["value_f64"]) / abs(case["value_f64"])
    print(f"{reward} {case_id}: float32 relative error {rel:.1e}")
    assert rel < 1e-4


def test_every_reward_of_the_fixture_is_covered():
    covered = set(RUNNERS) | {"jpeg_compressibility", "jpeg_incompressibility"}  # JPEG: texkit-rewards-image's tests
    assert set(_records()) == covered


# -- negative cases: one quirk toggled back to texkit's default -----------------------------------

#: (fixture reward, parameter, texkit's value): each breaks conformance on at least one case.
QUIRKS = [
    ("curvature_score_smooth", "average", "painted"),
    ("curvature_score_smooth", "centre", True),
    ("curvature_score_sharp", "average", "painted"),
    ("curvature_score_mse", "average", "painted"),
    ("mean_curvature_texture_alignment_reward", "average", "painted"),
    ("mean_curvature_texture_alignment_reward", "padding", "replicate"),
    ("mean_curvature_texture_alignment_reward", "grey_weights", "bt601"),
    ("mean_curvature_texture_alignment_reward", "gradient_epsilon", 1e-8),
    ("mean_curvature_texture_alignment_reward", "projection", "abs"),
    ("mean_curvature_texture_alignment_reward", "projection_epsilon", 0.0),
    ("minimum_curvature_texture_alignment_reward", "normalize", "per_point"),
    ("minimum_curvature_texture_alignment_reward", "edges", "along"),
    ("minimum_curvature_texture_alignment_reward", "lookup", "texkit"),
    ("minimum_curvature_texture_alignment_reward", "padding", "replicate"),
    ("minimum_curvature_texture_alignment_reward", "grey_weights", "bt601"),
    ("minimum_curvature_texture_alignment_reward", "gradient_epsilon", 1e-8),
    ("minimum_curvature_texture_alignment_reward", "average", "weighted"),
    ("symmetry_score", "lookup", "texkit"),
    ("symmetry_score", "average", "painted"),
]

#: Quirks reproduced by ``compat = "reference"`` whose effect on the fixture is below the tolerance:
#: (reward, parameter, texkit's value, upper bound of the measured relative value change).
BELOW_TOLERANCE = [
    ("curvature_score_sharp", "denominator", "clamp", 1e-6),  # README Q10: below tolerance for these data
    ("mean_curvature_texture_alignment_reward", "minmax", "clamp", 1e-6),  # "+ 1e-8" vs clamp; every M has both values
    ("minimum_curvature_texture_alignment_reward", "field_normalisation", "unit", 1e-5),  # README: ~3e-6 relative
]


@pytest.mark.parametrize(("reward", "key", "texkit_value"), QUIRKS, ids=[f"{r}-{k}={v}" for r, k, v in QUIRKS])
def test_toggling_one_quirk_breaks_conformance(reward, key, texkit_value, tmp):
    failing = None
    for case in _records()[reward]["cases"]:  # the first case that fails is enough
        _, problems = case_problems(reward, case, {key: texkit_value}, tmp)
        if problems:
            failing = f"{case['id']}: {problems[0]}"
            break
    print(f"{reward} {key}={texkit_value!r}: {failing}")
    assert failing, f"{reward}: toggling {key} to {texkit_value!r} went unnoticed"


@pytest.mark.parametrize(("reward", "key", "texkit_value", "bound"), BELOW_TOLERANCE, ids=[f"{r}-{k}" for r, k, _, _ in BELOW_TOLERANCE])
def test_quirks_below_tolerance_change_the_value_by_their_measured_amount(reward, key, texkit_value, bound, tmp):
    effects = []
    for case in _records()[reward]["cases"]:
        x = texture_f64(case["texture_index"])
        args = (case, x, {key: texkit_value})
        toggled = float(RUNNERS[reward](*args).detach())
        compat = float(RUNNERS[reward](case, x, {}).detach())
        effects.append(abs(toggled - compat) / abs(compat))
    print(f"{reward} {key}={texkit_value!r}: relative value change per case {', '.join(f'{e:.1e}' for e in effects)}")
    assert max(effects) > 0, "the switch has no effect at all"
    assert max(effects) < bound


# -- the compat switch itself ----------------------------------------------------------------------


def test_compat_sets_the_reference_values_and_an_explicit_setting_wins():
    from texkit_rewards_geometry import feature_emphasis

    params = FeatureEmphasis.Params(compat="reference", padding="replicate")
    for key, value in feature_emphasis.REFERENCE_SETTINGS.items():
        assert getattr(params, key) == (value if key != "padding" else "replicate")
    assert FeatureEmphasis.Params().padding == "replicate" and FeatureEmphasis.Params().gradient_epsilon == 1e-8
    reward = FeatureEmphasis(compat="reference")  # through the reward's own validation
    assert reward.params.padding == "zeros" and FeatureEmphasis(reward.params).params.padding == "zeros"


def test_reference_ridge_mask_switches_the_direction_term_off_when_every_texel_is_a_ridge():
    """Quirk Q6 (not exercised by the fixture, where every M has both values): the reference's
    min-max normalised 0/1 mask is 0 when every texel is a ridge, so L_dir vanishes."""
    gen = torch.Generator().manual_seed(0)
    texture = torch.rand(16, 16, 3, generator=gen, dtype=torch.float64)
    k = torch.full((16, 16), 0.9, dtype=torch.float64)
    direction = torch.tensor([0.0, 1.0], dtype=torch.float64).expand(16, 16, 2)
    weights = torch.ones(16, 16, dtype=torch.float64)
    ours = feature_emphasis_terms(texture, k, direction, weights, FeatureEmphasis.Params())
    theirs = feature_emphasis_terms(texture, k, direction, weights, FeatureEmphasis.Params(compat="reference"))
    assert ours["l_dir"] > 0.01 and theirs["l_dir"] == 0.0
