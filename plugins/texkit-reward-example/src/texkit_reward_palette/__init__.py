"""texkit-reward-palette: the ``palette`` reward, an example of a third-party texkit reward.

It depends only on the public texkit API (the names in ``texkit.__all__``).
"""

from texkit_reward_palette.reward import PaletteReward, palette_agreement, soft_min_distance

__all__ = ["PaletteReward", "palette_agreement", "soft_min_distance"]
