"""The report of a training run: the reward curves and ``report.html``.

The report takes plain data (`ReportData`: numbers, strings and paths of files already
written), read from the run folder alone (`report_data`): ``texkit train`` builds it after
training (`write_run_report`); training itself writes no page (`texkit.training`), and painting
the before/after previews is the session's job (`texkit.session.Session.preview`). The page is
assembled from the shared page parts (`texkit.page_parts`), as ``texkit eval``'s page is.
The page shows, at a glance: the before and after views side by side (same cameras), what each
reward asks for where the reward can show it (`texkit.Reward.visualize`), a turntable of
each texture, the reward curves (one panel per reward, labelled axes), and the run's settings
and versions in a collapsible table; an offline WebGL view of the textured mesh (a few lines of
inline script, data inline). It needs no network.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

from texkit.io import atomic_write_text
from texkit.page_parts import figure, flatten, links, page, read_json, table
from texkit.run_record import PREVIEW_SEED

__all__ = ["plot_curves", "write_report", "report_data", "write_run_report", "ReportData", "Preview"]

Number = float | int
Scalar = str | float | int | bool | None


@dataclass
class Preview:
    """The files of one preview folder (``before/`` or ``after/``), as `Session.preview` writes them.

    Attributes:
        views: the view grid (``views.png``).
        texture: the UV texture (``texture.png``).
        turntable: animated turntable (``turntable.gif``), when written.
        glb: the textured mesh (``mesh.glb``), when written.
        rewards: ``{reward name: image}`` of what each reward asks for (``reward_<name>.png``), same cameras.
        cameras: the preview cameras: ``views``, ``radius``, ``fov``, ``elevation`` (degrees).
    """

    views: Path
    texture: Path
    turntable: Path | None = None
    glb: Path | None = None
    rewards: dict[str, Path] = field(default_factory=dict)
    cameras: dict[str, Number | list[Number]] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path, cameras: dict[str, Number | list[Number]] | None = None) -> "Preview | None":
        """The preview in ``folder`` (None when it has no ``views.png``); ``cameras`` as the config set them."""
        if not (folder / "views.png").exists():
            return None
        rewards = {p.stem.removeprefix("reward_"): p for p in sorted(folder.glob("reward_*.png"))}
        return cls(
            views=folder / "views.png",
            texture=folder / "texture.png",
            turntable=folder / "turntable.gif" if (folder / "turntable.gif").exists() else None,
            glb=folder / "mesh.glb" if (folder / "mesh.glb").exists() else None,
            rewards=rewards,
            cameras=dict(cameras or {}),
        )


@dataclass
class ReportData:
    """Everything ``report.html`` shows, as plain data.

    Attributes:
        run_dir: the run folder; the report is written there and links files relative to it.
        metrics: one dict per optimisation step (the lines of ``metrics.jsonl``; ``reward/<name>`` series are plotted).
        after: the preview painted after training.
        before: the preview painted before training (None when ``training.before_after`` is off).
        prompt: the prompt of the previews.
        seed: the seed of the previews.
        settings: ``{dotted config key: value}`` rows of the settings table.
        versions: ``{package: version}`` rows of the versions table.
        files: ``{label: path}`` links at the end of the page (only existing files are linked).
    """

    run_dir: Path
    metrics: list[dict[str, Scalar | list[Scalar]]]
    after: Preview
    before: Preview | None = None
    prompt: str = ""
    seed: int = PREVIEW_SEED
    settings: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


def report_data(run_dir: Path, before_dir: Path | None = None, prompt: str | None = None, seed: int = PREVIEW_SEED) -> ReportData:
    """Collect the report's data from a run folder: ``metrics.jsonl``, ``config.json``,
    ``versions.json``, the ``after/`` preview and the before preview.

    Args:
        run_dir: the run folder as ``texkit train`` leaves it.
        before_dir: the before preview; None: ``<run_dir>/before`` when it holds ``views.png`` and the
            run's config does not turn ``training.before_after`` off.
        prompt: the previews' prompt; None: the first prompt of the run's config.
        seed: the previews' seed.

    Raises:
        FileNotFoundError: ``after/views.png`` is missing (paint the after preview first).
    """
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.jsonl"
    metrics = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()] if metrics_path.exists() else []
    config = read_json(run_dir / "config.json")
    settings = flatten(config)
    cameras: dict[str, Number | list[Number]] = {"elevation": -20.0}
    for key, name in (("output.grid_views", "views"), ("cameras.radius", "radius"), ("cameras.fov", "fov")):
        if key in settings:
            cameras[name] = json.loads(settings[key])
    after = Preview.read(run_dir / "after", cameras)
    if after is None:
        raise FileNotFoundError(f"{run_dir / 'after' / 'views.png'} is missing: paint the after preview before the report")
    if before_dir is None and settings.get("training.before_after", "true") == "true":
        before_dir = run_dir / "before"
    files = {
        "after/mesh.glb": run_dir / "after" / "mesh.glb",
        "before/mesh.glb": Path(before_dir) / "mesh.glb" if before_dir is not None else run_dir / "before" / "mesh.glb",
        "LoRA adapter": run_dir / "adapter" / "pytorch_lora_weights.safetensors",
        "metrics.jsonl": metrics_path,
        "config.json": run_dir / "config.json",
        "versions.json": run_dir / "versions.json",
    }
    return ReportData(
        run_dir=run_dir,
        metrics=metrics,
        after=after,
        before=Preview.read(Path(before_dir), cameras) if before_dir is not None else None,
        prompt=_first_prompt(config) if prompt is None else prompt,
        seed=seed,
        settings=settings,
        versions=flatten(read_json(run_dir / "versions.json")),
        files={label: path for label, path in files.items() if path.exists()},
    )


def _first_prompt(config: dict[str, object]) -> str:
    """The first prompt of a run's config (``prompts.text``, then the first line of ``prompts.file``); "" if none is readable."""
    prompts = config.get("prompts")
    if not isinstance(prompts, dict):
        return ""
    text = prompts.get("text") or []
    if isinstance(text, list) and text:
        return str(text[0])
    try:
        lines = Path(str(prompts.get("file"))).read_text(encoding="utf-8").splitlines() if prompts.get("file") else []
    except OSError:
        return ""
    return next((line.strip() for line in lines if line.strip()), "")


