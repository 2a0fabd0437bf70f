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
import json
import sys
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from texkit.cameras import CAMERA_PRESETS
from texkit.defaults import DEFAULT_GENERATOR, DEFAULT_RENDERER
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
    "camera_angles",
    "to_toml",
    "toml_text",
    "apply_overrides",
    "read_toml",
    "validate_model",
]


_M = TypeVar("_M", bound=BaseModel)


class _Strict(BaseModel):
    # nan and inf are refused as "not a number" (they would otherwise pass unbounded fields, or be
    # reported as out of a bound they are not "above" or "below")
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class MeshConfig(_Strict):
    """Which mesh to texture."""

    path: str = Field(
        "demo",
        description="Mesh to texture: a file (.obj, .glb, .gltf, .ply or .off; relative to the working directory) "
        "or a built-in name: `demo`, `sphere`, `cylinder`, `cube`.",
    )
    normalize: Literal["unit_sphere", "extent", "none"] = Field(
        "unit_sphere",
        description="How the mesh is centred and scaled when loaded: `unit_sphere` puts the bounding-box centre at the "
        "origin and the farthest vertex at distance 1; `extent` (the method's) makes the largest bounding-box side 1.6; "
        "`none` keeps the file's coordinates (built-in meshes: as built).",
    )
    per_rank: list[str] = Field(
        default_factory=list,
        description="Multi-process training (torchrun): rank r textures `per_rank[r % len(per_rank)]` (a file or a "
        "built-in name, as `path`) instead of `path`; empty: every rank textures `path`.",
    )

    def path_for_rank(self, rank: int) -> str:
        """The mesh that rank ``rank`` trains on (``path`` unless ``per_rank`` is set)."""
        return self.per_rank[rank % len(self.per_rank)] if self.per_rank else self.path


class PromptConfig(_Strict):
    """Prompts: one is drawn per training step."""

    text: list[str] = Field(
        default_factory=lambda: ["a colorful painted object"],
        description="Prompts to draw from: each training step (and micro-batch) draws one uniformly at random, "
        "seeded by `training.seed`; `texkit generate` and the before/after outputs use the first.",
    )
    file: str | None = Field(
        None,
        description="Text file with one prompt per line (relative to the working directory; blank lines skipped), "
        "appended to `text`; not set: only `text`.",
    )
    prefix: str = Field(
        "best quality, high detail, ",
        description="Text put verbatim in front of every prompt (no separator is added: end it with `, `); empty for none.",
    )
    negative: str = Field(
        "low quality, blurry, shadows",
        description="Negative prompt of classifier-free guidance, the same for every view; empty for none.",
    )
    view_suffix: bool = Field(
        True,
        description="Append `, <view> view` to each painted view's prompt, `<view>` being `front`, `side`, `back`, "
        "`top` or `bottom` from the camera's angles (the method's view-dependent prompts).",
    )

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

    name: str = Field(
        description="Registered name of the component (`texkit plugins` lists the installed generators and renderers)."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments of the component's factory (listed per installed component below); "
        "empty: the factory's defaults.",
    )


class CameraPath(_Strict):
    """An explicit camera path (degrees)."""

    elevation: list[float] = Field(
        description="Elevation of each view in degrees, one per view in order; negative puts the camera above the object."
    )
    azimuth: list[float] = Field(
        description="Azimuth of each view in degrees (as many as `elevation`); 0 faces the object's front (+z), "
        "positive turns towards +x."
    )

    @pydantic.model_validator(mode="after")
    def _same_length(self) -> "CameraPath":
        if len(self.elevation) != len(self.azimuth) or not self.elevation:
            raise ValueError("elevation and azimuth need the same, non-zero number of entries")
        return self


def camera_angles(path: str | CameraPath) -> tuple[list[float], list[float]]:
    """(elevations, azimuths) in degrees of a camera preset name or an explicit `CameraPath`."""
    if isinstance(path, str):
        elev, azim = CAMERA_PRESETS[path]
        return list(elev), list(azim)
    return list(path.elevation), list(path.azimuth)


