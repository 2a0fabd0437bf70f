"""LoRA adapters on the UNet attention projections through peft (Hu et al. 2021, "LoRA").

Adapters are saved as ``pytorch_lora_weights.safetensors`` in the layout of
``StableDiffusionPipeline.save_lora_weights`` (keys ``unet.<module>.lora_A.weight`` ...), with the
peft ``LoraConfig`` (rank, ``lora_alpha``, targets) in the safetensors metadata the way diffusers
writes it, and a ``README.md`` model card naming the base model. So a plain diffusers pipeline of
the same base model reproduces texkit's UNet with ``pipe.load_lora_weights(folder)``, whatever the
alpha (without the metadata diffusers would assume ``alpha = rank``).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from texkit import WeightsError

__all__ = ["add_lora", "lora_parameters", "MergedLoRA", "save_lora", "load_lora", "model_card", "ADAPTER_NAME", "WEIGHT_NAME", "CARD_NAME"]

ADAPTER_NAME = "texkit"
WEIGHT_NAME = "pytorch_lora_weights.safetensors"
CARD_NAME = "README.md"
METADATA_KEY = "lora_adapter_metadata"  # diffusers' key: JSON of {"unet.<LoraConfig field>": value}
DEFAULT_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def add_lora(unet: Any, rank: int = 4, alpha: float | None = None, targets: tuple[str, ...] = DEFAULT_TARGETS) -> None:
    """Attach a LoRA adapter (A Gaussian, B zero: the model is unchanged until trained)."""
    from peft import LoraConfig

    config = LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else rank, target_modules=list(targets), init_lora_weights="gaussian")
    unet.add_adapter(config, adapter_name=ADAPTER_NAME)


def lora_parameters(unet: Any) -> list[torch.nn.Parameter]:
    """The LoRA matrices (the only trainable parameters)."""
    return [p for n, p in unet.named_parameters() if "lora_" in n]


def _adapter_config(unet: Any) -> dict[str, Any]:
    """The peft LoraConfig of texkit's adapter as a JSON-able dict (sets become sorted lists)."""
    config = unet.peft_config[ADAPTER_NAME].to_dict()
    return {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}


def _base_model(unet: Any) -> str | None:
    """The folder or hub id the UNet was loaded from (diffusers records it), None when built in code."""
    name = getattr(unet.config, "_name_or_path", None)
    if not name or name == "None":
        return None
    path = Path(name)
    # a UNet loaded with subfolder="unet" records ".../unet" for a folder; the model is the parent
    return str(path.parent) if path.name == "unet" and path.parent.is_dir() else str(name)


def model_card(base_model: str | None, config: dict[str, Any]) -> str:
    """A Hugging Face model card (YAML front matter + how to load) for a texkit LoRA adapter."""
    base = base_model or "texkit tiny random model (built in code by texkit_diffusers.tiny)"
    front = ["---", "library_name: diffusers", "tags:", "- lora", "- texkit", "- stable-diffusion", "- text-to-image"]
    if base_model:
        front.insert(1, f"base_model: {json.dumps(base_model)}")
    front.append("---")
    targets = ", ".join(config.get("target_modules") or [])
    load_base = json.dumps(base_model or "<the base model>")
    rank = config.get("r")
    alpha = config.get("lora_alpha", rank)  # none recorded: diffusers assumes lora_alpha = rank
    return "\n".join(
        front
        + [
            "",
            "# texkit LoRA adapter",
            "",
            "Trained with [texkit](https://github.com/texkit/texkit) (differentiable-reward fine-tuning of a",
            "texture painter) on the UNet attention projections of the base model below.",
            "",
            f"- base model: `{base}`",
            f"- rank: {rank}, alpha: {alpha} (scale {(alpha or 0) / max(rank or 1, 1):g})",
            f"- target modules: {targets}",
            f"- weights: `{WEIGHT_NAME}` (diffusers layout; the LoraConfig is in its metadata)",
            "",
            "## Use",
            "",
            "```python",
            "from diffusers import StableDiffusionControlNetPipeline, ControlNetModel",
            "",
            'controlnet = ControlNetModel.from_pretrained("<the ControlNet used with it>")',
            f"pipe = StableDiffusionControlNetPipeline.from_pretrained({load_base}, controlnet=controlnet)",
            'pipe.load_lora_weights("<this folder or repo>")',
            "```",
            "",
            "In texkit: `texkit generate config.toml --adapter <this folder>`.",
            "",
        ]
    )


