"""Known answers for the compiled denoising call: first-call timings and notes, cache counts, grad-mode inputs, the fallback's reason.

No Inductor here: ``torch.compile`` is replaced by a stand-in that calls the eager function (and
records what it was given), and where a test needs exact numbers the clock, the compiler's phase
times and the compile-cache counters are replaced too. The models are small stand-in functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from diffusers_standins import linear_controlnet as _controlnet
from diffusers_standins import linear_unet as _unet
from diffusers_standins import standin_inputs as _inputs
from texkit_diffusers import compiled

from texkit.compile_cache import CompileCacheCounts


class InputRecordingCompile:
    """Stands in for ``torch.compile``: the wrapper calls the eager function and records the latents and condition it was given."""

    def __init__(self) -> None:
        self.created = 0
        self.inputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, fn, **_):
        self.created += 1

        def run(x, t, embeds, condition, scale):
            self.inputs.append((x, condition))
            return fn(x, t, embeds, condition, scale)

        return run


@pytest.fixture
def stand_in_compile(monkeypatch) -> InputRecordingCompile:
    fake = InputRecordingCompile()
    monkeypatch.setattr(compiled.torch, "compile", fake)
    monkeypatch.setattr(compiled, "enable_compile_cache", lambda: None)  # leave this process's Inductor settings alone
    return fake


def _sequence(monkeypatch, name: str, values: list) -> None:
    """Make ``compiled.<name>()`` return ``values`` one after the other (and fail when asked once more)."""
    it: Iterator = iter(values)
    monkeypatch.setattr(compiled, name, lambda: next(it))


def _clock(monkeypatch, readings: list[float]) -> None:
    it = iter(readings)
    monkeypatch.setattr(compiled, "time", SimpleNamespace(perf_counter=lambda: next(it)))


# -- describe_first_call and _needing_grad ----------------------------------------------------------


def test_first_call_phases_default_to_zero_before_and_the_rest_is_never_negative():
    assert compiled.describe_first_call(5.0, {}, {"tracing": 2.0, "backend": 1.5}) == "5.0 s (tracing 2.0 s, compiling or loading 1.5 s, the rest 1.5 s)"
    # phase times summed over every compiled frame can exceed this call's wall time: the rest is 0, not negative
    assert compiled.describe_first_call(3.0, {"tracing": 0.0, "backend": 0.0}, {"tracing": 2.0, "backend": 1.5}) == "3.0 s (tracing 2.0 s, compiling or loading 1.5 s, the rest 0.0 s)"


def test_an_input_that_requires_grad_is_passed_as_it_is_another_becomes_a_leaf_on_the_same_storage():
    x = torch.randn(2, 3)
    leaf = torch.randn(2, 3, requires_grad=True)
    inner = leaf * 2.0
    assert compiled._needing_grad(leaf) is leaf
    assert compiled._needing_grad(inner) is inner
    y = compiled._needing_grad(x)
    assert y is not x and y.requires_grad and y.is_leaf and not x.requires_grad
    assert y.data_ptr() == x.data_ptr() and torch.equal(y, x)


# -- the eager call --------------------------------------------------------------------------------


def test_the_eager_call_composes_controlnet_and_unet_as_diffusers_does():
    """Real (tiny) models: the UNet gets the ControlNet's residuals at ``conditioning_scale`` (no guess mode)."""
    from texkit_diffusers.tiny import build_tiny_components

    parts = build_tiny_components(conditioning_channels=3)
    unet, controlnet = parts["unet"], parts["controlnet"]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a fresh ControlNet's zero convolutions give zero residuals: give them weights
        for module in (*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block):
            for p in module.parameters():
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    x, t = torch.randn(2, 4, 8, 8, generator=g), torch.tensor(500)
    embeds, condition = torch.randn(2, 77, 32, generator=g), torch.rand(2, 3, 64, 64, generator=g)
    with torch.no_grad():
        res = controlnet(x, t, encoder_hidden_states=embeds, controlnet_cond=condition, conditioning_scale=0.7)  # diffusers' defaults
        want = unet(x, t, encoder_hidden_states=embeds, down_block_additional_residuals=res.down_block_res_samples, mid_block_additional_residual=res.mid_block_res_sample).sample
        got = compiled.DenoiserCall(unet, controlnet, "off")(x, t, embeds, condition, 0.7)
    assert float(res.mid_block_res_sample.abs().max()) > 0
    torch.testing.assert_close(got, want)


# -- what the compiled function is given -------------------------------------------------------------