class CameraConfig(_Strict):
    """Painting and reward camera paths, by preset name or explicit lists."""

    paint: Union[str, CameraPath] = Field(
        "front_short",
        description="Cameras of the view loop, painted in order: a preset name (`front_short`, `tilted_short`, "
        "`ring11`, `front_long`) or a table `{elevation = [...], azimuth = [...]}` in degrees.",
    )
    reward: Union[str, CameraPath] = Field(
        "tilted_short",
        description="Cameras of the reward views (the renders that rewards such as `aesthetic` score): a preset "
        "name or a table `{elevation = [...], azimuth = [...]}` in degrees.",
    )
    radius: float = Field(
        2.5,
        gt=0,
        description="Distance of every camera from the origin, in units of the normalised mesh (the mesh fits in "
        "the unit sphere with `mesh.normalize = \"unit_sphere\"`).",
    )
    fov: float = Field(50.0, gt=0, lt=180, description="Vertical field of view of every camera, in degrees.")
    learn: list[Literal["paint", "reward"]] = Field(
        default_factory=list,
        description="Camera paths whose angles are trained (learning rate `training.camera_lr`): any of `paint`, "
        "`reward`; empty: the cameras stay fixed.",
    )
    learn_angles: list[Literal["elevation", "azimuth"]] = Field(
        default_factory=lambda: ["elevation", "azimuth"],
        description="Which angles of the paths in `learn` are trained: `elevation`, `azimuth` or both; the others stay fixed.",
    )

    @pydantic.field_validator("paint", "reward")
    @classmethod
    def _known_preset(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in CAMERA_PRESETS:
            raise ValueError(f"unknown camera preset '{value}' (known: {', '.join(sorted(CAMERA_PRESETS))})")
        return value


class TextureConfig(_Strict):
    """Texture and render resolutions, back-projection settings and the texture to start from."""

    size: int = Field(512, ge=16, description="Side of the square UV texture in texels (`size` x `size`).")
    render_size: int = Field(
        256,
        ge=16,
        description="Side in pixels of the reward renders and of the render grids in the outputs (the view loop "
        "paints at the generator's own resolution).",
    )
    cos_thresh: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Back-project only pixels whose view cosine (surface normal · direction to the camera) is above "
        "this; 0 keeps every front-facing pixel, larger values keep only frontal ones.",
    )
    trimap_sharpness: float = Field(
        100.0,
        gt=0,
        description="Steepness k of the soft trimap's sigmoids that split each view into pixels to generate, refine "
        "and keep (the method's k = 100; larger is closer to hard masks).",
    )
    background: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Grey level (0 black, 1 white) behind the object and on not yet painted texels in the renders "
        "the generator paints over.",
    )
    init: str | None = Field(
        None,
        min_length=1,
        description="Start the view loop from an existing texture instead of an empty one: a PNG aligned with the "
        "mesh's UVs (relative to the working directory; resized to `size` with a notice) or `mesh` for the mesh's own "
        "texture (a textured GLB or OBJ+MTL). Painted texels: alpha >= 0.5 when the PNG has an alpha channel, else "
        "every texel inside the mesh's UV islands. Needs `mode`; not set: paint from scratch.",
    )
    mode: Literal["inpaint", "refine"] | None = Field(
        None,
        description="How `init` is used: `inpaint` keeps every painted texel unchanged and generates only the "
        "unpainted ones (and those of `mask`); `refine` repaints everything SDEdit-style, each view starting from "
        "its render noised to `strength`, so the result stays close to the input at low strength.",
    )
    strength: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Refinement strength of `mode = \"refine\"`, the fraction of the denoising schedule each view "
        "runs from its noised render: 0 returns the input (up to the back-projection's round trip), 1 paints from "
        "scratch as without `init`; ignored by `inpaint`.",
    )
    mask: str | None = Field(
        None,
        min_length=1,
        description="PNG of the texels to repaint although `init` painted them (white = repaint, grey level >= 0.5 "
        "after resizing to `size`; relative to the working directory); they are generated like unpainted texels. "
        "Not set: only the unpainted texels.",
    )


