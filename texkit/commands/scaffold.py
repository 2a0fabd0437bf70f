"""``texkit new-reward``: write a new, pip-installable reward package.

`create_reward_package` writes a folder ``texkit-reward-<name>/`` with a pyproject that
declares the reward module in the ``texkit`` entry-point group, a module holding a
`texkit.Reward` subclass (a working "target brightness" reward to replace with your own
score), a passing test and a README. After ``pip install -e <folder>`` the reward is listed by
``texkit rewards`` and usable as ``[rewards.<name>]`` in run configs.
"""

from __future__ import annotations

import keyword
import re
import shutil
import tempfile
from pathlib import Path
from string import Template

from texkit.errors import TexkitError

__all__ = ["create_reward_package", "validate_reward_name", "package_names"]

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def validate_reward_name(name: str) -> str:
    """Check that ``name`` can be a reward name, a Python package suffix and a distribution name.

    Valid names are 1-40 characters of lower-case letters, digits and single underscores, start
    with a letter, do not end with an underscore and are not Python keywords.

    Returns:
        The name, unchanged.

    Raises:
        TexkitError: the name is not valid (the message says what a valid name looks like).
    """
    if (
        not isinstance(name, str)
        or not _NAME_PATTERN.match(name)
        or name.endswith("_")
        or "__" in name
        or keyword.iskeyword(name)
    ):
        raise TexkitError(
            f"invalid reward name {name!r}: use 1-40 lower-case letters, digits and single underscores, "
            "starting with a letter (e.g. 'stripes' or 'warm_colors')"
        )
    return name


def package_names(name: str) -> dict[str, str]:
    """The names derived from a reward name.

    Returns:
        ``{"name", "dist", "package", "class_name"}``, e.g. for ``warm_colors``:
        ``texkit-reward-warm-colors``, ``texkit_reward_warm_colors``, ``WarmColorsReward``.
    """
    validate_reward_name(name)
    return {
        "name": name,
        "dist": "texkit-reward-" + name.replace("_", "-"),
        "package": "texkit_reward_" + name,
        "class_name": "".join(part.capitalize() for part in name.split("_")) + "Reward",
    }


def create_reward_package(name: str, directory: Path) -> Path:
    """Write a new reward package ``<directory>/texkit-reward-<name>/`` and return its path.

    The folder holds ``pyproject.toml`` (entry point ``<name> = "texkit_reward_<name>.reward"`` in
    the ``texkit`` group), ``src/texkit_reward_<name>/reward.py`` (a ``Reward`` subclass with
    ``Params`` and a hook implementation), ``tests/test_<name>_reward.py`` and ``README.md``.
    The files are written into a temporary folder first and moved into place at the end, so a
    failure never leaves a half-written package.

    Args:
        name: the reward name used in configs and on the CLI (see `validate_reward_name`).
        directory: the folder to create the package in (created when missing).

    Returns:
        The path of the new package folder.

    Raises:
        TexkitError: invalid name, a name an installed reward already has (the two would collide),
            ``directory`` is a file, or the package folder already exists (it is never overwritten).
    """
    names = package_names(name)
    from texkit.registry import get_registry

    taken = get_registry().tables["rewards"].get(name)
    if taken is not None:
        raise TexkitError(f"reward name '{name}' is taken by the installed {taken.distribution}; choose another name")
    directory = Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise TexkitError(f"--dir {directory} is a file; give a folder to create the package in")
    target = directory / names["dist"]
    if target.exists():
        raise TexkitError(f"{target} already exists and is never overwritten; choose another --dir or name")
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{names['dist']}-", dir=directory))
    try:
        for relative, template in _TEMPLATES.items():
            path = staging / Template(relative).substitute(names)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(template).substitute(names), encoding="utf-8")
        if target.exists():  # created meanwhile by someone else
            raise TexkitError(f"{target} already exists and is never overwritten; choose another --dir or name")
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


_PYPROJECT = '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "A texkit reward: $name"
readme = "README.md"
requires-python = ">=3.10"
# license = "MIT"   # an SPDX expression: pick one before publishing
dependencies = ["texkit", "torch", "pydantic>=2"]

[project.optional-dependencies]
test = ["pytest"]

# This is what makes texkit find the reward: one entry point per module, group "texkit".
[project.entry-points.texkit]
$name = "$package.reward"

[tool.setuptools.packages.find]
where = ["src"]
'''

_INIT = '''\
"""$dist: the ``$name`` reward for texkit."""

from $package.reward import $class_name

__all__ = ["$class_name"]
'''

_REWARD = '''\
"""The ``$name`` reward (scaffolded by ``texkit new-reward``).

Replace the body of ``__call__`` with your own score; keep it a scalar tensor, higher is better.
The template scores how close the brightness of the painted texels is to a target::

    r = -sum_t w_t (Y_t - target)^2 / sum_t w_t,   Y = 0.2126 R + 0.7152 G + 0.0722 B (Rec. 709 luma)

with w the texture coverage (texels no view painted do not count).
"""

