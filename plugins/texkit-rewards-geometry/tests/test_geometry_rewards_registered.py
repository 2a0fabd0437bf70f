"""Each geometry reward is found by its name through the ``texkit`` entry points (a plugin module whose
``texkit_register_rewards`` lost its ``@texkit.hookimpl`` would register nothing, and a run config naming
the reward would fail)."""

from __future__ import annotations

import pytest
from texkit_rewards_geometry.camera_pose import CameraPose
from texkit_rewards_geometry.curvature_alignment import CurvatureAlignment
from texkit_rewards_geometry.curvature_color import CurvatureColor
from texkit_rewards_geometry.feature_emphasis import FeatureEmphasis
from texkit_rewards_geometry.reference import Reference
from texkit_rewards_geometry.symmetry import Symmetry

from texkit.registry import Registry

REWARDS = {
    "camera_pose": CameraPose,
    "curvature_alignment": CurvatureAlignment,
    "curvature_color": CurvatureColor,
    "feature_emphasis": FeatureEmphasis,
    "reference": Reference,
    "symmetry": Symmetry,
}


@pytest.fixture(scope="module")
def registry() -> Registry:
    """A registry that loads only this distribution's entry points, afresh."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEXKIT_PLUGINS", "texkit-rewards-geometry")
        return Registry()


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_each_reward_is_registered_by_its_entry_point(registry, name):
    entry = registry.get("rewards", name)
    assert entry.distribution == "texkit-rewards-geometry"
    assert entry.obj.__name__ == REWARDS[name].__name__
    assert registry.reward_class(name).name == name


def test_the_distribution_registers_exactly_its_six_rewards(registry):
    assert not registry.failures
    assert sorted(registry.names("rewards")) == sorted(REWARDS)
