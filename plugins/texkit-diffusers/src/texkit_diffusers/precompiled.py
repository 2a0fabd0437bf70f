"""Whole compiled training calls on disk, Dynamo's trace included (torch's ``aot_compile``).

The compile cache (`texkit.compile_cache`) lets a second run load AOTAutograd's and Inductor's output,
but Dynamo still traces the UNet and ControlNet again in every process: 11.5 s of the 15.4 s a second
``texkit train`` spent before its first step on an H100 (docs/performance.md, calls 6 and 8), which
kept that first step 2.7x a steady step. ``torch.compile(fn, fullgraph=True).aot_compile(example)``
(experimental, torch >= 2.13 here) compiles one call ahead of time into an artifact that
``torch.compiler.load_compiled_function`` loads in another process without tracing: on the CPU the
full-size SD 1.5 UNet + ControlNet training call loads in 4.7 s where tracing alone took 10.7 s
(benchmarks/gpu/check_aot_compile.py).

Two things make the artifact differ from a ``torch.compile`` entry, and this module answers both:

* **Fewer guards.** Dynamo's guards on object identities (the attention processors' code objects,
  module classes, closures) cannot be saved, so the artifact keeps only the portable ones
  (``torch.compiler.keep_portable_guards_unsafe``: the metadata of every tensor it reads, and global
  state such as grad mode). Everything else the trace depends on goes into the artifact's name
  (`call_fingerprint`): torch, diffusers and texkit-diffusers versions, the GPU, the UNet and ControlNet
  configs, the adapter's config, the input shapes, dtypes and strides, the ControlNet scale (a Python
  float, baked into the graph), the compile options, and the Python-level state the trace branched
  on (`trace_state`: train/eval, gradient checkpointing, which adapters are on and merged). A call
  whose state differs gets its own artifact, never a stale one.
* **Training calls only.** No-grad calls keep ``torch.compile``'s own guarded path.

Artifacts live in ``<compile cache>/precompiled/<fingerprint>.aot`` (torch writes each one to a
temporary file and renames it). A failure to compile, save or load one is recorded once and the call
runs through ``torch.compile`` as before; a guard that fails at a call (a tensor's shape or dtype
changed) sends that call the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["PRECOMPILED_FOLDER", "PrecompiledCalls", "aot_compile_available", "call_fingerprint", "denoise", "describe_error", "trace_state"]

log = logging.getLogger("texkit.diffusers")

PRECOMPILED_FOLDER = "precompiled"
_GUARD_FAILED = "GuardManager check failed"


def denoise(unet: Any, controlnet: Any, model_input: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, condition: torch.Tensor, scale: float) -> torch.Tensor:
    """ControlNet residuals, then the UNet's noise prediction ``(2B or B, 4, h, w)``: one denoising call.

    A module-level function of the models (not a method of `DenoiserCall`), so that a saved artifact
    refers to nothing but the two models, passed again at every call.
    """
    down, mid = controlnet(model_input, t, encoder_hidden_states=embeds, controlnet_cond=condition, conditioning_scale=scale, guess_mode=False, return_dict=False)
    return unet(model_input, t, encoder_hidden_states=embeds, down_block_additional_residuals=down, mid_block_additional_residual=mid, return_dict=False)[0]


def aot_compile_available() -> bool:
    """Whether this torch can compile a call ahead of time and load it in another process."""
    return callable(getattr(torch.compile(_identity), "aot_compile", None)) and callable(getattr(torch.compiler, "load_compiled_function", None)) and callable(
        getattr(torch.compiler, "keep_portable_guards_unsafe", None)
    )


def _identity(x: Any) -> Any:
    return x


_CONFIG_KEYS_LEFT_OUT = ("_name_or_path", "_use_default_values")  # where it was loaded from; which values were defaults


def _describe_model(model: Any) -> Any:
    """A model's config (diffusers models; without where it came from) or, for a plain function, its qualified name."""
    config = getattr(model, "config", None)
    if config is not None:
        return {k: v for k, v in dict(config).items() if k not in _CONFIG_KEYS_LEFT_OUT}
    return f"{getattr(model, '__module__', '')}.{getattr(model, '__qualname__', type(model).__qualname__)}"