class RewardConfig(_Strict):
    """One reward of the weighted sum; every key besides ``weight`` is a parameter of the reward."""

    model_config = ConfigDict(extra="allow")
    weight: float = Field(
        1.0,
        description="Factor of this reward in the weighted sum that training maximises (negative: penalise it; 0: "
        "only log it).",
    )

    def params(self) -> dict[str, Any]:
        """The reward's own parameters (extra keys)."""
        return dict(self.model_extra or {})


class TrainingConfig(_Strict):
    """Fine-tuning settings (the method's reference values are the defaults where they apply)."""

    steps: int = Field(
        100,
        ge=0,
        description="Optimiser steps to train; a resumed run (`texkit train --resume`) continues up to this count.",
    )
    lr: float = Field(
        5e-5,
        gt=0,
        description="AdamW learning rate of the LoRA weights; `texkit train --resume` with another value trains the "
        "remaining steps with it (recorded in the run's `config.json` history).",
    )
    camera_lr: float = Field(
        5.0,
        gt=0,
        description="AdamW learning rate of the learnable camera angles (`cameras.learn`); the angles are in degrees, "
        "so an Adam step moves an angle by about this many degrees.",
    )
    betas: tuple[float, float] = Field(
        (0.9, 0.999), description="AdamW moment decay rates (beta1, beta2), for the LoRA weights and the camera angles."
    )
    weight_decay: float = Field(
        1e-4, ge=0, description="AdamW decoupled weight decay, applied to the LoRA weights and the camera angles."
    )
    eps: float = Field(1e-8, gt=0, description="AdamW epsilon added to the denominator for numerical stability.")
    grad_clip: float = Field(
        0.0,
        ge=0,
        description="Clip the global gradient norm of the LoRA weights and camera angles to this value; 0 disables "
        "clipping (the norm is logged as `grad_norm` either way).",
    )
    truncation: Union[int, Literal["all"]] = Field(
        "all",
        description="Backpropagate through only the last N DDIM steps of each painted view (earlier steps run "
        "without a graph), or `all`; sets the generator's run-owned `truncation` option.",
    )
    unet_checkpointing: bool = Field(
        True,
        description="Gradient checkpointing inside the generator's networks (recompute activations in the backward "
        "pass); sets the generator's run-owned `checkpointing` option.",
    )
    view_checkpointing: bool = Field(
        True,
        description="Make each painted view a gradient checkpoint, so memory does not grow with the number of views "
        "(costs one more forward pass per view).",
    )
    mixed_precision: Literal["no", "fp32", "fp16", "bf16"] = Field(
        "no",
        description="`fp32`, `fp16` or `bf16`: the dtype of the generator's frozen weights (its run-owned `dtype` option; "
        "LoRA stays fp32), `fp16` also scaling the loss against underflow; `no`: the generator's own dtype default.",
    )
    seed: int = Field(
        0, description="Run seed: the prompt and the per-view noise seeds of every step are a function of it and the step."
    )
    resample: bool = Field(True, description="Draw a fresh prompt and noise seed every step (the method); false repeats step 0's draw.")
    batch_size: int = Field(
        1,
        ge=1,
        description="Samples (prompt + seeds each) painted together in one batch: the renderer, the generator (2 x "
        "batch_size latents per call with CFG), the back-projection and the rewards all take them at once; the loss is "
        "their mean. Several samples cost little more than one on a GPU (docs/performance.md, choosing the batch size).",
    )
    grad_accum: int = Field(
        1,
        ge=1,
        description="Batches per optimiser step and rank; effective batch = world size x grad_accum x batch_size.",
    )
    checkpoint_every: int = Field(
        10,
        ge=1,
        description="Save a checkpoint (LoRA adapter, optimiser state, camera angles) under `<output.dir>/checkpoints` "
        "every N steps and after the last step.",
    )
    log_every: int = Field(
        5,
        ge=1,
        description="When stderr is not a terminal (CI, log files), print a progress line every N steps and after the "
        "last (a terminal shows a progress bar instead); `metrics.jsonl` gets every step either way.",
    )
    before_after: bool = Field(
        True,
        description="Paint the texture with a fixed seed before training into `<output.dir>/before`, for the "
        "report's before/after comparison (`after/` is written either way).",
    )