def test_a_training_call_gives_the_compiled_graph_latents_and_condition_requiring_grad(stand_in_compile):
    """Grad mode on: both go in requiring grad (one graph whichever of them carry gradients); the caller's tensors are untouched."""
    x, t, embeds, condition, scale = _inputs()
    call = compiled.DenoiserCall(_unet, _controlnet, "on")
    expected = call.eager(x, t, embeds, condition, scale)
    torch.testing.assert_close(call(x, t, embeds, condition, scale), expected)
    (got_x, got_condition), = stand_in_compile.inputs
    for got, given in ((got_x, x), (got_condition, condition)):
        assert got.requires_grad and got.is_leaf and got.data_ptr() == given.data_ptr()
        assert not given.requires_grad

    source = x.clone().requires_grad_(True)
    latents = source * 2.0  # a latent that carries gradients (as after the first denoising step)
    call(latents, t, embeds, condition, scale).sum().backward()
    assert stand_in_compile.inputs[-1][0] is latents
    # d/d source of sum(x + x * scale + condition + mid) with x = 2 source: 2 (1 + scale)
    torch.testing.assert_close(source.grad, torch.full_like(source, 2.0 * (1.0 + scale)))


def test_a_no_grad_call_gives_the_compiled_graph_its_inputs_as_they_are(stand_in_compile):
    x, t, embeds, condition, scale = _inputs()
    call = compiled.DenoiserCall(_unet, _controlnet, "on")
    with torch.no_grad():
        call(x, t, embeds, condition, scale)
    (got_x, got_condition), = stand_in_compile.inputs
    assert got_x is x and got_condition is condition and not got_x.requires_grad


def test_the_check_before_a_compiled_call_runs_before_compiled_calls_only(stand_in_compile):
    checks: list[bool] = []
    call = compiled.DenoiserCall(_unet, _controlnet, "auto", device="cuda", before_compiled_call=lambda: checks.append(torch.is_grad_enabled()))
    args = _inputs()
    with torch.no_grad():
        call(*args)  # still waiting for the first training call: eager
    assert checks == []
    call(*args)
    call(*args)
    assert checks == [True, True] and len(stand_in_compile.inputs) == 2
    with torch.no_grad():
        call(*args)  # a no-grad shape not yet repeated: eager, no check
    assert checks == [True, True] and len(stand_in_compile.inputs) == 2


def test_auto_compiles_a_no_grad_shape_at_its_2001st_call(stand_in_compile):
    """2000 eager calls first: about where a 52 s compile pays off at 24 ms saved per call (`AUTO_NO_GRAD_EAGER_CALLS`)."""
    args = _inputs()
    call = compiled.DenoiserCall(_unet, _controlnet, "auto", device="cuda")
    call(*args)  # the first training call: compiling starts
    with torch.no_grad():
        for _ in range(2000):
            call(*args)
        assert len(stand_in_compile.inputs) == 1
        call(*args)
    assert len(stand_in_compile.inputs) == 2


def test_auto_counts_the_eager_calls_of_each_no_grad_shape_on_its_own(stand_in_compile, monkeypatch):
    monkeypatch.setattr(compiled, "AUTO_NO_GRAD_EAGER_CALLS", 2)
    call = compiled.DenoiserCall(_unet, _controlnet, "auto", device="cuda")
    call(*_inputs(2))  # the first training call: compiling starts
    assert len(stand_in_compile.inputs) == 1
    with torch.no_grad():
        for _ in range(2):
            call(*_inputs(2))
            call(*_inputs(3))
        assert len(stand_in_compile.inputs) == 1  # two eager calls of each shape
        call(*_inputs(3))  # the third of 3 latents compiles; 2 latents still has had only two
        assert [x.shape[0] for x, _ in stand_in_compile.inputs] == [2, 3]
        call(*_inputs(2))
        call(*_inputs(3))
    assert [x.shape[0] for x, _ in stand_in_compile.inputs] == [2, 3, 2, 3]


# -- first calls: time, phases, cache counts, notes ----------------------------------------------------


