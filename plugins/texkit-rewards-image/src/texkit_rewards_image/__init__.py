"""Image rewards for texkit.

* ``aesthetic``: the LAION improved aesthetic predictor (an MLP on CLIP ViT-L/14 image embeddings)
  averaged over reward views, differentiable with respect to the renders (and so to the texture
  and the cameras).
* ``clip_score``: text alignment, the cosine of CLIP image and text embeddings of the renders and
  the sample's prompt, averaged over reward views; differentiable, a metric and a regulariser.
* ``jpeg_compressibility`` / ``jpeg_incompressibility``: the JPEG-size rewards of DDPO
  (Black et al. 2023), for scoring only.
"""

from texkit_rewards_image.aesthetic import AestheticReward
from texkit_rewards_image.aesthetic_head import AestheticHead
from texkit_rewards_image.clip_score import ClipScore
from texkit_rewards_image.jpeg_compressibility import JpegCompressibility
from texkit_rewards_image.jpeg_incompressibility import JpegIncompressibility
from texkit_rewards_image.jpeg_size import jpeg_size_kb

__all__ = ["AestheticReward", "AestheticHead", "ClipScore", "JpegCompressibility", "JpegIncompressibility", "jpeg_size_kb"]
