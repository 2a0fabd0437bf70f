"""Fixtures shared by the training and planning tests."""

from __future__ import annotations

import types

import pytest
import torch

GIB = 2**30


@pytest.fixture
def fake_gpu(monkeypatch):
    """``fake_gpu(memory_gib) -> torch.device("cuda:0")``: a CUDA device of that many GiB as far as
    torch.cuda's queries go (there is none here)."""

    def install(memory_gib: float):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: types.SimpleNamespace(total_memory=memory_gib * GIB, name="Fake GPU"))
        return torch.device("cuda:0")

    return install