from __future__ import annotations

import pydantic
import texkit
import torch
from pydantic import Field

__all__ = ["$class_name"]

#: Rec. 709 luma weights of R, G and B.
LUMA_WEIGHTS = (0.2126, 0.7152, 0.0722)


class $class_name(texkit.Reward):
    """Closeness of the covered texels' brightness to a target brightness (higher is closer)."""

    name = "$name"
    description = "Closeness of the texture brightness to a target (template: replace with your score)."
    differentiable = True  # set False if the score has no gradient (then it is usable for scoring only)
    needs_renders = False  # set True to read ctx.renders (renders of the reward cameras)

    class Params(pydantic.BaseModel):
        """Parameters, validated from ``[rewards.$name]`` in the run config."""

        model_config = pydantic.ConfigDict(extra="forbid")
        target: float = Field(0.5, ge=0.0, le=1.0, description="Target brightness in [0, 1].")

    def __call__(self, ctx: texkit.RewardContext) -> texkit.RewardOutput:
        """Score ``ctx.texture`` (image ``(H, W, 3)`` in [0, 1], coverage ``(H, W, 1)``)."""
        image = ctx.texture.image[..., :3]
        weights = ctx.texture.coverage[..., 0]
        luma = (image * torch.tensor(LUMA_WEIGHTS, dtype=image.dtype, device=image.device)).sum(-1)
        total = weights.sum().clamp_min(1e-8)
        value = -(((luma - self.params.target) ** 2) * weights).sum() / total
        mean_brightness = float(((luma * weights).sum() / total).detach())
        return texkit.RewardOutput(value=value, metrics={"mean_brightness": mean_brightness})


@texkit.hookimpl
def texkit_register_rewards(register) -> None:
    """Tell texkit about the reward."""
    register($class_name)
'''

_TEST = '''\
"""Tests of the ``$name`` reward."""

from __future__ import annotations

from importlib import metadata

import pytest
import texkit
import torch

from $package.reward import $class_name


def _context(image: torch.Tensor, coverage: torch.Tensor | None = None) -> texkit.RewardContext:
    mesh = texkit.Mesh.from_arrays([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], uvs=[[0, 0], [1, 0], [0, 1]])
    return texkit.RewardContext(mesh=mesh, texture=texkit.Texture(image, coverage))


def test_texture_at_the_target_brightness_scores_zero():
    reward = $class_name(target=0.25)
    assert float(reward(_context(torch.full((4, 4, 3), 0.25))).value) == pytest.approx(0.0, abs=1e-7)


def test_black_texture_scores_minus_the_squared_target():
    reward = $class_name(target=0.5)
    assert float(reward(_context(torch.zeros(4, 4, 3))).value) == pytest.approx(-0.25)


def test_uncovered_texels_do_not_count():
    image = torch.zeros(1, 2, 3)
    image[0, 1] = 1.0
    coverage = torch.tensor([[[1.0], [0.0]]])
    assert float($class_name(target=0.0)(_context(image, coverage)).value) == pytest.approx(0.0)


def test_gradient_moves_the_texture_towards_the_target():
    image = torch.full((2, 2, 3), 0.2, requires_grad=True)
    $class_name(target=0.5)(_context(image)).value.backward()
    assert torch.all(image.grad > 0)


def test_unknown_parameter_is_a_config_error():
    with pytest.raises(texkit.ConfigError):
        $class_name(targett=0.5)


def test_registered_with_texkit(monkeypatch):
    try:
        metadata.distribution("$dist")
    except metadata.PackageNotFoundError:
        pytest.skip("install the package first: pip install -e .")
    monkeypatch.setenv("TEXKIT_PLUGINS", "$dist")
    assert "$name" in texkit.Registry().names("rewards")
'''

_README = '''\
# $dist

A [texkit](https://pypi.org/project/texkit/) reward: `$name`.

```bash
pip install -e '.[test]'   # install (editable) with the test extra
texkit rewards             # "$name" is listed
pytest tests               # run its tests
```

Use it in a run config:

```toml
[rewards.$name]
weight = 1.0
target = 0.5
```

Edit `src/$package/reward.py`: change `Params` and the body of `__call__`. A reward returns
`texkit.RewardOutput(value=<scalar tensor, higher is better>, metrics={...})`; read the texture
from `ctx.texture`, renders from `ctx.renders` (set `needs_renders = True`), the mesh from
`ctx.mesh`. Set `differentiable = False` when the score has no gradient.

Publish: `python -m build && twine upload dist/*` (see the texkit guide "Write a reward").
'''

_TEMPLATES: dict[str, str] = {
    "pyproject.toml": _PYPROJECT,
    "README.md": _README,
    "src/$package/__init__.py": _INIT,
    "src/$package/reward.py": _REWARD,
    "tests/test_${name}_reward.py": _TEST,
}
