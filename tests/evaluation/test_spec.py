"""The eval spec: TOML in and out, defaults, command-line metrics, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from texkit.errors import ConfigError
from texkit.evaluation.spec import DEFAULT_SEEDS, EvalSpec, MetricSpec, load_spec, parse_metric

SPEC = """
adapters = ["runs/a"]
prompts = ["a marble bust"]
prompts_file = "{file}"
num_seeds = 3
meshes = ["demo", "sphere"]
samples = 4

[[metrics]]
name = "curvature_color"
params = {{ tau = -0.5 }}

[[metrics]]
name = "curvature_color"
label = "curvature_color_reference"
params = {{ tau = -0.5, compat = "reference" }}

[texture]
size = 64
"""


def test_toml_spec_round_trips(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a wooden chess piece\n\n a marble bust \n")
    path = tmp_path / "spec.toml"
    path.write_text(SPEC.format(file=prompts))
    spec = load_spec(path)
    assert spec.prompt_list() == ["a marble bust", "a wooden chess piece"]  # file lines appended, duplicates dropped
    assert spec.seed_list() == [0, 1, 2]
    assert [m.key for m in spec.metrics] == ["curvature_color", "curvature_color_reference"]
    assert spec.texture is not None and spec.texture.size == 64 and spec.generator is None
    written = tmp_path / "again.toml"
    written.write_text(spec.to_toml())
    assert load_spec(written) == spec


def test_defaults_and_overrides():
    empty = EvalSpec()
    assert empty.seed_list() == list(range(DEFAULT_SEEDS)) and empty.samples == 1 and empty.bootstrap_resamples == 10_000
    spec = load_spec(None, ["samples=3", "texture.size=32"], {"seeds": [5, 5, 2], "prompts": ["x"]})
    assert spec.samples == 3 and spec.texture.size == 32 and spec.seed_list() == [5, 2]
    with pytest.raises(ConfigError, match="no eval prompts"):
        empty.prompt_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("curvature_color", MetricSpec(name="curvature_color")),
        ("curvature_color:tau=-0.5", MetricSpec(name="curvature_color", params={"tau": -0.5})),
        ("curvature_color@ref:tau=-0.5,compat=reference", MetricSpec(name="curvature_color", label="ref", params={"tau": -0.5, "compat": "reference"})),
        ('jpeg_compressibility:source="renders",quality=90', MetricSpec(name="jpeg_compressibility", params={"source": "renders", "quality": 90})),
    ],
)
def test_command_line_metrics(text, expected):
    assert parse_metric(text) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"prompt": ["x"]}, "unknown eval spec key 'prompt'; did you mean 'prompts'?"),
        ({"metrics": [{"name": "a", "lable": "b"}]}, "unknown eval spec key 'metrics.0.lable'; did you mean 'label'?"),
        ({"metrics": [{"name": "a"}, {"name": "a"}]}, "two metrics are labelled 'a'"),
        ({"metrics": [{"name": "a", "label": "a b"}]}, "may hold only letters"),
        ({"num_seeds": 0}, "eval spec key 'num_seeds'"),
        ({"texture": {"sise": 3}}, "did you mean 'size'?"),
    ],
)
def test_bad_specs_are_one_line_errors(data, message):
    with pytest.raises(ConfigError) as err:
        load_spec(None, None, data)
    assert message in str(err.value) and "\n" not in str(err.value)


GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "evaluate.md"


def test_the_guide_documents_every_spec_key_and_its_example_loads(tmp_path):
    text = GUIDE.read_text()
    for key in EvalSpec.model_fields:
        shown = f"`[{key}]`" if key in ("generator", "renderer", "cameras", "texture") else f"`{key}`"
        assert shown in text, f"{key} is not in docs/guide/evaluate.md"
    (example,) = [block.split("\n", 1)[1] for block in text.split("```toml")[1:2]]
    path = tmp_path / "heldout.toml"
    path.write_text(example.split("```", 1)[0])
    spec = load_spec(path)
    assert [m.key for m in spec.metrics] == ["curvature_color", "curvature_color_reference", "jpeg_compressibility"]
    assert spec.texture is not None and spec.texture.model_dump(exclude_unset=True) == {"render_size": 256}
