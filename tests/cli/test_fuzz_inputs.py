"""Property tests: any OBJ text and any config TOML either loads or fails with one-line TexkitError.

Nothing else may escape (no IndexError, UnicodeDecodeError, pydantic or tomllib errors), and the
message never spans lines, so the CLI's one-line contract holds for inputs nobody wrote by hand.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from texkit.config import RunConfig, load_config
from texkit.errors import ConfigError, MeshError, TexkitError
from texkit.geometry.mesh import Mesh

FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(lambda x: repr(float(x))),
    st.integers(-3, 3).map(str),
    st.sampled_from(["nan", "-inf", "1e40", "", "x", "0x10", "1,5"]),
)
_index = st.one_of(st.integers(-6, 12).map(str), st.sampled_from(["0", "a", "", "1/", "1//", "1/2/3", "2/x"]))
_corner = st.one_of(_index, st.tuples(st.integers(-2, 8), st.integers(-2, 8)).map(lambda t: f"{t[0]}/{t[1]}"))
_text = st.text(max_size=20)
_line = st.one_of(
    st.lists(_number, min_size=0, max_size=4).map(lambda xs: "v " + " ".join(xs)),
    st.lists(_number, min_size=0, max_size=3).map(lambda xs: "vt " + " ".join(xs)),
    st.lists(_corner, min_size=0, max_size=5).map(lambda xs: "f " + " ".join(xs)),
    _text.map(lambda t: "# " + t),
    st.sampled_from(["o part", "g group", "s off", "usemtl none", "mtllib missing.mtl", "vn 0 0 1", "l 1 2", ""]),
    _text,
)
_TETRA = ["v 0 0 0", "v 1 0 0", "v 0 1 0", "v 0 0 1", "f 1 3 2", "f 1 2 4", "f 1 4 3", "f 2 3 4"]


@st.composite
def obj_bytes(draw) -> bytes:
    """A mostly valid tetrahedron with fuzzed lines inserted, and comments in UTF-8 or Latin-1."""
    lines = list(_TETRA) if draw(st.booleans()) else []
    for _ in range(draw(st.integers(0, 8))):
        lines.insert(draw(st.integers(0, len(lines))), draw(_line))
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "cp1252"]))
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):  # a raw byte that no encoding likes
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(min_size=1, max_size=3)) + data[cut:]
    return data


@FUZZ
@given(obj_bytes())
def test_any_obj_text_loads_or_fails_in_one_line(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.obj"
        path.write_bytes(data)
        try:
            mesh = Mesh.load(path)
        except MeshError as err:
            assert "\n" not in str(err) and str(err)
        else:
            assert mesh.num_faces > 0 and bool(mesh.vertices.isfinite().all())


_SECTIONS = {
    "mesh": ["path", "normalize", "per_rank", "pth"],
    "prompts": ["text", "file", "prefix", "negative", "view_suffix"],
    "generator": ["name", "options"],
    "renderer": ["name", "options"],
    "cameras": ["paint", "reward", "radius", "fov", "learn", "learn_angles"],
    "texture": ["size", "render_size", "cos_thresh", "trimap_sharpness", "background"],
    "training": ["steps", "lr", "betas", "truncation", "mixed_precision", "grad_accum", "checkpoint_every", "sed"],
    "output": ["dir", "grid_views"],
    "rewards.symmetry": ["weight", "patch", "nosuch"],
    "bogus": ["x"],
}
_value = st.recursive(
    st.one_of(
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.text(max_size=12),
        st.sampled_from(["demo", "all", "fp16", "front_short", "unit_sphere", "tiny", "paint"]),
    ),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=6,
)


@st.composite
def config_text(draw) -> bytes:
    """TOML with known and misspelt sections and keys, values of every type, and some broken syntax."""
    out = []
    for section in draw(st.lists(st.sampled_from(sorted(_SECTIONS)), max_size=5, unique=True)):
        out.append(f"[{section}]")
        for key in draw(st.lists(st.sampled_from(_SECTIONS[section]), max_size=4, unique=True)):
            out.append(f"{key} = {json.dumps(draw(_value))}")  # JSON scalars and arrays are TOML (mostly)
    if draw(st.booleans()):
        out.insert(draw(st.integers(0, len(out))), draw(st.sampled_from(["[mesh", "x =", "= 1", "[[a]]", "k = 'unterminated", "\x00"])))
    data = "\n".join(out).encode("utf-8")
    if draw(st.integers(0, 5)) == 0:
        data += draw(st.binary(max_size=4))
    return data


@FUZZ
@given(config_text())
def test_any_config_loads_or_fails_in_one_line(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.toml"
        path.write_bytes(data)
        try:
            cfg = load_config(path)
        except ConfigError as err:
            assert "\n" not in str(err) and str(err)
        else:
            assert isinstance(cfg, RunConfig)


@FUZZ
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30), max_size=3))
@example(["=1"])
@example(["\n"])
def test_any_set_override_loads_or_fails_in_one_line(overrides):
    try:
        load_config(None, overrides)
    except TexkitError as err:
        assert "\n" not in str(err) and str(err)