class OutputConfig(_Strict):
    """Where results go."""

    dir: str = Field(
        "runs/texkit",
        description="Run folder (texture, mesh, view grid, metrics, checkpoints, report), relative to the working "
        "directory; `texkit generate --out` overrides it.",
    )
    grid_views: int = Field(
        8,
        ge=1,
        description="Number of views, evenly spaced in azimuth at elevation -20°, in the view grid `views.png` of "
        "`texkit generate` and of the before/after outputs of `texkit train`.",
    )
    latest_every: int = Field(
        0,
        ge=0,
        description="Every N training steps, write the first texture painted in that step into `<output.dir>/latest/` "
        "(texture.png, views.png, mesh.glb, reward pictures and step.json; replaced as a whole), to watch a run while it "
        "trains (`texkit studio` shows it); 0: never.",
    )


class RunConfig(_Strict):
    """A whole run: ``texkit generate`` and ``texkit train`` read it."""

    mesh: MeshConfig = Field(default_factory=MeshConfig, description="The mesh to texture.")
    prompts: PromptConfig = Field(default_factory=PromptConfig, description="The prompts and how they are written.")
    generator: ComponentConfig = Field(
        default_factory=lambda: ComponentConfig(name=DEFAULT_GENERATOR),
        description="The generator that paints each view, by registered name, with its factory options.",
    )
    renderer: ComponentConfig = Field(
        default_factory=lambda: ComponentConfig(name=DEFAULT_RENDERER),
        description="The differentiable renderer, by registered name, with its factory options.",
    )
    cameras: CameraConfig = Field(default_factory=CameraConfig, description="Painting and reward cameras.")
    texture: TextureConfig = Field(default_factory=TextureConfig, description="Texture and render resolutions, back-projection.")
    rewards: dict[str, RewardConfig] = Field(
        default_factory=dict,
        description="The rewards of the weighted sum, one table per registered reward name (`texkit rewards` lists them).",
    )
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Fine-tuning settings.")
    output: OutputConfig = Field(default_factory=OutputConfig, description="The run folder and the rendered outputs.")
    device: str = Field(
        "auto",
        description="`auto` (cuda when available, else cpu), `cpu`, `cuda` or `cuda:<index>`; under torchrun, "
        "`auto` and `cuda` give each rank the GPU of its local rank.",
    )


def _closest(key: str, model: type[BaseModel] | None) -> str:
    if model is None:
        return ""
    match = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else f"; valid keys: {', '.join(model.model_fields)}"


def _as_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds: itself, or the item of ``list[M]`` / ``M | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _as_model(arg)
        if found is not None:
            return found
    return None


def _model_at(loc: tuple[Any, ...], root: type[BaseModel] = RunConfig) -> type[BaseModel] | None:
    """The pydantic model that holds the field at ``loc`` (to suggest valid keys); list indices are skipped."""
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        model = _as_model(model.model_fields[part].annotation)
    return model


def validate_model(model: type[_M], data: dict[str, Any], what: str = "config", fix: str = "in the config file or with --set") -> _M:
    """Validate ``data`` against a settings model (`RunConfig`, an eval spec, ...).

    Args:
        model: the pydantic model (``extra="forbid"``).
        data: the parsed TOML/JSON.
        what: what the messages call it (``"config"``: "unknown config key 'a.b'").
        fix: where the user fixes it ("in the config file or with --set").

    Raises:
        ConfigError: one line naming every offending key (and the closest valid key for a typo).
    """
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        problems = _describe_all(err.errors(), model, what)
        if len(problems) == 1:
            raise ConfigError(f"{problems[0]}; fix it {fix}") from None
        listed = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
        raise ConfigError(f"{len(problems)} {what} errors: {listed}; fix them {fix}") from None


def parse_config(data: dict[str, Any]) -> RunConfig:
    """Validate a config dict.

    Raises:
        ConfigError: one line naming every offending key (and the closest valid key for a typo).
    """
    return validate_model(RunConfig, data)


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's union-member tags (``str``, ``CameraPath``, ``function-after[...]``) from a location."""
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in _UNION_TAGS)))


_UNION_TAGS = {"str", "int", "float", "bool", "list", "dict", "CameraPath", "constrained-int", "literal['all']"}


