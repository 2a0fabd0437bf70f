"""``texkit doctor``: check that this machine can run texkit, and say how to fix what cannot.

Each check returns a `Check` (name, ok, detail, fix). The checks are:

* ``torch``: the installed torch version and the CUDA version it was built for;
* ``cuda``: whether a CUDA GPU is visible (and, with one, the CUDA compiler and ninja that
  renderers such as ``nvdiffrast`` need to build their extensions);
* ``renderer <name>``: every registered renderer, built through the registry, rasterises one
  triangle at 32 x 32 px and must cover the pixels the triangle covers;
* ``plugin <name>``: one per plugin that failed to import;
* every check a plugin registers through ``texkit_register_checks`` (e.g. ``texkit-diffusers``
  reports which attention backend its generator would use here);
* ``gpu memory``: free memory on the current GPU against what one training step needs.

No check raises: a failing one comes back with ``ok=False`` and a one-line ``fix``.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from typing import Any

import torch

from texkit.errors import TexkitError
from texkit.types import EnvironmentCheck

__all__ = ["Check", "run_checks", "check_torch", "check_cuda", "check_renderers", "plugin_checks", "check_gpu_memory"]

MIN_TORCH = (2, 4)
"""Oldest torch texkit is tested with."""

MIN_FREE_GPU_GIB = 6.0
"""Free GPU memory one fine-tuning step needs: SD 1.5 UNet + ControlNet in fp16 with LoRA, batch 2
for classifier-free guidance and gradient checkpointing peaks at about 2.2 GiB for the UNet alone
(docs/performance.md); the ControlNet, VAE decoder, renderer and reward models add the rest."""

PROBE_RESOLUTION = 32
"""Image size of the one-triangle probe render, in pixels."""


Check = EnvironmentCheck
"""The outcome of one check (`texkit.types.EnvironmentCheck`)."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_torch() -> Check:
    """torch's version (at least `MIN_TORCH`) and the CUDA version it was built for."""
    cuda = torch.version.cuda or "none (CPU build)"
    detail = f"torch {torch.__version__}, built for CUDA {cuda}"
    if _version_tuple(torch.__version__) < MIN_TORCH:
        want = ".".join(map(str, MIN_TORCH))
        return Check("torch", False, detail, f"upgrade torch to {want} or newer: pip install -U torch")
    return Check("torch", True, detail)


def _nvcc_version(nvcc: str) -> str | None:
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for token in out.replace(",", " ").split():
        if token.startswith("V") and token[1:2].isdigit():
            return token[1:]
    return None


def check_cuda() -> Check:
    """A visible CUDA GPU, and an nvcc whose major version matches torch's CUDA, plus ninja.

    nvcc and ninja are only needed by renderers that compile CUDA code on first use (``nvdiffrast``).
    """
    if not torch.cuda.is_available():
        why = "torch is a CPU build" if torch.version.cuda is None else "no NVIDIA GPU or driver is visible"
        return Check(
            "cuda",
            False,
            f"no CUDA device ({why}); texkit runs on the CPU with renderer 'torch' (slow: fine-tuning Stable Diffusion is impractical)",
            "for GPU runs use a machine with an NVIDIA GPU and a CUDA build of torch (pytorch.org/get-started)",
        )
    name = torch.cuda.get_device_name()
    capability = ".".join(map(str, torch.cuda.get_device_capability()))
    detail = f"{torch.cuda.device_count()} GPU(s), current: {name} (compute capability {capability})"
    from torch.utils.cpp_extension import CUDA_HOME

    nvcc = shutil.which("nvcc") or (f"{CUDA_HOME}/bin/nvcc" if CUDA_HOME else None)
    nvcc_version = _nvcc_version(nvcc) if nvcc else None
    if nvcc_version is None:
        return Check(
            "cuda",
            False,
            detail + "; no CUDA compiler (nvcc) found",
            "install the CUDA toolkit matching torch's CUDA and set CUDA_HOME, or use renderer 'torch'",
        )
    detail += f"; nvcc {nvcc_version}"
    if torch.version.cuda and nvcc_version.split(".")[0] != torch.version.cuda.split(".")[0]:
        return Check(
            "cuda",
            False,
            detail + f" but torch is built for CUDA {torch.version.cuda}",
            f"install CUDA toolkit {torch.version.cuda.split('.')[0]}.x (matching torch) and point CUDA_HOME at it",
        )
    if shutil.which("ninja") is None:
        return Check("cuda", False, detail + "; ninja not found", "pip install ninja (CUDA extensions build with it)")
    return Check("cuda", True, detail + "; ninja found")


