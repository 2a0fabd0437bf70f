"""The ``palette`` reward: how well the covered texels agree with a user-given colour palette.

For every covered texel colour c and palette colours p_1..p_K, with squared RGB distances
d_k = |c - p_k|^2, the soft minimum at temperature tau is

    s(c) = -tau * log(sum_k exp(-d_k / tau)),   min_k d_k - tau ln K <= s(c) <= min_k d_k,

a smooth stand-in for the distance to the nearest palette colour (it tends to the hard minimum as
tau -> 0, and equals d_1 for a one-colour palette). The reward is minus the coverage-weighted mean
of s over texels, so it is 0 (its maximum, up to tau ln K) when every painted texel is a palette
colour, and it is differentiable with respect to the texture.

Uses only names from ``texkit.__all__``: ``Reward``, ``RewardContext``, ``RewardOutput``,
``RewardError``, ``PluginError``, ``HOOKSPEC_VERSION`` and ``hookimpl``.
"""

from __future__ import annotations

from typing import Union

import pydantic
import torch
from pydantic import Field

import texkit

__all__ = ["PaletteReward", "PaletteParams", "soft_min_distance", "palette_agreement", "parse_color"]

#: The hook-spec major version this plugin was written against (see ``texkit.HOOKSPEC_VERSION``).
SUPPORTED_HOOKSPEC_MAJOR = "1"

if texkit.HOOKSPEC_VERSION.split(".")[0] != SUPPORTED_HOOKSPEC_MAJOR:
    raise texkit.PluginError(
        f"texkit-reward-palette supports texkit hook specs {SUPPORTED_HOOKSPEC_MAJOR}.x but texkit has "
        f"{texkit.HOOKSPEC_VERSION}; upgrade texkit-reward-palette"
    )

Color = Union[tuple[float, float, float], str]


def parse_color(color: Color) -> tuple[float, float, float]:
    """An RGB triple in [0, 1] from a triple or a ``"#rrggbb"`` hex string.

    Raises:
        ValueError: malformed hex string or a component outside [0, 1].
    """
    if isinstance(color, str):
        text = color.strip().lstrip("#")
        if len(text) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in text):
            raise ValueError(f"colour '{color}' is not '#rrggbb' hex")
        return tuple(int(text[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]
    rgb = tuple(float(c) for c in color)
    if any(not 0.0 <= c <= 1.0 for c in rgb):
        raise ValueError(f"colour {color} has a component outside [0, 1]")
    return rgb  # type: ignore[return-value]


class PaletteParams(pydantic.BaseModel):
    """Parameters of the ``palette`` reward."""

    model_config = pydantic.ConfigDict(extra="forbid")
    colors: list[Color] = Field(
        ["#1f3a93", "#f5f5dc", "#c0392b"],
        min_length=1,
        description="Palette: RGB triples in [0,1] or '#rrggbb' strings.",
    )
    temperature: float = Field(0.01, gt=0, description="Soft-min temperature in squared RGB distance units.")

    @pydantic.field_validator("colors")
    @classmethod
    def _valid_colors(cls, colors: list[Color]) -> list[Color]:
        for color in colors:
            parse_color(color)
        return colors

    def palette(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The palette as a ``(K, 3)`` tensor in [0, 1]."""
        return torch.tensor([parse_color(c) for c in self.colors], dtype=dtype, device=device)


def soft_min_distance(colors: torch.Tensor, palette: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft minimum over the palette of the squared RGB distance.

    Args:
        colors: ``(..., 3)`` colours in [0, 1].
        palette: ``(K, 3)`` palette colours in [0, 1].
        temperature: tau > 0; smaller is closer to the hard minimum.

    Returns:
        ``(...)`` values ``-tau * logsumexp(-|c - p_k|^2 / tau)``, in ``[min d - tau ln K, min d]``.
    """
    squared = ((colors.unsqueeze(-2) - palette) ** 2).sum(-1)
    return -temperature * torch.logsumexp(-squared / temperature, dim=-1)


def palette_agreement(
    image: torch.Tensor, coverage: torch.Tensor, palette: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Minus the coverage-weighted mean soft-min distance of the texels to the palette.

    Args:
        image: ``(H, W, 3)`` texture in [0, 1].
        coverage: ``(H, W, 1)`` weights in [0, 1] (1 = painted texel).
        palette: ``(K, 3)`` colours in [0, 1].
        temperature: soft-min temperature tau > 0.

    Returns:
        Scalar tensor <= tau ln K (0 when every covered texel is a palette colour and the others are far).

    Raises:
        RewardError: no texel is covered.
    """
    weights = coverage[..., 0]
    total = weights.sum()
    if float(total.detach()) <= 0.0:
        raise texkit.RewardError("palette reward: the texture has no covered texels; paint at least one view first")
    distances = soft_min_distance(image[..., :3], palette, temperature)
    return -(distances * weights).sum() / total


class PaletteReward(texkit.Reward):
    """Agreement of the painted texels with a colour palette (higher is closer)."""

    name = "palette"
    description = "Agreement of the covered texels with a colour palette (soft-min RGB distance, negated)."
    differentiable = True
    needs_renders = False
    Params = PaletteParams

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Score ``ctx.texture``.

        Returns:
            The reward, plus metrics ``mean_nearest_distance`` (mean Euclidean RGB distance of
            covered texels to their nearest palette colour) and an image ``palette_map`` (each
            texel replaced by its nearest palette colour).
        """
        image = ctx.texture.image
        coverage = ctx.texture.coverage
        palette = self.params.palette(image.device, image.dtype)
        value = palette_agreement(image, coverage, palette, self.params.temperature)
        with torch.no_grad():
            distances = torch.cdist(image[..., :3].reshape(-1, 3), palette)
            nearest, index = distances.min(dim=-1)
            weights = coverage.reshape(-1)
            mean_nearest = float((nearest * weights).sum() / weights.sum())
            palette_map = palette[index].reshape(image.shape[0], image.shape[1], 3)
        return texkit.RewardOutput(
            value=value,
            metrics={"mean_nearest_distance": mean_nearest},
            images={"palette_map": palette_map},
        )

    def visualize(self, ctx: texkit.RewardContext) -> torch.Tensor:
        """What the reward pulls each texel towards: ``(H, W, 3)``, every texel of ``ctx.texture``
        replaced by its nearest palette colour (the ``palette_map`` image of the output)."""
        image = ctx.texture.image[..., :3]
        palette = self.params.palette(image.device, image.dtype)
        index = torch.cdist(image.reshape(-1, 3), palette).argmin(dim=-1)
        return palette[index].reshape(image.shape)


@texkit.hookimpl
def texkit_register_rewards(register) -> None:
    """Register the ``palette`` reward with texkit."""
    register(PaletteReward)
