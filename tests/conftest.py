"""Shared fixtures: the shared test meshes beside the repository, the torch renderer and the built docs site."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO.parent / "shared" / "assets"


def load_docs_module(relative: str) -> Any:
    """A module of ``docs/`` (a hook or a script, not a package) loaded from its file, once per session."""
    name = "texkit_docs_" + relative.replace("/", "_").removesuffix(".py")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "docs" / relative)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def docs_module() -> Any:
    """`load_docs_module`: ``docs_module("hooks/navigation.py")`` is that file's module."""
    return load_docs_module


@pytest.fixture(scope="session")
def site_checker() -> Any:
    """docs/scripts/check_site.py: pages in headless Chromium (also the report's browser test)."""
    return load_docs_module("scripts/check_site.py")


@pytest.fixture(scope="session")
def chromium(site_checker) -> tuple[str, str]:
    """``(chromium, chromedriver)`` paths; skips with the reason where they or selenium are missing,
    fails instead under CI (``CI`` set, as ``.ci/run`` runs, which installs them)."""
    found = site_checker.browser_paths()
    if isinstance(found, str):
        if os.environ.get("CI"):
            pytest.fail(found + "; .ci/run installs them, so CI must not skip this test")
        pytest.skip(found)
    return found


@pytest.fixture
def register_rewards():
    """``register_rewards(*classes)``: a fresh registry with these reward classes added (as one plugin
    distribution, ``test-rewards``) to the installed ones; the registry is forgotten afterwards."""
    import texkit
    from texkit.registry import get_registry, reset_registry

    def register(*classes: type) -> None:
        module = types.ModuleType("test_rewards_plugin")

        @texkit.hookimpl
        def texkit_register_rewards(register: Any) -> None:
            for cls in classes:
                register(cls)

        module.texkit_register_rewards = texkit_register_rewards
        reset_registry()
        get_registry().register_plugin(module, distribution="test-rewards")

    yield register
    reset_registry()


@pytest.fixture(scope="session", autouse=True)
def _private_geometry_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point ``TEXKIT_CACHE_DIR`` (geometry cache, UV unwraps) at a folder of this test session, so
    tests neither read a developer's ~/.cache/texkit nor write into it."""
    old = os.environ.get("TEXKIT_CACHE_DIR")
    os.environ["TEXKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("texkit_cache"))
    yield
    if old is None:
        os.environ.pop("TEXKIT_CACHE_DIR", None)
    else:
        os.environ["TEXKIT_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def assets() -> Path:
    """Folder of the shared meshes (../shared/assets); skips when it is absent."""
    if not ASSETS.exists():
        pytest.skip(f"shared assets not found at {ASSETS}")
    return ASSETS


@pytest.fixture(scope="session")
def torch_renderer():
    """The registered ``torch`` renderer."""
    import texkit

    return texkit.get_registry().make_renderer("torch")


@pytest.fixture(scope="session")
def docs_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation built once per test session (``mkdocs build``, about 10 s), shared by every docs test.

    Set ``TEXKIT_DOCS_SITE`` to a freshly built site folder to reuse it. Not ``--strict``: strictness
    is ``make docs``'s job; the tests are about what the site holds and shows.
    """
    prebuilt = os.environ.get("TEXKIT_DOCS_SITE")
    if prebuilt:
        return Path(prebuilt)
    site = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "--site-dir", str(site)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return site


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """A full ``texkit demo`` run (its own settings: 30 steps of the tiny generator on the built-in mesh),
    trained once per test session and shared, read-only, by the demo-effect and the eval tests."""
    from texkit.commands.demo import run_demo

    out = tmp_path_factory.mktemp("demo") / "run"
    run_demo(out)
    return out


def _tiny_run_config(run: Path, **changes) -> dict:
    """The config of the tiny run (2 painting views, 32-texel textures, one curvature_color reward)."""
    data = {
        "mesh": {"path": "demo"},
        "prompts": {"text": ["a glazed ceramic gourd"]},
        "generator": {"name": "tiny", "options": {"steps": 1, "seed": 0}},
        "cameras": {"paint": {"elevation": [-20, -20], "azimuth": [0, 180]}, "reward": {"elevation": [-20], "azimuth": [90]}},
        "texture": {"size": 32, "render_size": 48},
        "rewards": {"curvature_color": {"tau": -0.5}},
        "output": {"dir": str(run), "grid_views": 2},
        "device": "cpu",
    }
    data.update(changes)
    return data


def _write_tiny_run(run: Path, scale: float = 0.05, **changes) -> Path:
    """A run folder with ``config.json`` and ``adapter/``: the tiny generator's LoRA set to seeded random values."""
    import torch

    from texkit.config import parse_config
    from texkit.run_history import updated_history
    from texkit.run_record import write_run_record
    from texkit.session import Session

    cfg = parse_config(_tiny_run_config(run, **changes))
    session = Session.build(cfg, need_rewards=False)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in session.generator.trainable_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    session.generator.save_adapter(run / "adapter")
    write_run_record(run, cfg, history=updated_history({}, cfg, [], 1))  # config.json with its history, as train writes it
    return run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny training run folder for the eval tests (read-only for its users): a real config and a real LoRA adapter
    of the tiny generator (seeded random values), written the way ``texkit train`` writes them, without training."""
    return _write_tiny_run(tmp_path_factory.mktemp("tiny") / "run")


@pytest.fixture(scope="session")
def make_tiny_run():
    """``make_tiny_run(folder, scale=0.05, **config sections) -> folder``: another tiny run folder, e.g. with
    another ``generator`` table."""
    return _write_tiny_run


def _png16(path: Path, values, color_type: int | None = None) -> Path:
    """Write ``values`` (uint16, ``(H, W)`` grey or ``(H, W, C)`` with C = 2 grey+alpha, 3 RGB, 4 RGBA)
    as a 16-bit PNG, encoded here (Pillow writes 16 bits only for grey)."""
    import struct
    import zlib

    import numpy as np

    arr = np.asarray(values, dtype=np.uint16)
    arr = arr[..., None] if arr.ndim == 2 else arr
    kind = color_type if color_type is not None else {1: 0, 2: 4, 3: 2, 4: 6}[arr.shape[-1]]
    rows = b"".join(b"\x00" + arr[r].astype(">u2").tobytes() for r in range(arr.shape[0]))  # filter 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", arr.shape[1], arr.shape[0], 16, kind, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="session")
def png16():
    """``png16(path, uint16 values) -> path``: a 16-bit PNG (grey, grey+alpha, RGB or RGBA by the last axis)."""
    return _png16
