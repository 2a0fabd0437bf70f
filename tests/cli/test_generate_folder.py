"""`texkit generate` writes a temporary folder and swaps it in: the output is all old or all new."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from texkit.commands.generate import generate
from texkit.config import parse_config
from texkit.errors import TexkitError


def _cfg(out: Path, prompt: str = "a vase") -> object:
    return parse_config(
        {
            "mesh": {"path": "demo"},
            "prompts": {"text": [prompt]},
            "generator": {"name": "tiny", "options": {"steps": 1, "seed": 0}},
            "cameras": {"paint": {"elevation": [-20], "azimuth": [0]}},
            "texture": {"size": 32, "render_size": 32},
            "output": {"dir": str(out), "grid_views": 1},
            "device": "cpu",
        }
    )


def test_generate_refuses_then_replaces_whole_and_survives_an_interruption(tmp_path, monkeypatch):
    out = tmp_path / "gen"
    generate(_cfg(out, "first"))
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"texture.png", "views.png", "mesh.glb", "config.json"} <= set(first)

    with pytest.raises(TexkitError, match="--overwrite"):
        generate(_cfg(out, "second"))

    import texkit.session as session_mod

    def interrupted(self, folder, *args, **kwargs):
        (Path(folder) / "texture.png").write_bytes(b"half")
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(session_mod.Session, "preview", interrupted)
        with pytest.raises(KeyboardInterrupt):
            generate(_cfg(out, "second"), overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # the old outputs, complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen"]  # no temporary folder left

    generate(_cfg(out, "second"), overwrite=True)
    assert json.loads((out / "config.json").read_text())["prompts"]["text"] == ["second"]
