"""``texkit doctor`` checks: real probes through the registry, and each failure's one-line fix."""

from __future__ import annotations

import pytest
import torch

import texkit
from texkit import registry
from texkit.commands import doctor
from texkit.errors import DeviceError
from texkit.registry import PluginInfo, Registry

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks what the doctor says on a machine without CUDA")


@pytest.fixture
def local_registry(monkeypatch):
    """An empty registry installed as the process-wide one (no entry points)."""
    reg = Registry(load_entry_points=False)
    monkeypatch.setattr(registry, "_REGISTRY", reg)
    return reg


def _register_renderer(reg: Registry, name: str, factory) -> None:
    class Plugin:
        @texkit.hookimpl
        def texkit_register_renderers(self, register):
            register(name, factory)

    reg.register_plugin(Plugin(), distribution=f"dist-{name}")


def test_run_checks_covers_everything_in_order():
    checks = doctor.run_checks()
    names = [c.name for c in checks]
    assert names[:2] == ["torch", "cuda"]
    assert "attention" in names
    for name in texkit.get_registry().names("renderers"):
        assert f"renderer {name}" in names
    for check in checks:
        assert isinstance(check, doctor.Check) and check.detail
        assert check.ok or check.fix, f"failed check {check.name} has no fix"
        assert "\n" not in check.detail + check.fix


def test_torch_renderer_rasterises_the_probe_triangle():
    check = next(c for c in doctor.run_checks() if c.name == "renderer torch")
    assert check.ok, check
    covered = int(check.detail.split("covers ")[1].split(" px")[0])
    # the analytic area: 0.45 units^2 in a view 2 * 2.5 * tan(25 deg) units high, 32 px
    assert abs(covered - 85) <= 12


@no_cuda
def test_nvdiffrast_without_cuda_reports_the_clear_fix():
    check = next(c for c in doctor.run_checks() if c.name == "renderer nvdiffrast")
    assert not check.ok
    assert "needs an NVIDIA GPU" in check.fix and "use renderer 'torch'" in check.fix


@no_cuda
def test_cuda_check_without_gpu_points_to_a_cuda_build():
    check = doctor.check_cuda()
    assert not check.ok and "CUDA build of torch" in check.fix
    assert doctor.check_gpu_memory() is None


def test_old_torch_fails_with_upgrade_fix(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.1.2+cu121")
    check = doctor.check_torch()
    assert not check.ok and "pip install -U torch" in check.fix
    monkeypatch.setattr(torch, "__version__", "2.11.0+cu130")
    assert doctor.check_torch().ok


def test_renderer_raising_device_error_passes_its_message_as_fix(local_registry):
    def factory(**options):
        raise DeviceError("renderer 'fancy' needs a quantum GPU; use renderer 'torch'")

    _register_renderer(local_registry, "fancy", factory)
    [check] = doctor.check_renderers(torch.device("cpu"))
    assert check.name == "renderer fancy" and not check.ok
    assert check.fix == "renderer 'fancy' needs a quantum GPU; use renderer 'torch'"


def test_crashing_renderer_is_reported_not_raised(local_registry):
    class Crashing:
        name = "crashing"

        def render(self, *args, **kwargs):
            raise RuntimeError("segfault-ish\nsecond line")

    _register_renderer(local_registry, "crashing", lambda **o: Crashing())
    [check] = doctor.check_renderers(torch.device("cpu"))
    assert not check.ok and "RuntimeError: segfault-ish" in check.detail
    assert "pip install --force-reinstall dist-crashing" in check.fix


def test_renderer_that_draws_nothing_fails(local_registry, torch_renderer):
    class Blank:
        name = "blank"

        def render(self, mesh, texture, cameras, resolution, antialias=True):
            out = torch_renderer.render(mesh, texture, cameras, resolution, antialias)
            out.face_id = torch.full_like(out.face_id, -1)
            return out

    _register_renderer(local_registry, "blank", lambda **o: Blank())
    [check] = doctor.check_renderers(torch.device("cpu"))
    assert not check.ok and "covers 0 px" in check.detail


def test_renderer_with_wrong_colour_fails(local_registry, torch_renderer):
    class Dark:
        name = "dark"

        def render(self, mesh, texture, cameras, resolution, antialias=True):
            return torch_renderer.render(mesh, texture * 0.5, cameras, resolution, antialias)

    _register_renderer(local_registry, "dark", lambda **o: Dark())
    [check] = doctor.check_renderers(torch.device("cpu"))
    assert not check.ok and "colour is wrong" in check.detail


def test_no_renderer_and_broken_plugins(local_registry):
    local_registry.failures.append(PluginInfo("bad", "bad_mod", "texkit-bad", "0.3", error="ImportError: no module x"))
    checks = doctor.check_renderers(torch.device("cpu"))
    assert [c.name for c in checks] == ["renderers", "plugin bad"]
    assert not any(c.ok for c in checks)
    assert checks[0].fix == "pip install texkit-torch-render"
    assert "texkit-bad 0.3" in checks[1].detail and "texkit-bad" in checks[1].fix


def test_a_plugin_check_that_raises_fails_alone(monkeypatch):
    from texkit.registry import Registered

    def broken():
        raise RuntimeError("probe exploded")

    monkeypatch.setattr(registry.get_registry(), "checks", lambda: [Registered("broken", broken, "texkit-bad")])
    [check] = doctor.plugin_checks()
    assert not check.ok and "probe exploded" in check.detail and "texkit-bad" in check.fix


def test_attention_reports_the_backend_that_would_run():
    pytest.importorskip("texkit_diffusers.attention", reason="texkit-diffusers is not installed")
    [check] = [c for c in doctor.plugin_checks() if c.name == "attention"]
    assert check.ok and check.detail.startswith("PyTorch SDPA") and "CUDA device" in check.detail
