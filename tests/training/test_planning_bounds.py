"""The dry-run bounds of texkit.planning as known answers: durations in words, the memory a device
offers (a faked GPU, the CPU under an address-space limit), texture and render sizes whose buffers
cannot fit (with the largest size or batch that does), and runs predicted to take over a year."""

from __future__ import annotations

import sys

import pytest
import torch

from texkit.config import parse_config
from texkit.errors import ConfigError, DeviceError
from texkit.planning import (
    RunPlan,
    StepPrediction,
    check_duration,
    check_fits,
    check_sizes,
    device_memory,
    format_duration,
)

GIB = 2**30
YEAR = 365.0 * 86400



def _config(**sections):
    data = {
        "generator": {"name": "tiny", "options": {"steps": 2}},
        "cameras": {"paint": {"elevation": [0.0], "azimuth": [0.0]}, "reward": {"elevation": [0.0], "azimuth": [0.0]}},
        "rewards": {"curvature_color": {}},
    }
    for key, value in sections.items():
        data[key] = value
    return parse_config(data)


@pytest.mark.parametrize(
    "seconds, words",
    [
        (42, "42 s"), (119, "119 s"), (120, "2 min"), (3599, "60 min"), (3600, "1 h"), (5400, "1.5 h"),
        (86400, "1 days"), (YEAR, "1 years"), (2.5 * YEAR, "2.5 years"), (1e6 * YEAR, "1.0e+06 years"), (3e7 * YEAR, "3.0e+07 years"),
    ],
)
def test_durations_in_words(seconds, words):
    assert format_duration(seconds) == words


def test_gpu_memory_is_the_card_s(fake_gpu):
    assert device_memory(fake_gpu(10.0)) == (10.0 * GIB, "cuda:0 has 10.0 GiB")


def test_cpu_memory_is_capped_by_an_address_space_limit(monkeypatch):
    import resource

    ram, words = device_memory(torch.device("cpu"))
    assert words == f"the cpu has {ram / GIB:.1f} GiB of RAM" or "ulimit" in words
    monkeypatch.setattr(resource, "getrlimit", lambda which: (4 * GIB, resource.RLIM_INFINITY))
    assert device_memory(torch.device("cpu")) == (4.0 * GIB, "the cpu has 4.0 GiB under its address-space limit (ulimit -v)")
    monkeypatch.setattr(resource, "getrlimit", lambda which: (int(ram), resource.RLIM_INFINITY))  # a limit of the RAM itself
    assert device_memory(torch.device("cpu")) == (ram, f"the cpu has {ram / GIB:.1f} GiB of RAM")
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert device_memory(torch.device("cpu"))[1].endswith("of RAM")
    monkeypatch.setitem(sys.modules, "resource", None)  # no resource module (not POSIX): the RAM
    assert device_memory(torch.device("cpu")) == (ram, f"the cpu has {ram / GIB:.1f} GiB of RAM")


def test_a_texture_whose_buffers_exceed_the_device_names_the_largest_size_that_fits(fake_gpu):
    # 16384^2 texels x 36 bytes = 9 GiB > 1 GiB; the largest power of two within half of it: 2048
    with pytest.raises(ConfigError) as err:
        check_sizes(_config(texture={"size": 16384}), fake_gpu(1.0))
    assert str(err.value) == (
        "texture.size 16384 needs at least 9 GiB for the texture alone (36 bytes per texel x 1 sample(s)) but cuda:0 has 1.0 GiB; "
        "set texture.size to 2048 or less"
    )


def test_a_render_size_whose_buffers_exceed_the_device_names_the_largest_size_that_fits(fake_gpu):
    # 8192^2 pixels x 52 bytes x 1 view = 3.25 GiB > 1 GiB; within half of it: 2048
    with pytest.raises(ConfigError) as err:
        check_sizes(_config(texture={"size": 64, "render_size": 8192}), fake_gpu(1.0))
    assert str(err.value) == (
        "texture.render_size 8192 needs at least 3 GiB for its 1 reward render(s) alone (52 bytes per pixel and view x 1 sample(s)) "
        "but cuda:0 has 1.0 GiB; set texture.render_size to 2048 or less"
    )