def save_lora(unet: Any, directory: str | Path, base_model: str | None = None) -> Path:
    """Write the adapter and its model card to ``directory`` atomically (a temporary folder renamed into place).

    Args:
        unet: the UNet carrying texkit's adapter.
        directory: the adapter folder (replaced when it exists).
        base_model: folder or hub id for the model card; default: where the UNet was loaded from.

    Returns:
        The path of the weights file.
    """
    # the loader mixin StableDiffusionPipeline inherits save_lora_weights from: importing the pipeline
    # itself pulls in transformers' image processors, which print torchvision warnings
    from diffusers.loaders import StableDiffusionLoraLoaderMixin
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=ADAPTER_NAME))
    state = {k: v.detach().float().cpu().contiguous() for k, v in state.items()}
    config = _adapter_config(unet)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        StableDiffusionLoraLoaderMixin.save_lora_weights(
            tmp, unet_lora_layers=state, safe_serialization=True, unet_lora_adapter_metadata=dict(config)
        )
        (tmp / CARD_NAME).write_text(model_card(base_model or _base_model(unet), config), encoding="utf-8")
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory / WEIGHT_NAME


def saved_config(path: str | Path) -> dict[str, Any] | None:
    """The LoraConfig stored in an adapter file's metadata (None for files without it)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    raw = meta.get(METADATA_KEY)
    if not raw:
        return None
    return {k.removeprefix("unet."): v for k, v in json.loads(raw).items() if k.startswith("unet.")} or None


def load_lora(unet: Any, directory: str | Path) -> None:
    """Load weights written by `save_lora` into the unet's adapter."""
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = Path(directory) / WEIGHT_NAME
    if not path.exists():
        raise WeightsError(f"no LoRA adapter at {path}; pass the folder written by `texkit train` (it holds {WEIGHT_NAME})")
    saved = saved_config(path)
    ours = _adapter_config(unet)
    if saved is not None and saved.get("lora_alpha") is not None and saved.get("r") == ours.get("r"):
        if float(saved["lora_alpha"]) != float(ours.get("lora_alpha") or ours.get("r")):
            raise WeightsError(
                f"adapter at {path} was trained with lora_alpha={saved['lora_alpha']:g} but this generator has "
                f"lora_alpha={ours.get('lora_alpha'):g}; build the generator with lora_alpha={saved['lora_alpha']:g}"
            )
    state = load_file(str(path))
    state = {k.removeprefix("unet."): v for k, v in state.items() if k.startswith("unet.")}
    try:
        result = set_peft_model_state_dict(unet, convert_unet_state_dict_to_peft(state), adapter_name=ADAPTER_NAME)
    except RuntimeError as err:  # shape mismatch: another rank or another base model
        first = str(err).strip().splitlines()[0][:160]
        raise WeightsError(f"adapter at {path} does not fit this model ({first}); build the generator with the lora_rank/lora_targets it was trained with") from None
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise WeightsError(f"adapter at {path} does not match this model (e.g. key {unexpected[0]}); was it trained on another base model?")


