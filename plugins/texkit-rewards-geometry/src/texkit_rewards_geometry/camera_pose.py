"""Camera-pose-aware reward: another reward averaged over learnable views."""

from __future__ import annotations

from typing import Any

import pydantic

import texkit


class CameraPose(texkit.Reward):
    """r = mean over the views of ``ctx.cameras`` of an inner image reward (default ``aesthetic``).

    With learnable camera angles (``cameras.learn`` in the run config) the gradient of the inner
    reward moves the cameras to where the texture looks best, so the result no longer depends on
    where they started (METHOD.md 4.1). The renders are ``ctx.renders`` when the caller rendered the
    reward views, else ``ctx.render(ctx.texture, ctx.cameras)``; either way they carry the gradient
    of the texture and of the camera angles.
    """

    name = "camera_pose"
    description = "Another image reward (default aesthetic) averaged over learnable camera views."
    needs_renders = True

    class Params(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        reward: str = pydantic.Field("aesthetic", description="Inner reward name.")
        reward_params: dict[str, Any] = pydantic.Field(default_factory=dict, description="Parameters of the inner reward.")

    def __init__(self, params: Any = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.inner = texkit.get_registry().make_reward(self.params.reward, self.params.reward_params)
        if not self.inner.differentiable:
            raise texkit.RewardError(f"camera_pose needs a differentiable inner reward; '{self.params.reward}' is not")

    def prepare(self, mesh: texkit.Mesh, cache: texkit.GeometryCache) -> None:
        """Prepare the inner reward."""
        self.inner.prepare(mesh, cache)

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Render ``ctx.texture`` from ``ctx.cameras`` and score it with the inner reward."""
        renders = ctx.renders
        if renders is None:
            if ctx.render is None or ctx.cameras is None:
                raise texkit.RewardError("camera_pose needs renders: give the reward context cameras and a renderer")
            renders = ctx.render(ctx.texture, ctx.cameras)
        inner_ctx = texkit.RewardContext(
            mesh=ctx.mesh, texture=ctx.texture, cameras=ctx.cameras, renders=renders, render=ctx.render, geometry=ctx.geometry, prompt=ctx.prompt, device=ctx.device
        )
        out = self.inner(inner_ctx)
        return texkit.RewardOutput(value=out.value, metrics={f"{self.params.reward}.{k}": v for k, v in out.metrics.items()}, images=out.images)


@texkit.hookimpl
def texkit_register_rewards(register: Any) -> None:
    """Register ``camera_pose``."""
    register(CameraPose)
