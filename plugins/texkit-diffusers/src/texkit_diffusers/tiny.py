"""Tiny random Stable Diffusion + ControlNet components, built in code in about a second.

Same classes as the real model (UNet2DConditionModel, ControlNetModel, AutoencoderKL,
CLIPTextModel, CLIPTokenizer, DDIMScheduler), small configurations, seeded weights. The
tokenizer is a byte-level CLIP BPE tokenizer with no merges, written to a temporary folder, so
nothing is downloaded.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["build_tiny_components", "build_byte_tokenizer", "build_text_encoder", "sd15_ddim_scheduler", "TINY_RESOLUTION", "VAE_FACTOR"]

TINY_RESOLUTION = 64
VAE_FACTOR = 8
_HIDDEN = 32


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable character table (Radford et al. 2019)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def build_byte_tokenizer(max_length: int = 77) -> Any:
    """A CLIPTokenizer whose vocabulary is the 256 byte symbols (plus word-final forms) and no merges."""
    from transformers import CLIPTokenizer

    symbols = list(_bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    import inspect

    if "vocab" in inspect.signature(CLIPTokenizer.__init__).parameters:  # transformers >= 5
        return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length, pad_token="<|endoftext|>")
    folder = Path(tempfile.mkdtemp(prefix="texkit-tokenizer-"))  # transformers 4 reads files
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        vocab_file=str(folder / "vocab.json"),
        merges_file=str(folder / "merges.txt"),
        model_max_length=max_length,
        pad_token="<|endoftext|>",
    )


def build_text_encoder(tokenizer: Any, hidden_size: int, intermediate_size: int, layers: int, heads: int) -> Any:
    """A randomly initialised CLIPTextModel sized for ``tokenizer`` (77 positions, its special tokens)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            intermediate_size=intermediate_size,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


def sd15_ddim_scheduler() -> Any:
    """A DDIMScheduler with Stable Diffusion 1.5's noise schedule."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def build_tiny_components(seed: int = 0, conditioning_channels: int = 6) -> dict[str, Any]:
    """Random small components of an SD 1.x + ControlNet pipeline.

    Image size 64 px, VAE factor 8 as in SD 1.x (8x8 latents), UNet and ControlNet with two
    blocks of 32/64 channels (8 attention layers carrying LoRA), a 2-layer CLIP text encoder of
    width 32. One paint (4 DDIM steps, CFG) forward + backward takes a few tenths of a second on
    2 CPU cores (``benchmarks/test_generator_benchmark.py``).

    Args:
        seed: seeds every weight.
        conditioning_channels: 6 for the depth-aware inpainting ControlNet, 3 for a depth ControlNet.

    Returns:
        dict with keys unet, controlnet, vae, text_encoder, tokenizer, scheduler.
    """
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel

    tokenizer = build_byte_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=TINY_RESOLUTION // VAE_FACTOR,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=_HIDDEN,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    torch.manual_seed(seed + 1)
    controlnet = ControlNetModel(
        in_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        cross_attention_dim=_HIDDEN,
        attention_head_dim=8,
        norm_num_groups=8,
        conditioning_channels=conditioning_channels,
        conditioning_embedding_out_channels=(8, 16, 32, 32),  # 3 stride-2 convs: 64 px -> 8x8
    )
    torch.manual_seed(seed + 2)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 32, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=TINY_RESOLUTION,
    )
    torch.manual_seed(seed + 3)
    text_encoder = build_text_encoder(tokenizer, hidden_size=_HIDDEN, intermediate_size=64, layers=2, heads=4)
    scheduler = sd15_ddim_scheduler()
    return {"unet": unet, "controlnet": controlnet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "scheduler": scheduler}