def test_first_calls_are_timed_and_noted_with_their_cache_counts(stand_in_compile, monkeypatch, capsys, tmp_path):
    folder = tmp_path / "compile"
    monkeypatch.setattr(compiled, "active_cache_dir", lambda: folder)
    _clock(monkeypatch, [100.0, 115.4, 200.0, 203.0])  # start and end of each first call
    _sequence(monkeypatch, "dynamo_phase_seconds", [
        {"tracing": 1.0, "backend": 2.0}, {"tracing": 7.0, "backend": 10.5},
        {"tracing": 7.0, "backend": 10.5}, {"tracing": 8.0, "backend": 12.0},
    ])
    _sequence(monkeypatch, "cache_counts", [
        CompileCacheCounts(aot_misses=5, fx_misses=7), CompileCacheCounts(aot_misses=6, fx_misses=9),  # compiled: 2 graphs
        CompileCacheCounts(aot_misses=6, fx_misses=9), CompileCacheCounts(aot_hits=1, aot_misses=6, fx_hits=2, fx_misses=9),  # loaded: 2 graphs
    ])
    call = compiled.DenoiserCall(_unet, _controlnet, "on")
    capsys.readouterr()
    call(*_inputs(2))
    call(*_inputs(2))  # the same shape again: neither timed nor noted
    with torch.no_grad():
        call(*_inputs(3))
    training = "15.4 s (tracing 6.0 s, compiling or loading 8.5 s, the rest 0.9 s)"
    no_grad = "3.0 s (tracing 1.0 s, compiling or loading 1.5 s, the rest 0.5 s)"
    assert capsys.readouterr().err.splitlines() == [
        "texkit-diffusers: note: compiling the denoising call for 2 latents (training): once per run and batch size, about 1-2 minutes on a GPU",
        f"texkit-diffusers: note: denoising call for 2 latents (training) ready in {training}, compiled (2 graphs, now cached) in {folder}",
        "texkit-diffusers: note: compiling the denoising call for 3 latents (no gradients): once per run and batch size, about 1-2 minutes on a GPU",
        f"texkit-diffusers: note: denoising call for 3 latents (no gradients) ready in {no_grad}, loaded from the compile cache (2 graphs) in {folder}",
    ]
    assert call.first_calls == [f"2 latents, training: {training}", f"3 latents, no gradients: {no_grad}"]
    assert call.compile_seconds == pytest.approx(18.4)
    assert call.cache == CompileCacheCounts(aot_hits=1, aot_misses=1, fx_hits=2, fx_misses=2)
    assert call.describe_cache() == f"compile cache: 2 hit(s), 2 miss(es) in {folder}; first calls: 2 latents, training: {training}; 3 latents, no gradients: {no_grad}"


@pytest.mark.parametrize(
    ("folder", "counts", "in_folder"),
    [
        (Path("/cache/compile"), CompileCacheCounts(fx_misses=1), True),
        (Path("/cache/compile"), CompileCacheCounts(fx_hits=1), True),
        (Path("/cache/compile"), CompileCacheCounts(), False),  # nothing compiled (or all bypassed): no folder to name
        (None, CompileCacheCounts(fx_misses=1), False),  # the cache is off
    ],
)
def test_the_ready_note_names_the_cache_folder_only_when_it_was_used(stand_in_compile, monkeypatch, capsys, folder, counts, in_folder):
    monkeypatch.setattr(compiled, "active_cache_dir", lambda: folder)
    _sequence(monkeypatch, "cache_counts", [CompileCacheCounts(), counts])
    call = compiled.DenoiserCall(_unet, _controlnet, "on")
    capsys.readouterr()
    call(*_inputs())
    ready = capsys.readouterr().err.splitlines()[-1]
    assert ready.endswith(counts.describe() + (f" in {folder}" if in_folder else ""))
    assert call.describe_cache().startswith(counts.describe() + (f" in {folder}" if folder is not None else " (torch's default folder)") + "; first calls: 2 latents, training: ")


def test_the_cache_record_before_any_compiled_call():
    call = compiled.DenoiserCall(_unet, _controlnet, "off")
    assert call.describe_cache().startswith("no graph compiled")
    assert "first calls" not in call.describe_cache()


class Terminal:
    """A stderr that shows only what was flushed."""

    def __init__(self) -> None:
        self.pending = ""
        self.shown = ""

    def write(self, text: str) -> int:
        self.pending += text
        return len(text)

    def flush(self) -> None:
        self.shown, self.pending = self.shown + self.pending, ""


def test_the_compiling_note_is_shown_before_the_compilation_starts(stand_in_compile, monkeypatch):
    """A first call compiles for minutes: its note must be on the terminal already, and the ready note right after."""
    terminal = Terminal()
    monkeypatch.setattr(compiled, "sys", SimpleNamespace(stderr=terminal))
    shown_while_compiling: list[str] = []
    real = compiled.DenoiserCall.eager

    def eager(self, *args):
        shown_while_compiling.append(terminal.shown)
        return real(self, *args)

    monkeypatch.setattr(compiled.DenoiserCall, "eager", eager)
    call = compiled.DenoiserCall(_unet, _controlnet, "on")
    call(*_inputs())
    assert "compiling the denoising call for 2 latents (training)" in shown_while_compiling[0]
    assert "ready in" not in shown_while_compiling[0]
    assert "denoising call for 2 latents (training) ready in" in terminal.shown and terminal.pending == ""


# -- the fallback's reason ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("x" * 300 + "\nthe second line", "x" * 200),  # the first line, at most 200 characters
        ("\n  failed to build  \nthe second line", "failed to build  "),
        ("", ""),
    ],
)
def test_the_fallback_keeps_the_first_line_of_the_compiler_error(stand_in_compile, monkeypatch, message, shown):
    def broken(fn, **_):
        def run(*args):
            raise RuntimeError(message)

        return run

    monkeypatch.setattr(compiled.torch, "compile", broken)
    call = compiled.DenoiserCall(_unet, _controlnet, "on")
    args = _inputs()
    torch.testing.assert_close(call(*args), call.eager(*args))
    assert not call.compiled
    assert call.reason == f"compile failed, running eager (RuntimeError: {shown})"