def _canonical(value: Any) -> Any:
    """``value`` with every set sorted, so that its JSON text is the same in every process.

    A set's iteration order depends on the process's string-hash seed (peft keeps ``target_modules`` as
    a set): without sorting, the same setup got another fingerprint in the next process and compiled
    again (found on the CPU, benchmarks/precompile_first_call.py).
    """
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def trace_state(*models: Any) -> tuple[Any, ...]:
    """The Python-level state of ``models`` a trace branches on and a saved artifact cannot guard.

    Per model: training mode and gradient checkpointing; per LoRA layer (peft's, with ``lora_A``):
    adapters switched off, and whether a merged weight is set (`texkit_diffusers.lora.MergedLoRA`).
    About 30 us for the SD 1.5 UNet's 128 adapted layers.
    """
    state: list[Any] = []
    for model in models:
        if not isinstance(model, torch.nn.Module):
            state.append(None)
            continue
        layers = getattr(model, "_texkit_lora_layers", None)
        if layers is None:  # found once per model
            layers = [m for m in model.modules() if hasattr(m, "lora_A")]
            model._texkit_lora_layers = layers
        lora = tuple((bool(getattr(m, "disable_adapters", False)), getattr(m, "_texkit_merged", None) is not None) for m in layers)
        state.append((model.training, bool(getattr(model, "is_gradient_checkpointing", False)), lora))
    return tuple(state)


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "none"


