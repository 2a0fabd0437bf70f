"""3D reference reward: agreement with a reference texture, in UV space or through renders."""

from __future__ import annotations

from typing import Any, Literal

import pydantic

import texkit


class Reference(texkit.Reward):
    """r = -MSE to a reference (METHOD.md 4.6).

    ``mode = "texture"``: over covered texels, against the reference texture image (resized to the
    texture's size). ``mode = "renders"``: the mesh rendered with the reference texture from the
    reward cameras against the renders of the current texture (over object pixels).
    """

    name = "reference"
    description = "Agreement with a reference texture (UV space or through renders)."

    class Params(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        texture: str = pydantic.Field(..., description="Path of the reference texture image.")
        mode: Literal["texture", "renders"] = "texture"

    def __init__(self, params: Any = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        try:
            self._reference = texkit.Texture.load(self.params.texture).image
        except texkit.TexkitError as err:
            raise texkit.ConfigError(f"reward 'reference': {err}; set 'texture' to an existing PNG/JPEG file") from None
        if self.params.mode == "renders":
            self.needs_renders = True  # type: ignore[misc]

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Score ``ctx.texture`` against the reference."""
        import torch.nn.functional as F

        tex = ctx.texture.image
        ref = self._reference.to(tex.device, tex.dtype)
        if ref.shape[:2] != tex.shape[:2]:
            ref = F.interpolate(ref.permute(2, 0, 1)[None], size=tex.shape[:2], mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
        if self.params.mode == "texture":
            w = ctx.texture.coverage
            value = -(((tex - ref) ** 2) * w).sum() / (w.sum() * 3).clamp_min(1e-12)
        else:
            if ctx.render is None or ctx.cameras is None:
                raise texkit.RewardError("reward 'reference' in renders mode needs cameras and a renderer")
            ours = ctx.renders if ctx.renders is not None else ctx.render(ctx.texture, ctx.cameras)
            theirs = ctx.render(texkit.Texture(ref), ctx.cameras)
            mask = ours.alpha.detach()
            value = -(((ours.rgb - theirs.rgb.detach()) ** 2) * mask).sum() / (mask.sum() * 3).clamp_min(1e-12)
        return texkit.RewardOutput(value=value)


@texkit.hookimpl
def texkit_register_rewards(register: Any) -> None:
    """Register ``reference``."""
    register(Reference)
