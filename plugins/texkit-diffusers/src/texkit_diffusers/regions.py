"""Nested compile regions: the repeated blocks of the UNet and ControlNet traced once per shape, not once per block.

``torch.compile`` of the denoising call makes Dynamo trace every block of the UNet and the
ControlNet in every process (the compile cache keeps AOTAutograd/Inductor's output, not Dynamo's
trace). Hierarchical compilation (``torch.compiler.nested_compile_region``) marks a function as a
region: Dynamo traces its first call into a subgraph (an ``invoke_subgraph`` higher-order op) and
stamps that subgraph out for every later call whose inputs match (same shapes, dtypes and
parameter shapes, checked by guards), the rest of the call still compiles as one graph.

Marking here is per instance, not per class: each chosen block's class is swapped for a subclass
made once per diffusers class (`region_class`) whose ``forward`` is the nested compile region of the
original ``forward``. The diffusers class itself and every unmarked instance stay untouched, the
marked blocks still pass ``isinstance`` checks and keep their state dict, and all blocks of a class
share one region function (Dynamo's reuse cache is keyed by its code). `unmark_nested_regions`
gives the blocks their class back. Outside ``torch.compile`` a region is a plain call, so eager
results do not change.

A marked block must go through its class's ``forward``: an instance attribute ``forward`` that is
a bound method of the region function (``types.MethodType``) traces, but with torch 2.13 (CPU) its
reused subgraphs ran with the first block's weights (a wrong output, no error;
benchmarks/results/trace_regions_cpu.jsonl), which is why the class is swapped instead.
"""

from __future__ import annotations

import types
from collections.abc import Iterable
import torch

__all__ = ["REGION_CLASSES", "mark_nested_regions", "region_class", "unmark_nested_regions"]

REGION_CLASSES: tuple[str, ...] = ("Transformer2DModel",)
"""The diffusers classes texkit marks by default (option ``compile_regions = "on"``)."""

_REGION_CLASSES: dict[type, type] = {}


def region_class(cls: type) -> type:
    """The subclass of ``cls`` whose ``forward`` is a nested compile region (made once per class)."""
    if cls not in _REGION_CLASSES:
        original = cls.forward  # a copy is marked: the region's attributes stay off diffusers' function
        copy = types.FunctionType(original.__code__, original.__globals__, original.__name__, original.__defaults__, original.__closure__)
        copy.__kwdefaults__, copy.__qualname__ = original.__kwdefaults__, original.__qualname__
        region = torch.compiler.nested_compile_region(copy)
        _REGION_CLASSES[cls] = type(cls.__name__, (cls,), {"forward": region, "__module__": cls.__module__, "_texkit_region_of": cls, "__doc__": cls.__doc__})
    return _REGION_CLASSES[cls]


def mark_nested_regions(models: Iterable[torch.nn.Module], class_names: Iterable[str] = REGION_CLASSES) -> dict[str, int]:
    """Make every submodule of ``models`` whose class is named in ``class_names`` a nested compile region.

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
                module.__class__ = region_class(cls)
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