def test_a_batch_too_big_for_sizes_that_fit_alone_names_the_largest_batch(fake_gpu):
    config = _config(texture={"size": 4096})  # 0.5625 GiB per sample
    check_sizes(config, fake_gpu(4.0), batch=7)  # 3.94 GiB: fits
    with pytest.raises(ConfigError, match=r"at training.batch_size 8 needs at least 4 GiB .* set training.batch_size to 3 or less$"):
        check_sizes(config, fake_gpu(4.0), batch=8)
    # one sample takes exactly half the memory: still the batch that is too big
    with pytest.raises(ConfigError, match=r"at training.batch_size 3 .* set training.batch_size to 1 or less$"):
        check_sizes(config, fake_gpu(1.125), batch=3)
    # one sample takes more than half (but fits): the size is what to lower
    with pytest.raises(ConfigError, match=r"^texture.size 4096 needs .* set texture.size to 2048 or less$"):
        check_sizes(config, fake_gpu(1.0), batch=2)


def _plan(seconds: float) -> RunPlan:
    return RunPlan(StepPrediction(seconds=seconds, peak_gib=None, samples_per_second=1.0 / seconds, basis="test"), "cpu", None, None)


def test_runs_predicted_to_take_over_a_year_are_refused():
    check_duration(_plan(1.0), _config(training={"steps": 31_536_000}))  # exactly 365 days
    with pytest.raises(ConfigError) as err:
        check_duration(_plan(1.0), _config(training={"steps": 31_536_001}))
    assert str(err.value) == "training.steps 31536001 is predicted to take 1 years at 1.0 s/step; set training.steps to 31536000 or less (about 365 days)"
    with pytest.raises(ConfigError, match=r"^one training step is predicted to take 2 years \(2 denoising steps per view x 1 view\(s\) x training.batch_size 1\)"):
        check_duration(_plan(2 * YEAR), _config(training={"steps": 1}))
    check_duration(RunPlan(None, "cpu", None, None), _config(training={"steps": 10**9}))  # nothing measured: no bound


def test_a_run_that_fits_no_batch_size_says_one(fake_gpu):
    config = parse_config({"generator": {"name": "stable-diffusion", "options": {"compile": "off"}}, "cameras": {"paint": "front_short"},
                           "training": {"batch_size": 4, "view_checkpointing": False}, "rewards": {"curvature_color": {}}})
    with pytest.raises(DeviceError, match="set training.batch_size to 1 or less"):
        check_fits(config, fake_gpu(0.5))


def test_size_and_batch_limits_at_their_edges(fake_gpu):
    # exactly the memory: fits; the largest size whose buffers take exactly half of it is named
    check_sizes(_config(texture={"size": 4096}), fake_gpu(4096**2 * 36 / GIB))
    with pytest.raises(ConfigError, match=r"set texture.size to 4096 or less$"):
        check_sizes(_config(texture={"size": 8192}), fake_gpu(2 * 4096**2 * 36 / GIB))
    # two reward views double the render buffers
    two_views = _config(texture={"size": 64, "render_size": 4096}, cameras={"paint": {"elevation": [0.0], "azimuth": [0.0]},
                                                                          "reward": {"elevation": [0.0, 10.0], "azimuth": [0.0, 90.0]}})
    with pytest.raises(ConfigError, match=r"for its 2 reward render\(s\) alone \(52 bytes per pixel and view x 1 sample\(s\)\).* to 2048 or less$"):
        check_sizes(two_views, fake_gpu(1.5))


def test_duration_limits_at_their_edges():
    check_duration(_plan(YEAR), _config(training={"steps": 1}))  # one step of exactly a year: allowed
    with pytest.raises(ConfigError, match=r"set training.steps to 15768000 or less"):
        check_duration(_plan(2.0), _config(training={"steps": 20_000_000}))
