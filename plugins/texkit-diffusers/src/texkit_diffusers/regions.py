"""Nested compile regions: the repeated blocks of the UNet and ControlNet traced once per shape, not once per block.

``torch.compile`` of the denoising call makes Dynamo trace every block of the UNet and the
ControlNet in every process (the compile cache keeps AOTAutograd/Inductor's output, not Dynamo's
trace). Hierarchical compilation (``torch.compiler.nested_compile_region``) marks a function as a
region: Dynamo traces its first call into a subgraph (an ``invoke_subgraph`` higher-order op) and
stamps that subgraph out for every later call whose inputs match (same shapes, dtypes and
parameter shapes, checked by guards), the rest of the call still compiles as one graph.

Marking here is per instance, not per class: each chosen block's class is swapped for a subclass
made once per diffusers class and submodule structure (`region_class`) whose ``forward`` is the
nested compile region of the original ``forward``. The diffusers class itself and every unmarked
instance stay untouched, the marked blocks still pass ``isinstance`` checks and keep their state
dict, and all blocks of a class and structure share one region function (Dynamo's reuse cache is
keyed by its code). `unmark_nested_regions`
gives the blocks their class back. Outside ``torch.compile`` a region is a plain call, so eager
results do not change.

A marked block must go through its class's ``forward``: an instance attribute ``forward`` that is
a bound method of the region function (``types.MethodType``) traces, but with torch 2.13 (CPU) its
reused subgraphs ran with the first block's weights (a wrong output, no error;
benchmarks/results/trace_regions_cpu.jsonl), which is why the class is swapped instead.

Measured, not used by the generator: on the CPU (torch 2.13) marking `REGION_CLASSES` cut Dynamo's
trace of a full-size SD 1.5 training call by 19-27 % (``benchmarks/trace_regions.py``), and
Inductor's compiled regions gave wrong gradients in the tiny UNet + ControlNet (AOTAutograd alone
gives the eager ones; plugins/texkit-diffusers/tests/test_compile_regions.py).
"""

from __future__ import annotations

import types
from collections.abc import Iterable

import torch

__all__ = ["MAX_REUSE_ENTRIES", "REGION_CLASSES", "mark_nested_regions", "region_class", "unmark_nested_regions"]

REGION_CLASSES: tuple[str, ...] = ("Transformer2DModel", "ResnetBlock2D")
"""The classes `mark_nested_regions` marks by default: the shortest trace of benchmarks/trace_regions.py."""

MAX_REUSE_ENTRIES = 64
"""Distinct traced bodies allowed per region function (torch's default, 8, is fewer than the UNet's ResNet shapes)."""

_REGION_CLASSES: dict[tuple[type, ...], type] = {}


def structure(module: torch.nn.Module) -> tuple[tuple[str, type], ...]:
    """The names and classes of ``module``'s submodules: blocks share a region only where these are equal."""
    return tuple((name, type(sub)) for name, sub in module.named_modules())


def region_class(module: torch.nn.Module) -> type:
    """The subclass of ``module``'s class whose ``forward`` is a nested compile region, one per class and `structure`.

    Dynamo keys the traced bodies of a region by the code of its function and checks a reuse by
    guards on the block's inputs, parameters and attributes. Those guards do not tell a block
    with LoRA layers from one without (torch 2.13, CPU: reusing the body of a ControlNet
    ``Transformer2DModel`` for a UNet one with LoRA failed with ``KeyError: weight``; a silent
    wrong reuse is not excluded), so blocks whose submodule trees differ get different region
    functions: copies of the class's ``forward`` whose code is renamed (a distinct code object, the
    same bytecode). A UNet ResNet block and a ControlNet one of the same structure share theirs.
    """
    cls = type(module)
    key = (cls, structure(module))
    if key not in _REGION_CLASSES:
        index = sum(1 for other in _REGION_CLASSES if other[0] is cls)
        original = cls.forward  # a copy is marked: the region's attributes stay off diffusers' function
        code = original.__code__.replace(co_name=f"{original.__code__.co_name}_region{index}")
        copy = types.FunctionType(code, original.__globals__, original.__name__, original.__defaults__, original.__closure__)
        copy.__kwdefaults__, copy.__qualname__ = original.__kwdefaults__, original.__qualname__
        try:
            region = torch.compiler.nested_compile_region(copy, max_reuse_entries=MAX_REUSE_ENTRIES)
        except TypeError:  # a torch without the argument (its reuse is not capped)
            region = torch.compiler.nested_compile_region(copy)
        attributes = {"forward": region, "__module__": cls.__module__, "_texkit_region_of": cls, "__doc__": cls.__doc__}
        _REGION_CLASSES[key] = type(cls.__name__, (cls,), attributes)
    return _REGION_CLASSES[key]


def mark_nested_regions(models: Iterable[torch.nn.Module], class_names: Iterable[str] = REGION_CLASSES) -> dict[str, int]:
    """Make every submodule of ``models`` whose class is named in ``class_names`` a nested compile region.

    Blocks of the same class and `structure` share their region (one trace per input shape, in
    whichever model), others do not (`region_class`). Mark after the adapter is added: a LoRA
    layer added later changes a block's structure under its region.

    Args:
        models: e.g. the UNet and the ControlNet.
        class_names: class names (``"Transformer2DModel"``, ``"BasicTransformerBlock"``,
            ``"ResnetBlock2D"``, ...).

    Returns:
        How many modules of each class are marked (already marked ones included).
    """
    names = set(class_names)
    counts: dict[str, int] = {}
    for model in models:
        for module in model.modules():
            cls = type(module)
            if cls.__name__ not in names:
                continue
            if "_texkit_region_of" not in cls.__dict__:
                module.__class__ = region_class(module)
            counts[cls.__name__] = counts.get(cls.__name__, 0) + 1
    return counts


def unmark_nested_regions(models: Iterable[torch.nn.Module]) -> int:
    """Undo `mark_nested_regions` on every submodule of ``models``; returns how many were unmarked."""
    count = 0
    for model in models:
        for module in model.modules():
            original = type(module).__dict__.get("_texkit_region_of")
            if original is not None:
                module.__class__ = original
                count += 1
    return count
