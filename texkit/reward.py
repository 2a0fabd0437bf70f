"""The base class of every reward, built-in or third-party.

A reward is a class with a ``name``, a pydantic ``Params`` model (validated from the run config),
an optional ``prepare`` step (precomputation on the mesh, cached on disk), and ``__call__`` that
maps a `RewardContext` to a `RewardOutput`.
Higher is better. Example::

    class Palette(texkit.Reward):
        name = "palette"
        description = "Agreement of the texture with a colour palette."

        class Params(pydantic.BaseModel):
            colors: list[tuple[float, float, float]] = [(1.0, 0.0, 0.0)]

        def __call__(self, ctx):
            ...
            return texkit.RewardOutput(value=score)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import pydantic

from texkit.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from texkit.geometry.cache import GeometryCache
    from texkit.geometry.mesh import Mesh
    from texkit.types import RewardContext, RewardOutput

__all__ = ["Reward"]


class Reward:
    """Base class of rewards.

    Class attributes a subclass sets:
        name: the registry name used in configs (``[rewards.<name>]``) and on the CLI.
        description: one line shown by ``texkit rewards``.
        differentiable: False for rewards usable only for scoring (e.g. JPEG size); the trainer refuses them.
        needs_renders: True when the reward reads ``ctx.renders`` (the trainer then renders reward views).
        Params: pydantic model of the parameters; unknown keys are errors.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    differentiable: ClassVar[bool] = True
    needs_renders: ClassVar[bool] = False

    class Params(pydantic.BaseModel):
        """No parameters."""

        model_config = pydantic.ConfigDict(extra="forbid")

    def __init__(self, params: "pydantic.BaseModel | dict[str, Any] | None" = None, **overrides: Any) -> None:
        """Validate parameters.

        Args:
            params: a ``Params`` instance or a dict of parameter values.
            **overrides: parameter values given as keywords (applied after ``params``).

        Raises:
            ConfigError: on an unknown parameter or a value of the wrong type.
        """
        values: dict[str, Any] = {}
        if isinstance(params, pydantic.BaseModel):
            values.update(params.model_dump())
        elif params:
            values.update(params)
        values.update(overrides)
        self.params = self.validate_params(values)

    @classmethod
    def validate_params(cls, values: dict[str, Any]) -> pydantic.BaseModel:
        """Build ``cls.Params`` from a dict, turning validation errors into one-line ConfigErrors."""
        params_model = cls.Params
        if params_model.model_config.get("extra") != "forbid":
            params_model = type(params_model.__name__, (params_model,), {"model_config": pydantic.ConfigDict(extra="forbid")})
        try:
            return params_model(**values)
        except pydantic.ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "?"
            valid = ", ".join(cls.Params.model_fields) or "none"
            raise ConfigError(
                f"reward '{cls.name}': parameter '{where}': {first['msg']} (valid parameters: {valid})"
            ) from None

    def prepare(self, mesh: "Mesh", cache: "GeometryCache") -> None:
        """Optional precomputation for ``mesh`` (runs once per mesh; use ``cache`` to store on disk)."""

    def __call__(self, ctx: "RewardContext") -> "RewardOutput":  # pragma: no cover - abstract
        """Score the texture in ``ctx``; return a scalar tensor (higher is better) and metrics."""
        raise NotImplementedError

    def visualize(self, ctx: "RewardContext") -> "torch.Tensor | None":
        """Optional: what this reward asks for, as a texture image the report renders on the mesh.

        Return an ``(H, W, 3)`` float image in [0, 1] in the texture's UV layout (same convention
        as ``ctx.texture.image``; usually the same size), e.g. the reward's target colours or its
        per-texel score of ``ctx.texture``. The run report renders it with the preview cameras
        beside the before/after views. ``ctx`` holds the mesh, the painted texture, the geometry
        cache and the device; there are no reward renders. The default returns None (nothing to show).
        """
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"