def _probe_scene(device: torch.device) -> tuple[Any, Any]:
    """One triangle facing the camera, filling the middle of the image, and one front camera."""
    from texkit.cameras import Cameras
    from texkit.geometry.mesh import Mesh

    verts = [[-0.5, -0.4, 0.0], [0.5, -0.4, 0.0], [0.0, 0.5, 0.0]]
    uvs = [[0.0, 0.0], [1.0, 0.0], [0.5, 1.0]]
    mesh = Mesh.from_arrays(verts, [[0, 1, 2]], uvs, name="doctor-triangle", normalize="none").to(device)
    cameras = Cameras.from_angles([0.0], [0.0], radius=2.5, fov=50.0, device=device)
    return mesh, cameras


def _probe_renderer(name: str, registry: Any, device: torch.device) -> Check:
    """Build renderer ``name`` and render the probe triangle; check coverage and colour."""
    label = f"renderer {name}"
    distribution = registry.get("renderers", name).distribution
    try:
        renderer = registry.make_renderer(name)
        mesh, cameras = _probe_scene(torch.device(getattr(renderer, "device", None) or device))
        texture = torch.full((8, 8, 3), 0.75, device=mesh.device)
        out = renderer.render(mesh, texture, cameras, PROBE_RESOLUTION, antialias=False)
    except TexkitError as err:
        return Check(label, False, f"from {distribution}: cannot run here", str(err))
    except Exception as err:  # a broken plugin must not stop the doctor
        return Check(
            label,
            False,
            f"from {distribution}: failed ({_first_line(err)[:200]})",
            f"reinstall it (pip install --force-reinstall {distribution}) or report the error to its authors",
        )
    covered_mask = out.face_id[0] >= 0
    covered = int(covered_mask.sum())
    # area 0.45 seen from 2.5 away with a 50 degree fov (view height 2.33): about 8% of the pixels
    view_height = 2 * 2.5 * math.tan(math.radians(25.0))
    expected = PROBE_RESOLUTION**2 * 0.45 / view_height**2
    colour_ok = covered > 0 and bool((out.rgb[0][covered_mask] - 0.75).abs().max() < 1e-3)
    ok = 0.5 * expected < covered < 2.0 * expected and colour_ok and bool(torch.isfinite(out.rgb).all())
    detail = f"from {distribution} on {mesh.device}: one triangle covers {covered} px (expected about {expected:.0f})"
    if not ok:
        return Check(
            label,
            False,
            detail + " or its colour is wrong",
            f"reinstall {distribution} or report a rendering bug to its authors",
        )
    return Check(label, True, detail)


def check_renderers(device: torch.device | None = None) -> list[Check]:
    """One check per registered renderer, plus one per plugin that failed to import."""
    from texkit.registry import get_registry

    registry = get_registry()
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    checks = [_probe_renderer(name, registry, device) for name in registry.names("renderers")]
    if not checks:
        checks.append(Check("renderers", False, "no renderer is installed", "pip install texkit-torch-render"))
    for failure in registry.failures:
        checks.append(
            Check(
                f"plugin {failure.entry_point}",
                False,
                f"from {failure.distribution} {failure.version} failed to import ({failure.error})",
                f"reinstall it (pip install --force-reinstall {failure.distribution}) or uninstall it",
            )
        )
    return checks


def plugin_checks() -> list[Check]:
    """Every check registered by plugins (``texkit_register_checks``); a check that raises fails alone."""
    from texkit.registry import get_registry

    checks = []
    for entry in get_registry().checks():
        try:
            result = entry.obj()
        except Exception as err:  # a broken plugin check must not stop the doctor
            result = Check(entry.name, False, f"from {entry.distribution}: the check failed ({_first_line(err)[:200]})",
                           f"reinstall {entry.distribution} or report the error to its authors")
        checks.append(result)
    return checks


def check_gpu_memory() -> Check | None:
    """Free memory on the current GPU, against `MIN_FREE_GPU_GIB`; None without CUDA."""
    if not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info()
    gib = 1024**3
    detail = f"{free / gib:.1f} GiB free of {total / gib:.1f} GiB"
    if free / gib < MIN_FREE_GPU_GIB:
        return Check(
            "gpu memory",
            False,
            detail + f" (a training step needs about {MIN_FREE_GPU_GIB:.0f} GiB)",
            "stop other GPU processes (see nvidia-smi), or turn on gradient checkpointing and fewer views per step",
        )
    return Check("gpu memory", True, detail)


def run_checks() -> list[Check]:
    """All checks, in order: torch, cuda, renderers (and broken plugins), plugins' own checks, gpu memory."""
    checks = [check_torch(), check_cuda(), *check_renderers(), *plugin_checks()]
    memory = check_gpu_memory()
    if memory is not None:
        checks.append(memory)
    return checks
