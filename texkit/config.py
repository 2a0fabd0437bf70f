"""The run configuration: pydantic models read from a TOML file plus ``--set key=value`` overrides.

Unknown keys are errors that name the key and suggest the closest valid one. Example::

    [mesh]
    path = "demo"

    [prompts]
    text = ["a ceramic vase with blue glaze"]

    [generator]
    name = "tiny"

    [rewards.symmetry]
    weight = 1.0          # every other key of a reward table is one of its parameters

    [training]
    steps = 30
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any, Literal, Union

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from texkit.cameras import CAMERA_PRESETS
from texkit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "RunConfig",
    "MeshConfig",
    "PromptConfig",
    "ComponentConfig",
    "CameraPath",
    "CameraConfig",
    "TextureConfig",
    "RewardConfig",
    "TrainingConfig",
    "OutputConfig",
    "load_config",
    "parse_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MeshConfig(_Strict):
    """Which mesh to texture."""

    path: str = Field("demo", description="Mesh file (OBJ/GLB/GLTF/PLY/OFF) or a built-in name: demo, sphere, cylinder, cube.")
    normalize: Literal["unit_sphere", "extent", "none"] = Field("unit_sphere", description="Scale normalisation of the mesh.")
    per_rank: list[str] = Field(
        default_factory=list, description="Multi-process training: rank r textures per_rank[r % len] instead of `path` (empty: every rank uses `path`)."
    )

    def path_for_rank(self, rank: int) -> str:
        """The mesh that rank ``rank`` trains on (``path`` unless ``per_rank`` is set)."""
        return self.per_rank[rank % len(self.per_rank)] if self.per_rank else self.path


class PromptConfig(_Strict):
    """Prompts: one is drawn per training step."""

    text: list[str] = Field(default_factory=lambda: ["a colorful painted object"], description="Prompts.")
    file: str | None = Field(None, description="Text file with one prompt per line (added to `text`).")
    prefix: str = Field("best quality, high detail, ", description="Quality prefix added before every prompt.")
    negative: str = Field("low quality, blurry, shadows", description="Negative prompt for classifier-free guidance.")
    view_suffix: bool = Field(True, description="Append ', <front|side|back|top|bottom> view' per camera.")

    def all_prompts(self) -> list[str]:
        """``text`` plus the lines of ``file``."""
        prompts = list(self.text)
        if self.file:
            path = Path(self.file)
            if not path.exists():
                raise ConfigError(f"prompts.file not found: {path}")
            prompts += [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not prompts:
            raise ConfigError("no prompts: set prompts.text or prompts.file")
        return prompts


class ComponentConfig(_Strict):
    """A registered component by name plus its factory options."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the component's factory.")


class CameraPath(_Strict):
    """An explicit camera path (degrees)."""

    elevation: list[float]
    azimuth: list[float]

    @pydantic.model_validator(mode="after")
    def _same_length(self) -> "CameraPath":
        if len(self.elevation) != len(self.azimuth) or not self.elevation:
            raise ValueError("elevation and azimuth need the same, non-zero number of entries")
        return self