def plot_curves(metrics: list[dict[str, Scalar | list[Scalar]]], path: Path, width_in: float = 4.0) -> "Figure":
    """Plot each ``reward/<name>`` series against the step, one panel per reward, into a PNG.

    ``reward/total`` gets its own panel only when it differs from the single reward it sums
    (with one reward of weight 1 the two curves are the same). Uses matplotlib's Agg canvas (no
    display needed). Returns the figure (one axes per panel, titled with the reward's name).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    keys = sorted({k for m in metrics for k in m if k.startswith("reward/") and k != "reward/total"})
    if "reward/total" in {k for m in metrics for k in m}:
        same = len(keys) == 1 and all(m.get("reward/total") == m.get(keys[0]) for m in metrics)
        if not same:
            keys.append("reward/total")
    panels = max(1, len(keys))
    columns = min(panels, 3)
    rows = math.ceil(panels / columns)
    fig = Figure(figsize=(width_in * columns, 3.0 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for i, key in enumerate(keys or ["reward"]):
        ax = fig.add_subplot(rows, columns, i + 1)
        series = [(m["step"], m[key]) for m in metrics if isinstance(m.get(key), (int, float)) and isinstance(m.get("step"), (int, float))]
        name = key.removeprefix("reward/")
        if series:
            steps, values = zip(*series)
            ax.plot(steps, values, color=f"C{i}", marker="." if len(series) < 40 else None, linewidth=1.5)
            ax.set_title(f"{name}: {values[0]:.4g} → {values[-1]:.4g}", fontsize=10)
        else:
            ax.set_title(f"{name}: no data", fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("reward (higher is better)" if name != "total" else "weighted sum of rewards")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    fig.savefig(path)
    return fig


def _cameras_text(cameras: dict[str, Number | list[Number]]) -> str:
    if "radius" not in cameras:
        return ""
    return (
        f"{cameras.get('views', '?')} cameras evenly spaced in azimuth from the front, elevation {cameras.get('elevation')}°, "
        f"radius {cameras['radius']}, fov {cameras.get('fov')}° (cameras.radius, cameras.fov)"
    )


_VIEWER_JS = """(function () {
  const canvas = document.getElementById("viewer"), note = document.getElementById("viewer-note");
  const data = JSON.parse(document.getElementById("viewer-data").textContent);
  const gl = canvas.getContext("webgl");
  if (!gl) { note.textContent = "No WebGL in this browser: see the turntables."; return; }
  function shader(type, src) { const s = gl.createShader(type); gl.shaderSource(s, src); gl.compileShader(s); return s; }
  const prog = gl.createProgram();
  gl.attachShader(prog, shader(gl.VERTEX_SHADER,
    "attribute vec3 p; attribute vec2 uv; uniform mat4 m; varying vec2 t;" +
    "void main() { t = vec2(uv.x, 1.0 - uv.y); gl_Position = m * vec4(p, 1.0); }"));
  gl.attachShader(prog, shader(gl.FRAGMENT_SHADER,
    "precision mediump float; varying vec2 t; uniform sampler2D tex; void main() { gl_FragColor = texture2D(tex, t); }"));
  gl.linkProgram(prog);
  if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) { note.textContent = "WebGL shaders did not link: see the turntables."; return; }
  gl.useProgram(prog);
  function attribute(name, values, size) {
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array(values), gl.STATIC_DRAW);
    const loc = gl.getAttribLocation(prog, name);
    gl.enableVertexAttribArray(loc); gl.vertexAttribPointer(loc, size, gl.FLOAT, false, 0, 0);
  }
  attribute("p", data.positions, 3); attribute("uv", data.uv, 2);
  gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, gl.createBuffer());
  gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, new Uint16Array(data.faces), gl.STATIC_DRAW);
  const tex = gl.createTexture();
  let yaw = 0, pitch = 0.35, spin = true, ready = false;
  function draw() {
    const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
    const r = [[cy, 0, sy], [sp * sy, cp, -sp * cy], [-cp * sy, sp, cp * cy]];
    const f = 1 / Math.tan(data.fov * Math.PI / 360), n = 0.1, far = 20, d = data.radius;
    const a = (far + n) / (n - far), b = 2 * far * n / (n - far);
    const rows = [[...r[0].map(x => f * x), 0], [...r[1].map(x => f * x), 0], [...r[2].map(x => a * x), b - a * d], [...r[2].map(x => -x), d]];
    const m = []; for (let c = 0; c < 4; c++) for (let k = 0; k < 4; k++) m.push(rows[k][c]);
    gl.viewport(0, 0, canvas.width, canvas.height); gl.clearColor(1, 1, 1, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT); gl.enable(gl.DEPTH_TEST);
    gl.uniformMatrix4fv(gl.getUniformLocation(prog, "m"), false, new Float32Array(m));
    gl.drawElements(gl.TRIANGLES, data.faces.length, gl.UNSIGNED_SHORT, 0);
  }
  function frame() { if (spin) { yaw += 0.01; } if (ready) { draw(); } requestAnimationFrame(frame); }
  const img = new Image();
  img.onload = function () {
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, gl.RGB, gl.UNSIGNED_BYTE, img);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    ready = true; note.textContent = "Drag to turn the textured mesh (WebGL, offline).";
  };
  img.src = data.texture;
  let last = null;
  canvas.addEventListener("pointerdown", e => { spin = false; last = [e.clientX, e.clientY]; canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointermove", e => {
    if (!last) return;
    yaw += (e.clientX - last[0]) * 0.01; pitch = Math.max(-1.5, Math.min(1.5, pitch + (e.clientY - last[1]) * 0.01));
    last = [e.clientX, e.clientY];
  });
  canvas.addEventListener("pointerup", () => { last = null; });
  requestAnimationFrame(frame);
})();"""


def _viewer(glb: Path | None, texture: Path, cameras: dict[str, Number | list[Number]]) -> str:
    """An offline WebGL view of the textured mesh (drag to turn), its data inline in the page.

    Hand-written (about 60 lines of script, no library, nothing fetched), so the page works from
    disk without a network. Returns "" when the mesh cannot be shown this way (no GLB, no UVs,
    more than 65535 vertices); the turntables show the same texture then.
    """
    if glb is None or not texture.exists():
        return ""
    import base64

    import numpy as np
    import trimesh

    try:
        mesh = trimesh.load(glb, force="mesh")
    except Exception:  # noqa: BLE001 - the 3D view is optional: an unreadable GLB leaves the turntables
        return ""
    uv = getattr(mesh.visual, "uv", None)
    if uv is None or len(mesh.vertices) > 65535 or len(mesh.faces) == 0:
        return ""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    scale = float(np.linalg.norm(vertices - centre, axis=1).max()) or 1.0
    data = {
        "positions": ((vertices - centre) / scale).round(4).ravel().tolist(),
        "uv": np.asarray(uv, dtype=np.float64).round(4).ravel().tolist(),
        "faces": np.asarray(mesh.faces).ravel().tolist(),
        "texture": "data:image/png;base64," + base64.b64encode(texture.read_bytes()).decode("ascii"),
        "radius": float(cameras.get("radius", 2.5)) if isinstance(cameras.get("radius", 2.5), (int, float)) else 2.5,
        "fov": float(cameras.get("fov", 50.0)) if isinstance(cameras.get("fov", 50.0), (int, float)) else 50.0,
    }
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (
        '<figure><canvas id="viewer" width="384" height="384" style="border:1px solid #ddd;touch-action:none"></canvas>'
        '<figcaption id="viewer-note">after (3D view)</figcaption></figure>'
        f'<script type="application/json" id="viewer-data">{payload}</script><script>{_VIEWER_JS}</script>'
    )


def write_report(data: ReportData) -> Path:
    """Write ``report.html`` (and ``reward_curves.png``) into ``data.run_dir``; returns the report's path."""
    run = data.run_dir
    plot_curves(data.metrics, run / "reward_curves.png")
    rows = []
    if data.metrics:
        first, last = data.metrics[0], data.metrics[-1]
        for key in sorted(k for k in last if k.startswith("reward/") and isinstance(last[k], (int, float))):
            a, b = first.get(key, float("nan")), last[key]
            trend = "up" if isinstance(a, (int, float)) and b > a else "down"
            rows.append(f'<tr><td>{html.escape(key.removeprefix("reward/"))}</td><td>{a:.4f}</td><td class="{trend}">{b:.4f}</td></tr>')
    after, before = data.after, data.before
    pair = figure(run, before.views if before else None, "before training") + figure(run, after.views, "after training")
    asks = "".join(figure(run, path, f"what {name} asks for (red: high, blue: low)") for name, path in after.rewards.items())
    turntables = figure(run, before.turntable if before else None, "before (turntable)", 192) + figure(run, after.turntable, "after (turntable)", 192)
    textures = figure(run, before.texture if before else None, "texture before", 192) + figure(run, after.texture, "texture after", 192)
    steps = len(data.metrics)
    body = f"""<p>{steps} training steps. Previews: prompt “{html.escape(data.prompt)}”, seed {data.seed}; {html.escape(_cameras_text(after.cameras))}.</p>
<h2>Before and after (same cameras)</h2>
<div class="pair">{pair}{asks}</div>
<h2>Rewards</h2>
<table><tr><th>reward</th><th>first step</th><th>last step</th></tr>{"".join(rows)}</table>
<figure><img src="reward_curves.png" alt="reward curves, one panel per reward"><figcaption>reward per training step (metrics.jsonl)</figcaption></figure>
<h2>3D view, turntables and textures</h2>
<div>{_viewer(after.glb, after.texture, after.cameras)}{turntables}{textures}</div>
<h2>Files</h2><p>{links(run, data.files)}</p>
<details><summary>Run settings ({len(data.settings)})</summary>{table(data.settings, ("setting", "value"))}</details>
<details><summary>Versions</summary>{table(data.versions, ("package", "version"))}</details>"""
    atomic_write_text(run / "report.html", page(f"texkit run: {run.name}", body))
    return run / "report.html"


def write_run_report(run_dir: Path) -> Path:
    """Build ``report.html`` of a finished run from the run folder's plain data alone (`report_data`, then
    `write_report`); what ``texkit train`` and ``texkit demo`` do after training. Returns the report's path."""
    return write_report(report_data(Path(run_dir)))
