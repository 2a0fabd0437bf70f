"""The UNet + ControlNet call of one denoising step, optionally compiled with ``torch.compile``.

At batch 1 a training step is launch-bound: most of its time is the host issuing thousands of
small kernels (docs/performance.md). Compiling the denoising call fuses them. Shapes are static
within a run (one batch size, one resolution), so it compiles once per shape and grad mode
(``dynamic=False``). Any compilation error falls back to eager, once, and the reason is kept for
the run record; compilation time is measured on its own (the first call of each compiled shape).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["DenoiserCall", "resolve_compile_mode"]

log = logging.getLogger("texkit.diffusers")


def resolve_compile_mode(mode: str, device: torch.device) -> tuple[bool, str]:
    """Whether to compile for ``mode`` (``auto``/``on``/``off``) on ``device``, and why."""
    if mode == "off":
        return False, "compile off (generator option compile='off')"
    if mode == "auto" and device.type != "cuda":
        return False, "compile off: 'auto' compiles on CUDA only (on the CPU compilation costs more than it saves)"
    return True, "torch.compile (static shapes)"


class DenoiserCall:
    """``(latents, t, embeds, condition) -> noise prediction`` for one denoising step.

    Args:
        unet: ``UNet2DConditionModel``.
        controlnet: ``ControlNetModel``.
        compile_mode: ``"auto"`` (compile on CUDA), ``"on"`` or ``"off"``.
        device: where the models run.
        before_compiled_call: run (eagerly) before each compiled call, for checks the compiled
            graph cannot make itself (the generator passes `MergedLoRA.drop_stale`).

    Attributes:
        compiled: whether calls currently go through the compiled function.
        reason: one line on why it is (or is no longer) compiled.
        compile_seconds: wall time of the first call of every compiled shape (compilation included).
    """

    def __init__(
        self,
        unet: Any,
        controlnet: Any,
        compile_mode: str = "auto",
        device: torch.device | str = "cpu",
        before_compiled_call: Callable[[], None] | None = None,
    ) -> None:
        self.unet = unet
        self.compile_mode = compile_mode
        self.before_compiled_call = before_compiled_call
        self.controlnet = controlnet
        self.compiled, self.reason = resolve_compile_mode(compile_mode, torch.device(device))
        self.compile_seconds = 0.0
        self._seen: set[tuple[Any, ...]] = set()
        self._compiled_fn: Callable[..., torch.Tensor] | None = None
        if self.compiled:
            try:
                self._compiled_fn = torch.compile(self.eager, dynamic=False)
            except Exception as err:  # torch.compile unavailable on this build/platform
                self._fall_back(err)

    def eager(self, model_input: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, condition: torch.Tensor, scale: float) -> torch.Tensor:
        """ControlNet residuals, then the UNet's noise prediction ``(2B or B, 4, h, w)``."""
        down, mid = self.controlnet(
            model_input, t, encoder_hidden_states=embeds, controlnet_cond=condition, conditioning_scale=scale, guess_mode=False, return_dict=False
        )
        return self.unet(model_input, t, encoder_hidden_states=embeds, down_block_additional_residuals=down, mid_block_additional_residual=mid, return_dict=False)[0]

    def _fall_back(self, err: BaseException) -> None:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        self.compiled = False
        self._compiled_fn = None
        self.reason = f"compile failed, running eager ({type(err).__name__}: {first})"
        log.warning("texkit-diffusers: %s", self.reason)

    def __call__(self, model_input: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, condition: torch.Tensor, scale: float) -> torch.Tensor:
        if self.compiled and self._compiled_fn is not None:
            key = (tuple(model_input.shape), model_input.dtype, torch.is_grad_enabled())
            if self.before_compiled_call is not None:
                self.before_compiled_call()
            start = time.perf_counter()
            try:
                out = self._compiled_fn(model_input, t, embeds, condition, scale)
            except Exception as err:  # a compiler error: this run continues eagerly
                self._fall_back(err)
            else:
                if key not in self._seen:
                    self._seen.add(key)
                    if model_input.is_cuda:
                        torch.cuda.synchronize(model_input.device)
                    self.compile_seconds += time.perf_counter() - start
                return out
        return self.eager(model_input, t, embeds, condition, scale)
