"""The extension loader's error paths, exercised on any machine by faking CUDA and the build."""

from __future__ import annotations

import sys

import pytest
import torch
from texkit_nvdiffrast import build

from texkit.errors import DeviceError


def test_dependency_imports_without_cuda():
    dr = pytest.importorskip("nvdiffrast.torch", reason="diffrp-nvdiffrast is not installed")
    name = build.plugin_name()
    assert name.isidentifier() and name.startswith("nvdiffrast_plugin_")
    assert hasattr(dr, "RasterizeCudaContext")


def test_missing_nvdiffrast_names_the_package(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "nvdiffrast.torch", None)
    with pytest.raises(DeviceError, match="pip install diffrp-nvdiffrast, or use renderer 'torch'"):
        build.make_context(torch.device("cuda"))


def test_failed_build_is_one_line_and_build_dir_goes_on_path(monkeypatch):
    dr = pytest.importorskip("nvdiffrast.torch", reason="diffrp-nvdiffrast is not installed")
    from torch.utils.cpp_extension import _get_build_directory

    def failing_context(device=None):
        raise RuntimeError("Ninja is required to load C++ extensions\n(long compiler log)")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(dr, "RasterizeCudaContext", failing_context)
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(DeviceError) as info:
        build.make_context(torch.device("cuda"))
    message = str(info.value)
    assert "\n" not in message
    assert "RuntimeError: Ninja is required to load C++ extensions" in message
    assert "use renderer 'torch'" in message
    assert sys.path[0] == _get_build_directory(build.plugin_name(), False)