def call_fingerprint(unet: Any, controlnet: Any, args: tuple[torch.Tensor, ...], scale: float, options: dict[str, Any], state: tuple[Any, ...]) -> str:
    """A name (hex digest) for everything a saved training call depends on beyond its kept guards.

    Args:
        unet: the UNet (its config, or a stand-in function's name).
        controlnet: the ControlNet (likewise).
        args: ``(model_input, t, embeds, condition)``: shapes, dtypes, strides, devices, requires_grad.
        scale: the ControlNet conditioning scale (a constant in the graph).
        options: the ``torch.compile`` options (Inductor's).
        state: `trace_state` of the models.
    """
    device = args[0].device
    gpu = torch.cuda.get_device_name(device) + str(torch.cuda.get_device_capability(device)) if device.type == "cuda" else device.type
    parts = {
        "versions": [str(torch.__version__), _package_version("diffusers"), _package_version("peft"), _package_version("texkit-diffusers"), sys.version.split()[0]],
        "device": gpu,
        "models": [_describe_model(unet), _describe_model(controlnet)],
        "adapters": {name: config.to_dict() for name, config in getattr(unet, "peft_config", {}).items()},
        "inputs": [(tuple(a.shape), str(a.dtype), tuple(a.stride()), a.requires_grad) for a in args],
        "scale": float(scale),
        "options": {k: v for k, v in sorted(options.items()) if k != "guard_filter_fn"},
        "state": state,
    }
    text = json.dumps(_canonical(parts), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class PrecompiledCalls:
    """Training calls compiled ahead of time, loaded from (or saved to) ``folder``; one per fingerprint.

    Args:
        folder: where the artifacts live (``<compile cache>/precompiled``).
        options: Inductor options of the compiled call (`texkit_diffusers.compiled.inductor_options`'s ``options``).

    Attributes:
        loaded, saved: artifacts loaded from and saved to ``folder`` in this process.
        failed: the reason the last compile, save or load failed ("" when none did); that call ran
            through ``torch.compile`` instead.
        last_event: what the latest new fingerprint did (``"loaded ... in 4.7 s"``, ``"compiled and saved"``), for the first-call note.
    """

    def __init__(self, folder: Path, options: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.options = dict(options or {})
        self.loaded = 0
        self.saved = 0
        self.failed = ""
        self.last_event = ""
        self._calls: dict[str, Callable[..., torch.Tensor] | None] = {}
        self._keys: dict[tuple[Any, ...], str] = {}

    def path(self, fingerprint: str) -> Path:
        """The artifact file of ``fingerprint``."""
        return self.folder / f"{fingerprint}.aot"

    def _fingerprint(self, unet: Any, controlnet: Any, args: tuple[torch.Tensor, ...], scale: float) -> str:
        state = trace_state(unet, controlnet)
        key = (tuple((tuple(a.shape), a.dtype, a.stride(), a.requires_grad, a.device) for a in args), float(scale), state)
        if key not in self._keys:
            self._keys[key] = call_fingerprint(unet, controlnet, args, scale, self.options, state)
        return self._keys[key]

    def _load_or_compile(self, fingerprint: str, unet: Any, controlnet: Any, args: tuple[torch.Tensor, ...], scale: float) -> Callable[..., torch.Tensor] | None:
        path = self.path(fingerprint)
        start = time.perf_counter()
        if path.is_file():
            try:
                with path.open("rb") as f:
                    loaded = torch.compiler.load_compiled_function(f)
            except Exception as err:  # an artifact of another torch, or a damaged file: compile it again below
                self.failed = f"loading {path.name} failed ({describe_error(err)}); compiled again"
                log.warning("texkit-diffusers: %s", self.failed)
            else:
                self.loaded += 1
                self.last_event = f"whole call loaded from {path} in {time.perf_counter() - start:.1f} s (no tracing)"
                return loaded
        try:
            compiled = torch.compile(denoise, fullgraph=True, dynamic=False, options={**self.options, "guard_filter_fn": torch.compiler.keep_portable_guards_unsafe})
            fn = compiled.aot_compile(((unet, controlnet, *args, scale), {}))
        except Exception as err:  # e.g. a graph break (aot_compile needs one whole graph)
            self.failed = f"compiling ahead of time failed ({describe_error(err)}); torch.compile instead"
            log.warning("texkit-diffusers: %s", self.failed)
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fn.save_compiled_function(str(path))  # torch writes a temporary file and renames it
        except Exception as err:  # the compiled call still serves this run
            self.failed = f"saving {path.name} failed ({describe_error(err)}); the next run compiles again"
            log.warning("texkit-diffusers: %s", self.failed)
            self.last_event = f"whole call compiled ahead of time in {time.perf_counter() - start:.1f} s, not saved"
        else:
            self.saved += 1
            self.last_event = f"whole call compiled ahead of time in {time.perf_counter() - start:.1f} s, saved to {path}"
        return fn

    def __call__(self, unet: Any, controlnet: Any, model_input: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, condition: torch.Tensor, scale: float) -> torch.Tensor | None:
        """The call's output through its precompiled function, or None when none can serve it (the caller compiles as usual)."""
        args = (model_input, t, embeds, condition)
        fingerprint = self._fingerprint(unet, controlnet, args, scale)
        if fingerprint not in self._calls:
            self.last_event = ""
            self._calls[fingerprint] = self._load_or_compile(fingerprint, unet, controlnet, args, scale)
        fn = self._calls[fingerprint]
        if fn is None:
            return None
        try:
            return fn(unet, controlnet, *args, scale)
        except RuntimeError as err:
            if _GUARD_FAILED not in str(err):
                raise
            return None  # a kept guard (tensor metadata, grad mode) does not hold: torch.compile's path serves it

    def describe(self) -> str:
        """``"precompiled training calls: 1 loaded, 0 saved"`` (+ the last failure), for the run record."""
        text = f"precompiled training calls: {self.loaded} loaded, {self.saved} saved in {self.folder}"
        return text + (f"; {self.failed}" if self.failed else "")


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0][:200]


def describe_error(err: BaseException) -> str:
    """``"Type: first line"`` of a compiler error (the first 200 characters); torch's ``BackendCompilerFailed``
    names the backend's own error, which it wraps, e.g. ``"BackendCompilerFailed: RuntimeError: ..."``."""
    inner = getattr(err, "inner_exception", None)
    if isinstance(inner, BaseException):
        return f"{type(err).__name__}: {type(inner).__name__}: {_first_line(inner)}"
    return f"{type(err).__name__}: {_first_line(err)}"