class CameraConfig(_Strict):
    """Painting and reward camera paths, by preset name or explicit lists."""

    paint: Union[str, CameraPath] = Field("front_short", description="Painting path: a preset name or {elevation, azimuth}.")
    reward: Union[str, CameraPath] = Field("tilted_short", description="Reward path: a preset name or {elevation, azimuth}.")
    radius: float = Field(2.5, gt=0)
    fov: float = Field(50.0, gt=0, lt=180)
    learn: list[Literal["paint", "reward"]] = Field(default_factory=list, description="Which paths have learnable angles.")
    learn_angles: list[Literal["elevation", "azimuth"]] = Field(default_factory=lambda: ["elevation", "azimuth"])

    @pydantic.field_validator("paint", "reward")
    @classmethod
    def _known_preset(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in CAMERA_PRESETS:
            raise ValueError(f"unknown camera preset '{value}' (known: {', '.join(sorted(CAMERA_PRESETS))})")
        return value


class TextureConfig(_Strict):
    """Texture and render resolutions and back-projection settings."""

    size: int = Field(512, ge=16, description="UV texture size in texels.")
    render_size: int = Field(256, ge=16, description="Render resolution of the view loop and reward views.")
    cos_thresh: float = Field(0.0, ge=0.0, lt=1.0, description="Back-project only pixels seen more frontally than this.")
    trimap_sharpness: float = Field(100.0, gt=0, description="k of the method's soft trimap sigmoids.")
    background: float = Field(1.0, ge=0, le=1, description="Grey level behind the object in painted views.")


class RewardConfig(_Strict):
    """One reward of the weighted sum; every key besides ``weight`` is a parameter of the reward."""

    model_config = ConfigDict(extra="allow")
    weight: float = 1.0

    def params(self) -> dict[str, Any]:
        """The reward's own parameters (extra keys)."""
        return dict(self.model_extra or {})


class TrainingConfig(_Strict):
    """Fine-tuning settings (the method's reference values are the defaults where they apply)."""

    steps: int = Field(100, ge=0)
    lr: float = Field(5e-5, gt=0, description="AdamW learning rate of the LoRA weights.")
    camera_lr: float = Field(5.0, gt=0, description="Learning rate of camera angles (degrees).")
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(1e-4, ge=0)
    eps: float = Field(1e-8, gt=0)
    grad_clip: float = Field(0.0, ge=0, description="Max global grad norm; 0 disables clipping.")
    truncation: Union[int, Literal["all"]] = Field("all", description="Backpropagate through the last N denoising steps.")
    unet_checkpointing: bool = Field(True, description="Gradient checkpointing inside UNet and ControlNet.")
    view_checkpointing: bool = Field(True, description="Checkpoint each painted view so memory does not grow with views.")
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    seed: int = 0
    resample: bool = Field(True, description="Draw a fresh prompt and noise seed every step (the method); false repeats step 0's draw.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches (prompt + seeds each) per optimiser step and rank; effective batch = world size x grad_accum.")
    checkpoint_every: int = Field(10, ge=1)
    log_every: int = Field(1, ge=1)
    before_after: bool = Field(True, description="Paint before/after textures with a fixed seed for the report.")


class OutputConfig(_Strict):
    """Where results go."""

    dir: str = Field("runs/texkit", description="Run folder.")
    grid_views: int = Field(8, ge=1, description="Views in the before/after grids.")


class RunConfig(_Strict):
    """A whole run: ``texkit generate`` and ``texkit train`` read it."""

    mesh: MeshConfig = Field(default_factory=MeshConfig)
    prompts: PromptConfig = Field(default_factory=PromptConfig)
    generator: ComponentConfig = Field(default_factory=lambda: ComponentConfig(name="tiny"))
    renderer: ComponentConfig = Field(default_factory=lambda: ComponentConfig(name="torch"))
    cameras: CameraConfig = Field(default_factory=CameraConfig)
    texture: TextureConfig = Field(default_factory=TextureConfig)
    rewards: dict[str, RewardConfig] = Field(default_factory=dict)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    device: str = Field("auto", description="'auto' (cuda when available), 'cpu' or 'cuda[:i]'.")


def _closest(key: str, model: type[BaseModel] | None) -> str:
    if model is None:
        return ""
    match = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else f"; valid keys: {', '.join(model.model_fields)}"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the field at ``loc`` (to suggest valid keys)."""
    model: Any = RunConfig
    for part in loc[:-1]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        ann = model.model_fields[part].annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return model


def parse_config(data: dict[str, Any]) -> RunConfig:
    """Validate a config dict.

    Raises:
        ConfigError: one line naming the offending key (and the closest valid key for a typo).
    """
    try:
        return RunConfig.model_validate(data)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        loc = tuple(first.get("loc", ()))
        where = ".".join(str(p) for p in loc)
        if first["type"] == "extra_forbidden":
            raise ConfigError(f"unknown config key '{where}'{_closest(str(loc[-1]), _model_at(loc))}") from None
        raise ConfigError(f"config key '{where}': {first['msg']}") from None


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``["training.lr=1e-4", ...]`` to a nested dict (values parsed as TOML, else strings)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set '{item}' must look like section.key=value")
        dotted, raw = item.split("=", 1)
        parts = [p for p in dotted.strip().split(".") if p]
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set '{item}': '{part}' is not a section")
        node[parts[-1]] = _parse_value(raw.strip())
    return data


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a TOML config (or start from defaults when ``path`` is None) and apply overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path} is not valid TOML: {err}") from None
    return parse_config(apply_overrides(data, overrides or []))
