"""Intra-op threads chosen from the work size: one for small CPU work, overridable."""

from __future__ import annotations

import pytest
import torch

from texkit.errors import ConfigError
from texkit.threads import ENV_VAR, apply_threads, choose_threads, model_parameters


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_tiny_model_on_cpu_gets_one_thread():
    assert choose_threads("cpu", 1_600_000, 128 * 128)[0] == 1


def test_large_work_and_gpus_keep_torchs_default():
    assert choose_threads("cpu", 860_000_000, 512 * 512)[0] is None
    assert choose_threads("cpu", 1_600_000, 1024 * 1024)[0] is None
    assert choose_threads("cuda", 1_600_000, 128 * 128)[0] is None


def test_overrides_option_then_env_then_omp(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "3")
    assert choose_threads("cpu", 1, 1, override=2) == (2, "--threads 2")
    assert choose_threads("cpu", 1, 1)[0] == 3
    monkeypatch.setenv(ENV_VAR, "0")
    assert choose_threads("cpu", 1, 1)[0] is None  # 0: torch's default
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert choose_threads("cpu", 1, 1)[0] is None  # the user's OMP setting stands
    monkeypatch.setenv(ENV_VAR, "many")
    with pytest.raises(ConfigError, match=ENV_VAR):
        choose_threads("cpu", 1, 1)


def test_apply_sets_torch_and_counts_parameters():
    assert apply_threads("cpu", 10, 64 * 64)[0] == 1 and torch.get_num_threads() == 1

    class Holder:
        def __init__(self):
            self.net = torch.nn.Linear(3, 2)
            self.same = self.net

    assert model_parameters(Holder()) == 8