class MergedLoRA:
    """Run each adapted linear layer as one matmul with the merged weight ``W' = W + s B A``.

    peft computes ``base(x) + s * B(A(x))`` at every call: with the adapter in fp32 and the model in
    fp16 that is a cast of ``x``, two thin fp32 matmuls, a scale, an add and a cast back, about 15
    operator calls per layer and call. The step of texkit is launch-bound at small batches, so those
    calls cost wall time though they do almost no arithmetic. Since ``(W + s B A) x = W x + s B (A x)``
    (Hu et al. 2021, "LoRA", eq. 3) the merged weight gives the same output with one matmul;
    `refresh` builds it (in fp32, then cast to the layer's dtype) once per painted view, differentiably
    in ``A`` and ``B``, and the 2 x K denoising calls of the view reuse it.

    The merged weights stay on the layers until the next `refresh`, so a UNet block recomputed by
    gradient checkpointing in the backward pass sees the weights its forward pass saw. A layer whose
    adapter is switched off (``set_lora_enabled(False)``) or whose ``A``/``B`` changed since the last
    `refresh` (an optimiser step) runs peft's own forward until the next refresh, so a stale merge
    is never used.

    Args:
        unet: a UNet carrying texkit's adapter (`add_lora`).
    """

    def __init__(self, unet: Any) -> None:
        from peft.tuners.lora.layer import Linear as LoraLinear

        self.layers = [m for m in unet.modules() if isinstance(m, LoraLinear) and ADAPTER_NAME in m.lora_A]
        for layer in self.layers:
            layer._texkit_merged = None
            layer._texkit_merged_versions = None
            # instance override (the class forward stays peft's); a partial, not a bound method, so that
            # the layer can be pickled (a saved compiled call pickles the models' structure: precompiled.py)
            layer.forward = functools.partial(_merged_forward, layer)

    def refresh(self) -> None:
        """Merge every layer's adapter into a fresh weight ``(out, in)`` (graph to ``A`` and ``B`` when grad is on)."""
        for layer in self.layers:
            base = layer.base_layer.weight
            down, up = layer.lora_A[ADAPTER_NAME].weight, layer.lora_B[ADAPTER_NAME].weight  # (r, in), (out, r)
            layer._texkit_merged = torch.addmm(base.to(up.dtype), up, down, alpha=layer.scaling[ADAPTER_NAME]).to(base.dtype)
            layer._texkit_merged_versions = (down._version, up._version)

    def drop_stale(self) -> None:
        """Drop the merges whose ``A`` or ``B`` changed in place since `refresh` (an optimiser step).

        The eager forward checks this itself at every call; a compiled forward cannot (reading a
        tensor's version counter breaks the graph and would specialise it on the counter's value),
        so the compiled denoising call runs this check before each call instead.
        """
        for layer in self.layers:
            if layer._texkit_merged is not None and _is_stale(layer):
                layer._texkit_merged = None

    def clear(self) -> None:
        """Drop the merged weights (every layer runs peft's forward again)."""
        for layer in self.layers:
            layer._texkit_merged = None


def _is_stale(layer: Any) -> bool:
    """Whether ``A`` or ``B`` of ``layer`` changed in place since its weights were merged."""
    down, up = layer.lora_A[ADAPTER_NAME].weight, layer.lora_B[ADAPTER_NAME].weight
    return (down._version, up._version) != layer._texkit_merged_versions


def _merged_forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """``F.linear(x, W + s B A, bias)`` while a current merge exists, else peft's forward.

    Under ``torch.compile`` the version check is skipped here (`MergedLoRA.drop_stale` runs it
    before every compiled call); the merged weight itself is a graph input, not a constant.
    """
    weight = self._texkit_merged
    if weight is None or self.disable_adapters or args or kwargs:
        return type(self).forward(self, x, *args, **kwargs)
    down = self.lora_A[ADAPTER_NAME].weight
    if torch.is_grad_enabled() and down.requires_grad and not weight.requires_grad:  # merged without grad, used with it
        return type(self).forward(self, x, *args, **kwargs)
    if not torch.compiler.is_compiling() and _is_stale(self):
        return type(self).forward(self, x, *args, **kwargs)
    return torch.nn.functional.linear(x, weight, self.base_layer.bias)