def _describe_all(errors: list[Any], root: type[BaseModel] = RunConfig, what: str = "config") -> list[str]:
    """One line per offending key; for a union field only the most specific member's error is kept."""
    by_key: dict[tuple[Any, ...], list[Any]] = {}
    for error in errors:
        by_key.setdefault(_clean_loc(tuple(error.get("loc", ()))), []).append(error)
    lines = []
    for loc, group in by_key.items():
        specific = [e for e in group if not str(e["type"]).endswith("_type")] or group
        lines.append(_describe(loc, specific[-1], root, what))
    return lines


def _describe(loc: tuple[Any, ...], error: Any, root: type[BaseModel] = RunConfig, what: str = "config") -> str:
    """One pydantic error as ``config key 'a.b': what is wrong`` (with a suggestion for unknown keys)."""
    where = _printable(".".join(str(p) for p in loc)) or "(top level)"
    if error["type"] == "extra_forbidden" and loc:
        return f"unknown {what} key '{where}'{_closest(str(loc[-1]), _model_at(loc, root))}"
    if error["type"] == "finite_number":
        value = error.get("input")
        problem = "is not a number" if isinstance(value, float) and value != value else "is not a finite number"
        return f"{what} key '{where}': {value} {problem} (a finite number is needed)"
    message = " ".join(str(error["msg"]).split()).removeprefix("Value error, ")
    return f"{what} key '{where}': {message}"


def _printable(text: str) -> str:
    """``text`` with control characters (newlines, tabs, ...) written as escapes, so messages stay on one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``["training.lr=1e-4", ...]`` to a nested dict (values parsed as TOML, else strings)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set '{_printable(item)}' must look like section.key=value")
        dotted, raw = item.split("=", 1)
        parts = [p for p in dotted.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set '{_printable(item)}' names no key; write section.key=value, e.g. --set training.lr=1e-4")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set '{_printable(item)}': '{_printable(part)}' is not a section")
        node[parts[-1]] = _parse_value(raw.strip())
    return data


def read_toml(path: str | Path, what: str = "config", hint: str = "pass the path of a TOML run config") -> dict[str, Any]:
    """The table of a TOML file, with one-line errors (missing, a folder, not UTF-8, unreadable, bad TOML).

    Args:
        path: the file.
        what: what the messages call it (``"config"``, ``"eval spec"``).
        hint: what to pass instead, for the missing-file message.

    Raises:
        ConfigError: the file cannot be read as TOML.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} file not found: {path}; {hint}")
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; {hint} file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {err.start}); save it as UTF-8 (TOML requires it)") from None
    except OSError as err:
        raise ConfigError(f"cannot read {what} {path}: {err.strerror or err}; check its permissions") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {' '.join(str(err).split())}; fix that line") from None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a TOML config (or start from defaults when ``path`` is None) and apply overrides."""
    data: dict[str, Any] = read_toml(path) if path is not None else {}
    return parse_config(apply_overrides(data, overrides or []))


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _toml_value(value: Any) -> str:
    """One TOML value (JSON's string escapes and arrays are valid TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None) + "}"
    raise TypeError(f"no TOML form for {value!r}")


def to_toml(config: BaseModel) -> str:
    """The config (a `RunConfig`, or any texkit settings model such as an eval spec) as TOML that reads
    back to the same model (None values are left out; see `toml_text`)."""
    return toml_text(config.model_dump(mode="json"))


def toml_text(data: dict[str, Any]) -> str:
    """A JSON-like dict as TOML: top-level scalars and lists first (a list of tables as an array of inline
    tables), then one ``[table]`` per section (nested tables as ``[a.b]``); None values are left out."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((_toml_key(key), value))
        elif value is not None:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    while tables:
        name, table = tables.pop(0)
        scalars = [(k, v) for k, v in table.items() if not isinstance(v, dict) and v is not None]
        nested = [(f"{name}.{_toml_key(k)}", v) for k, v in table.items() if isinstance(v, dict)]
        lines += ["", f"[{name}]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars]
        tables = nested + tables
    return "\n".join(lines).lstrip("\n") + "\n"
