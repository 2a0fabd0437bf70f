"""benchmarks/gpu/profile_summary.py: kernel names to op families, phases from record_function ranges."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "profile_summary.py"


@pytest.fixture(scope="module")
def summary():
    spec = importlib.util.spec_from_file_location("profile_summary", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["profile_summary"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128, 64, 4>>", "attention"),
        ("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3_64x64x64", "attention"),
        ("fmha_cutlassF_f16_aligned_64x64_rf_sm80", "attention"),
        ("sm90_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc_tilesize128x128x64", "convolution"),
        ("sm90_xmma_dgrad_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc", "convolution"),
        ("void cudnn::engines_precompiled::nchwToNhwcKernel<__half>", "layout_copy"),
        ("nvjet_hsh_128x256_64x4_2x1_v_bz_coopA_TNN", "gemm"),
        ("sm90_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x64", "gemm"),
        ("triton_red_fused_native_group_norm_3", "normalization"),
        ("triton_poi_fused_add_silu_12", "pointwise"),
        ("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamMathFunctor>", "optimizer"),
        ("void rasterizeCudaFwdShaderKernel(RasterizeCudaFwdShaderParams)", "rasterization"),
        ("Memcpy HtoD (Pageable -> Device)", "memory"),
        ("aten::mkldnn_convolution", "convolution"),
    ],
)
def test_kernel_names_fall_into_their_family(summary, name, family):
    assert summary.family_of(name) == family


def test_cpu_profile_is_split_by_phase_and_family(summary):
    from torch.profiler import ProfilerActivity, profile, record_function

    conv = torch.nn.Conv2d(3, 8, 3)
    x = torch.randn(2, 3, 32, 32)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with record_function("texkit::vae_decode"):
            y = conv(x)
        with record_function("texkit::denoiser"):
            torch.nn.functional.scaled_dot_product_attention(*(torch.randn(1, 2, 64, 8),) * 3)
        y.relu().sum()
    out = summary.summarize(prof, wall_seconds=1.0)
    assert out["source"].startswith("CPU")
    assert out["by_phase_family"]["vae_decode"]["convolution"] > 0
    assert out["by_phase_family"]["denoiser"]["attention"] > 0
    assert out["host_gap_seconds"] == pytest.approx(1.0 - out["device_busy_seconds"])
    assert abs(sum(out["by_family"].values()) - out["kernel_seconds"]) < 1e-9


def test_gpu_annotation_ranges_are_not_counted_as_kernels(summary):
    """The GPU timeline repeats each record_function range as a user annotation spanning its kernels."""
    from types import SimpleNamespace

    cuda = torch.autograd.DeviceType.CUDA

    def device_event(name: str, start: float, end: float, annotation: bool = False) -> SimpleNamespace:
        return SimpleNamespace(name=name, device_type=cuda, time_range=SimpleNamespace(start=start, end=end), is_user_annotation=annotation)

    events = [
        device_event("texkit::denoiser", 0.0, 3e6, annotation=True),  # a 3 s range around the kernels below
        device_event("texkit::vae_decode", 3e6, 4e6),  # an annotation on a torch without the flag: known by its name
        device_event("sm90_xmma_fprop_implicit_gemm_f16f16_nhwc", 0.0, 1e6),  # 1 s convolution
        device_event("void cudnn::engines_precompiled::nchwToNhwcKernel", 1e6, 1.5e6),  # 0.5 s layout copy
    ]
    out = summary.summarize(SimpleNamespace(events=lambda: events), wall_seconds=5.0)
    assert out["kernel_seconds"] == pytest.approx(1.5) and out["kernel_launches"] == 2
    assert out["by_family"] == {"convolution": pytest.approx(1.0), "layout_copy": pytest.approx(0.5)}
    assert out["device_busy_seconds"] == pytest.approx(1.5) and out["host_gap_seconds"] == pytest.approx(3.5)
