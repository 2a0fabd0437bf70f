"""The studio's actions through its API (gradio_client), on the real server of `studio_server`.

``/paint`` writes the same folder ``texkit generate`` writes and returns its files; ``/score`` returns the
values ``texkit score`` computes for that texture (the same code path, compared here in-process); an
invalid option is the registry's one-line message, as on the command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(studio_server):
    from gradio_client import Client

    return Client(studio_server.url, verbose=False)


def test_paint_and_score_through_the_api(client, studio_server):
    glb, views, texture, folder, downloads, _samples, _mask, status = client.predict(
        "demo", "a glazed ceramic gourd", "", 7, 1, "tiny", json.dumps({"steps": 2, "seed": 0}), "config", "none", api_name="/paint"
    )
    assert folder.startswith("paints/") and status.startswith(f"painted {folder}")
    written = studio_server.workspace / folder
    assert {"texture.png", "views.png", "mesh.glb", "config.toml"} <= {p.name for p in written.iterdir()}
    assert Path(texture).read_bytes() == (written / "texture.png").read_bytes()  # the client fetched the file itself
    assert Path(glb).stat().st_size > 1000 and Path(views).stat().st_size > 0
    assert sorted(Path(d["path"] if isinstance(d, dict) else d).name for d in downloads) == ["mesh.glb", "texture.png"]

    rewards = {"curvature_color": {"weight": 1.0}, "symmetry": {"weight": 0.5, "patch": 3}}
    table, pictures, status = client.predict("demo", folder, json.dumps(rewards), "a glazed ceramic gourd", api_name="/score")
    assert status.startswith(f"scored {folder}")
    from texkit.commands.score import score_texture

    expected = score_texture("demo", written / "texture.png", ["curvature_color", "symmetry"], reward_params={"symmetry": {"patch": 3}},
                             size=64, prompt="a glazed ceramic gourd")
    for name, result in expected.items():
        assert f"| {name} | {result['value']:.6g} |" in table, table
    total = expected["curvature_color"]["value"] + 0.5 * expected["symmetry"]["value"]
    assert f"**{total:.6g}**" in table
    shown = [caption for _image, caption in ((p["image"], p["caption"]) if isinstance(p, dict) else p for p in pictures)]
    assert shown == [name for name in rewards if "picture" in expected_pictures(written, name)]


def expected_pictures(folder: Path, name: str) -> dict:
    """What `score_texture` says about the picture of one reward (a ``picture`` key when it has a ``visualize``)."""
    from texkit.commands.score import score_texture

    return score_texture("demo", folder / "texture.png", [name], size=64, pictures=folder.parent / f"{folder.name}-pictures", picture_views=2)[name]


def test_invalid_option_through_the_api_is_the_cli_message(client):
    from gradio_client.exceptions import AppError

    from texkit.errors import ConfigError
    from texkit.registry import get_registry

    with pytest.raises(ConfigError) as cli:
        get_registry().validate("generators", "tiny", {"steps": 0})
    with pytest.raises(AppError) as api:
        client.predict("demo", "a vase", "", 1, 1, "tiny", json.dumps({"steps": 0}), "config", "none", api_name="/paint")
    assert str(api.value) == str(cli.value)
