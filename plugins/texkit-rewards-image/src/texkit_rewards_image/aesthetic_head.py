"""The LAION improved aesthetic predictor head (Schuhmann et al., "LAION-Aesthetics V2", 2022).

An MLP from an L2-normalised CLIP ViT-L/14 image embedding (768 numbers) to a score of about 1-10,
trained with an MSE loss on SAC, LAION-Logos and AVA ratings. The layer order matches the
published state dict (``sac+logos+ava1-l14-linearMSE.pth``: keys ``layers.{0,2,4,6,7}.{weight,bias}``),
so that file loads as is.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AestheticHead"]


class AestheticHead(nn.Module):
    """MLP ``embed_dim -> 1024 -> 128 -> 64 -> 16 -> 1`` with dropout after the first three layers.

    Layers: Linear(embed_dim, 1024), Dropout(0.2), Linear(1024, 128), Dropout(0.2), Linear(128, 64),
    Dropout(0.1), Linear(64, 16), Linear(16, 1). There is no activation between layers (as in the
    published predictor), so in eval mode the head is an affine map of the embedding.

    Args:
        embed_dim: size of the CLIP image embedding (768 for ViT-L/14).
    """

    def __init__(self, embed_dim: int = 768) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.layers = nn.Sequential(
            nn.Linear(embed_dim, 1024),
            nn.Dropout(0.2),
            nn.Linear(1024, 128),
            nn.Dropout(0.2),
            nn.Linear(128, 64),
            nn.Dropout(0.1),
            nn.Linear(64, 16),
            nn.Linear(16, 1),
        )

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """Score embeddings.

        Args:
            embedding: ``(N, embed_dim)`` L2-normalised CLIP image embeddings.

        Returns:
            ``(N,)`` aesthetic scores (about 1-10 with the LAION weights).
        """
        return self.layers(embedding).squeeze(-1)
