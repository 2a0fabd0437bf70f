"""Loading the plugin registry must not import transformers or diffusers (seconds on every CLI call).

The image rewards import transformers only when the aesthetic or clip_score reward builds or loads
its CLIP model (``clip_weights``), the diffusers generators only in their factories. Each check runs
the real registry loading in a fresh interpreter, because the test process has long imported both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("transformers", "diffusers")

_PROBE = """
import json, sys
import texkit
registry = texkit.get_registry()
report = {
    "rewards": registry.names("rewards"),
    "failures": [f.distribution for f in registry.failures],
    "plugin_modules": sorted(m for m in sys.modules if m.startswith(("texkit_rewards_image", "texkit_diffusers"))),
    "heavy_after_load": [name for name in %(heavy)r if name in sys.modules],
}
print(json.dumps(report))
"""


def _probe(plugins: str | None) -> dict:
    """Run the real registry loading in a subprocess; ``plugins`` limits TEXKIT_PLUGINS (None: all installed)."""
    env = dict(os.environ)
    env.pop("TEXKIT_PLUGINS", None)
    if plugins is not None:
        env["TEXKIT_PLUGINS"] = plugins
    code = _PROBE % {"heavy": HEAVY}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_image_plugin_loads_without_transformers():
    report = _probe("texkit-rewards-image")
    assert report["failures"] == []
    assert {"aesthetic", "clip_score", "jpeg_compressibility", "jpeg_incompressibility"} <= set(report["rewards"])
    # the modules that hold the lazy CLIP imports were really imported by the registry
    lazy = {"texkit_rewards_image.aesthetic", "texkit_rewards_image.aesthetic_weights", "texkit_rewards_image.clip_score", "texkit_rewards_image.clip_weights"}
    assert lazy <= set(report["plugin_modules"])
    assert report["heavy_after_load"] == [], "importing texkit_rewards_image pulls in " + ", ".join(report["heavy_after_load"])


def test_loading_every_installed_plugin_imports_neither_transformers_nor_diffusers():
    report = _probe(None)
    assert report["failures"] == []
    assert "aesthetic" in report["rewards"] and "texkit_diffusers.plugin" in report["plugin_modules"]
    assert report["heavy_after_load"] == [], (
        f"a plugin imports {', '.join(report['heavy_after_load'])} at registry load; "
        "move the import into the function that builds the model"
    )
