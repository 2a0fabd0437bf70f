"""Per-shape choice of the fastest exact attention kernel on this GPU (the ``attention = "auto"`` default on CUDA).

The first time an attention shape ``(batch, heads, query length, key length, head dim, dtype)``
runs, `time_attention_kernels` times each candidate on random inputs of that shape (CUDA events
around 4 calls in a row, the candidates taking turns, median of 5 rounds after 2 warm-ups),
forward alone and forward + backward; `AttentionTable` keeps the
timings and `TunedAttnProcessor` runs the fastest: the forward winner for calls without gradients,
the forward + backward winner for training calls. Candidates: PyTorch SDPA's FlashAttention-2,
cuDNN and memory-efficient kernels (`SDPA_KERNELS`), and xformers when its kernels load. All are
exact attention; they differ by shape (head dim 40, 80 and 160 and sequence lengths 64 to 4096 in
SD 1.5 at 512 px, head dim 512 in the VAE) and GPU.

Under ``torch.compile`` the choice is made while Dynamo traces: `choose_kernel` is marked
``torch._dynamo.assume_constant_result``, so Dynamo calls it for real (it times the kernels then,
outside the graph, on real tensors) and bakes its answer into the graph as a constant, with no
guard on the table: shapes measured later never make a compiled graph recompile. The traced graph
holds the chosen kernel (``torch.nn.attention.sdpa_kernel``, which Dynamo traces), also inside
checkpointed blocks (tests/test_attention_tuning.py compiles one with ``fullgraph=True``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch._dynamo

__all__ = ["SDPA_KERNELS", "AttentionKey", "AttentionTable", "TunedAttnProcessor", "choose_kernel", "time_attention_kernels", "attention_table", "default_table_path"]

log = logging.getLogger("texkit.diffusers")

#: PyTorch SDPA kernels a tuned shape chooses from (all exact); "math" is the slow reference, never a candidate.
SDPA_KERNELS = ("flash", "cudnn", "efficient")
_SDPA_BACKENDS = {
    "flash": "FLASH_ATTENTION",
    "cudnn": "CUDNN_ATTENTION",
    "efficient": "EFFICIENT_ATTENTION",
    "math": "MATH",
}


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


TORCH_DEFAULT = "torch_default"
"""PyTorch's own SDPA choice (no ``sdpa_kernel`` context): timed beside the forced kernels and chosen when
none of them is faster, so a tuned shape never runs slower than ``attention = "sdpa"`` as far as the
timing can tell (on an H100 it won several shapes, benchmarks/results/h100_2026-12-07_issue29/call7)."""

AttentionKey = tuple[int, int, int, int, int, str]
"""``(batch, heads, query length, key length, head dim, dtype)`` of one attention call."""


def _sdpa_backend(name: str) -> Any:
    from torch.nn.attention import SDPBackend

    return getattr(SDPBackend, _SDPA_BACKENDS[name])


def _xformers_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """xformers on (B, H, S, D) inputs (it takes (B, S, H, D))."""
    import xformers.ops as xops

    return xops.memory_efficient_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)


def _kernel_context(name: str) -> Any:
    """The context that makes SDPA run kernel ``name`` (a no-op for xformers and torch's own choice)."""
    if name in ("xformers", TORCH_DEFAULT):
        return contextlib.nullcontext()
    from torch.nn.attention import sdpa_kernel

    return sdpa_kernel(_sdpa_backend(name))


def _attention(name: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """One attention call with kernel ``name`` (inside `_kernel_context`)."""
    if name == "xformers":
        return _xformers_attention(q, k, v)
    return torch.nn.functional.scaled_dot_product_attention(q, k, v)


def _block_ms(fn: Any, calls: int, device: torch.device) -> float:
    """Milliseconds per call of ``fn()`` run ``calls`` times back to back (CUDA events on a GPU)."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / calls
    began = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - began) * 1e3 / calls


def time_attention_kernels(key: AttentionKey, device: torch.device, candidates: tuple[str, ...], repeats: int = 5) -> dict[str, dict[str, float]]:
    """Time each candidate kernel on random inputs of one attention shape.

    Inputs are laid out as the diffusers processors make them: ``(B, S, H, D)`` projections viewed as
    ``(B, H, S, D)``. A candidate that cannot run the shape (e.g. FlashAttention with a head dim
    over 256) is left out. Each measurement runs `CALLS_PER_TIMING` calls back to back inside one
    kernel-selection context (entering it costs host time that a compiled graph never pays, and that
    would otherwise count against every forced kernel but not torch's own choice), and the
    candidates take turns, one measurement each per round, so a GPU warming up or a neighbour's load
    falls on all of them alike.

    Args:
        key: ``(batch, heads, query length, key length, head dim, dtype name)``.
        device: where to time (CUDA events on a GPU, the wall clock on the CPU).
        candidates: kernel names (`SDPA_KERNELS`, ``"math"`` and ``"xformers"``).
        repeats: rounds (the median of the rounds is kept).

    Returns:
        ``{kernel: {"forward_ms": .., "train_ms": ..}}`` per call (train = forward + backward to q, k,
        v), plus `TORCH_DEFAULT`: the same call with PyTorch's own kernel choice (what
        ``attention = "sdpa"`` runs). A kernel that cannot run the shape gets ``{"error": <first
        line>}`` instead (never chosen).
    """
    return _run_apart(lambda: _time_kernels(key, device, candidates, repeats))


CALLS_PER_TIMING = 4
"""Attention calls per timed block in `time_attention_kernels`."""

TIMING_METHOD = 2
"""Version of the way `time_attention_kernels` times; a stored table of another version is timed again
(version 1 timed one call per kernel-context entry, which favoured torch's own choice)."""


def _run_apart(fn: Any) -> Any:
    """``fn()`` in a fresh thread, and its result (or its exception).

    What a thread sets for itself does not reach another: the saved-tensor hooks of an activation
    checkpoint being run (the timing's own autograd graph would be counted into the checkpointed
    region's saved tensors, and its recomputation, which times nothing, would then disagree), a
    dispatch mode (a FLOP counter, Dynamo's fake tensors) or the grad mode.
    """
    result: list[Any] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as err:  # handed to the caller's thread
            error.append(err)

    thread = threading.Thread(target=target, name="texkit-attention-timing")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _time_kernels(key: AttentionKey, device: torch.device, candidates: tuple[str, ...], repeats: int) -> dict[str, dict[str, float]]:
    """`time_attention_kernels` proper (run in its own thread)."""
    batch, heads, q_len, kv_len, head_dim, dtype_name = key
    dtype = getattr(torch, dtype_name)
    gen = torch.Generator(device=device).manual_seed(0)

    def make(length: int) -> torch.Tensor:
        x = torch.randn(batch, length, heads, head_dim, device=device, dtype=dtype, generator=gen)
        return x.transpose(1, 2).requires_grad_(True)

    out: dict[str, dict[str, float]] = {}
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # a new thread starts on device 0
    with torch.enable_grad():
        q, k, v = make(q_len), make(kv_len), make(kv_len)
        grad_out = torch.randn(batch, heads, q_len, head_dim, device=device, dtype=dtype, generator=gen)

        def forward(name: str) -> Any:
            with torch.no_grad():
                return _attention(name, q, k, v)

        def train(name: str) -> Any:
            return torch.autograd.grad(_attention(name, q, k, v), (q, k, v), grad_out)

        runnable = []
        for name in (*candidates, TORCH_DEFAULT):
            try:
                with _kernel_context(name):
                    for _ in range(2):  # warm-up (and: can this kernel run the shape at all?)
                        forward(name)
                        train(name)
            except (RuntimeError, NotImplementedError, ValueError) as err:  # this kernel cannot run the shape
                log.debug("attention kernel %s cannot run %s: %s", name, key, _one_line(err)[:200])
                out[name] = {"error": _one_line(err)[:200]}  # kept for the record, never chosen
                continue
            runnable.append(name)
        times: dict[str, dict[str, list[float]]] = {name: {"forward_ms": [], "train_ms": []} for name in runnable}
        for _ in range(repeats):
            for name in runnable:
                with _kernel_context(name):
                    times[name]["forward_ms"].append(_block_ms(lambda name=name: forward(name), CALLS_PER_TIMING, device))
                    times[name]["train_ms"].append(_block_ms(lambda name=name: train(name), CALLS_PER_TIMING, device))
        for name in runnable:
            out[name] = {column: statistics.median(values) for column, values in times[name].items()}
    return {name: out[name] for name in (*candidates, TORCH_DEFAULT) if name in out}


@dataclass
class AttentionTable:
    """The kernel chosen for each attention shape seen on one device, and the timings behind it.

    With a ``path``, the timings are kept on disk (JSON, written atomically after each new shape) and
    read back by the next run on this machine: every run then makes the same choice for a shape, so
    its compiled graphs are the ones the compile cache holds (a choice re-timed with another
    winner would be a different graph, compiled again).

    Attributes:
        device: where the kernels run.
        candidates: kernel names tried (SDPA kernels, plus ``"xformers"`` when its kernels load).
        timings: ``{shape key: {kernel: {"forward_ms", "train_ms"}}}``.
        path: the JSON file of the timings (None: kept in memory only).
    """

    device: torch.device
    candidates: tuple[str, ...] = SDPA_KERNELS
    timings: dict[AttentionKey, dict[str, dict[str, float]]] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        self.table_id = len(_TABLES)  # what `choose_kernel` gets: Dynamo passes plain constants only
        _TABLES.append(self)
        if self.path is None or not self.path.exists():
            return
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
            if stored.get("timing") != TIMING_METHOD:
                return  # timed the way an older texkit did: timed again, and the file replaced
            for text, timed in stored.get("timings", {}).items():
                parts = text.split(",")
                key = (*(int(x) for x in parts[:5]), parts[5])
                self.timings[key] = {name: t for name, t in timed.items() if name in (*self.candidates, TORCH_DEFAULT)}  # type: ignore[index]
        except (OSError, ValueError, KeyError, IndexError, AttributeError):
            self.timings.clear()  # an unreadable file is timed again, never trusted

    def measure(self, key: AttentionKey) -> None:
        """Time the candidates on ``key`` once (and store the timings when the table has a path)."""
        if key in self.timings:
            return
        self.timings[key] = time_attention_kernels(key, self.device, self.candidates)
        if self.path is not None:
            stored = {",".join(map(str, k)): v for k, v in self.timings.items()}
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile("w", dir=self.path.parent, prefix=self.path.name, suffix=".tmp", delete=False) as tmp:
                    tmp.write(json.dumps({"device": str(self.device), "timing": TIMING_METHOD, "timings": stored}, indent=1))
                os.replace(tmp.name, self.path)  # atomic: a reader sees the old or the new file, never half of one
            except OSError as err:  # a read-only cache folder: keep the choices for this run only
                log.warning("texkit-diffusers: could not store attention timings in %s (%s)", self.path, err)
                self.path = None

    def choice(self, key: AttentionKey, training: bool) -> str | None:
        """The fastest kernel for ``key`` (forward + backward when ``training``), `TORCH_DEFAULT` when torch's
        own choice was fastest; None when not measured."""
        timed = self.timings.get(key)
        if not timed:
            return None
        column = "train_ms" if training else "forward_ms"
        names = [name for name, t in timed.items() if "train_ms" in t]
        return min(names, key=lambda name: timed[name][column]) if names else None

    def summary(self) -> str:
        """One line per the run record: ``BxHxSqxSkvxD: fwd flash, train cudnn (1.9x the slowest); ...``."""
        parts = []
        for key, timed in self.timings.items():
            if not timed:
                continue
            batch, heads, q_len, kv_len, head_dim, _ = key
            train, forward = self.choice(key, True), self.choice(key, False)
            if train is None or forward is None:
                continue
            default = timed.get(TORCH_DEFAULT, {})
            versus = f" ({default['train_ms'] / timed[train]['train_ms']:.2f}x torch's own choice)" if "train_ms" in default else ""
            parts.append(f"{batch}x{heads}x{q_len}x{kv_len}x{head_dim}: forward {forward}, training {train}{versus}")
        return "; ".join(parts) if parts else "no shape measured yet"

    def as_records(self) -> list[dict[str, Any]]:
        """The timings as JSON-ready rows (for benchmark records)."""
        rows = []
        for (batch, heads, q_len, kv_len, head_dim, dtype), timed in self.timings.items():
            rows.append(
                {
                    "batch": batch,
                    "heads": heads,
                    "query_length": q_len,
                    "key_length": kv_len,
                    "head_dim": head_dim,
                    "dtype": dtype,
                    "kernels": timed,
                    "forward_choice": self.choice((batch, heads, q_len, kv_len, head_dim, dtype), False),
                    "training_choice": self.choice((batch, heads, q_len, kv_len, head_dim, dtype), True),
                }
            )
        return rows


_TABLES: list[AttentionTable] = []
"""Every table made in this process, by ``table_id`` (a traced call names its table by number)."""


@torch._dynamo.assume_constant_result
def choose_kernel(table_id: int, shape: tuple[int, int, int, int, int], dtype: torch.dtype, training: bool) -> str:
    """The kernel table ``table_id`` chose for ``key`` (timing the candidates first if the shape is new); ``""`` for none.

    Marked ``torch._dynamo.assume_constant_result``: inside a compiled call Dynamo runs it at trace
    time and keeps the answer as a constant of the graph. Its arguments are plain constants (the
    table's number, not the table: Dynamo before torch 2.13 converts only constants).
    """
    key: AttentionKey = (*shape, str(dtype).removeprefix("torch."))
    table = _TABLES[table_id]
    table.measure(key)
    return table.choice(key, training) or ""


class TunedAttnProcessor:
    """A diffusers attention processor that runs each shape on the kernel `AttentionTable` chose.

    The attention itself is diffusers' own processor (``AttnProcessor2_0`` for SDPA kernels,
    ``XFormersAttnProcessor`` for xformers); this one only picks the kernel (`choose_kernel`): SDPA
    calls run inside ``torch.nn.attention.sdpa_kernel(<chosen>)``. A shape seen for the first time
    is timed there and then (eagerly, or while Dynamo traces a compiled call).

    Args:
        table: the shared choices of one generator (all its models).
    """

    def __init__(self, table: AttentionTable) -> None:
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.table = table
        self.sdpa = AttnProcessor2_0()
        self._xformers: Any = None

    def _shape(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None) -> tuple[int, int, int, int, int]:
        """``(batch, heads, query length, key length, head dim)`` of this call."""
        batch = hidden_states.shape[0]
        q_len = hidden_states.shape[2] * hidden_states.shape[3] if hidden_states.ndim == 4 else hidden_states.shape[1]
        kv_len = encoder_hidden_states.shape[1] if encoder_hidden_states is not None else q_len
        heads = attn.heads
        return (batch, heads, q_len, kv_len, attn.inner_dim // heads)

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None, *args: Any, **kwargs: Any) -> torch.Tensor:
        kernel = None
        if attention_mask is None:  # masked attention (not in SD's UNet) keeps torch's own choice
            shape = self._shape(attn, hidden_states, encoder_hidden_states)
            kernel = choose_kernel(self.table.table_id, shape, hidden_states.dtype, torch.is_grad_enabled()) or None
            if kernel == TORCH_DEFAULT:
                kernel = None
        if kernel == "xformers":
            if self._xformers is None:
                from diffusers.models.attention_processor import XFormersAttnProcessor

                self._xformers = XFormersAttnProcessor()
            return self._xformers(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        if kernel is None:
            return self.sdpa(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        with _kernel_context(kernel):
            return self.sdpa(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)


def default_table_path(device: torch.device) -> Path:
    """Where the attention timings of ``device`` live: the compile cache folder (`texkit.compile_cache`),
    one file per GPU model and torch version."""
    from texkit.compile_cache import active_cache_dir, compile_cache_dir

    try:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    except (RuntimeError, AssertionError):  # no CUDA in this build
        name = device.type
    slug = "".join(ch if ch.isalnum() else "-" for ch in f"{name}-torch{torch.__version__}")
    return (active_cache_dir() or compile_cache_dir()) / f"attention-{slug}.json"


def attention_table(model: Any) -> AttentionTable | None:
    """The `AttentionTable` behind ``model``'s tuned processors, or None when it is not tuned."""
    for processor in getattr(model, "attn_processors", {}).values():
        if isinstance(processor, TunedAttnProcessor):
            return processor.table
    return None
