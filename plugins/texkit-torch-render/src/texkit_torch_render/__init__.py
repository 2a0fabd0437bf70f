"""Pure-PyTorch differentiable rasteriser for texkit (registered as renderer ``torch``)."""

from texkit_torch_render.renderer import TorchRenderer

__all__ = ["TorchRenderer"]
