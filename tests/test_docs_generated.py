"""The generated reference pages (docs/hooks/generate_reference.py) and the hand-written guides agree with the code.

The configuration and CLI reference pages are produced at build time by an mkdocs hook, so they
cannot go stale; these tests check that what the hook writes is complete and correct (every key,
type, default and description; every command, argument and option), that the hook adds the pages to
an mkdocs build, and that the TOML examples and ``--set`` lines of the configuration guide and the
commands of the quickstart are valid.
"""

from __future__ import annotations

import html
import importlib.util
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from texkit.config import RunConfig, _parse_value, apply_overrides, load_config, parse_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
HOOK = REPO / "docs" / "hooks" / "generate_reference.py"
GUIDE = REPO / "docs" / "guide" / "configuration.md"
QUICKSTART = REPO / "docs" / "guide" / "quickstart.md"


def _load_hook() -> Any:
    spec = importlib.util.spec_from_file_location("texkit_docs_generate_reference", HOOK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


hook = _load_hook()


@pytest.fixture(scope="module")
def config_page() -> str:
    return hook.config_reference_markdown()


@pytest.fixture(scope="module")
def cli_page() -> str:
    return hook.cli_reference_markdown()


def _sections(page: str) -> dict[str, str]:
    """``{heading text: body}`` for every ``##``/``###``/``####`` heading of a page."""
    parts = re.split(r"^#{2,4} (.+)$", page, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _rows(body: str) -> dict[str, list[str]]:
    """Table rows of a section keyed by the first cell's code span: ``{key: [type, default, description]}``."""
    rows = {}
    for line in body.splitlines():
        match = re.match(r"^\| `([^`]+)` \| (.*) \|$", line)
        if match:
            cells = re.split(r"(?<!\\) \| ", match.group(2))
            rows[match.group(1)] = cells
    return rows


def _unescape_code(cell: str) -> str:
    assert cell.startswith("`") and cell.endswith("`"), cell
    return cell.strip("`").replace("\\|", "|")


def _plain(text: str) -> str:
    """Markdown table text back to plain text: unescaped pipes and HTML entities, single backticks, one-space runs."""
    return " ".join(html.unescape(text.replace("\\|", "|")).replace("``", "`").split())


def _toml_value(literal: str) -> Any:
    return tomllib.loads(f"v = {literal}")["v"]


# -- toml_literal ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["front_short", 'say "hi" | <b>', 5e-05, 1e-08, -20.0, 0, 512, True, False, [0.9, 0.999], ["a", "b"], [], {"steps": 4, "seed": 0}, {}],
)
def test_toml_literal_round_trips(value):
    assert _toml_value(hook.toml_literal(value)) == value


def test_toml_literal_of_none_is_not_a_value():
    assert hook.toml_literal(None) == "(not set)"


# -- configuration reference ----------------------------------------------------------------------


def _section_models() -> dict[str, tuple[type[BaseModel], dict[str, Any] | None]]:
    """``{heading: (model, defaults of that section or None)}`` for every table of the run config."""
    defaults = RunConfig().model_dump(mode="json")
    found = {}
    for key, field in RunConfig.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            found[f"`[{key}]`"] = (ann, defaults[key])
        elif getattr(ann, "__origin__", None) is dict:
            found[f"`[{key}.<name>]`"] = (ann.__args__[1], None)
    return found


def test_config_page_has_every_section_key_and_description(config_page):
    sections = _sections(config_page)
    section_models = _section_models()
    assert len(section_models) >= 9
    for heading, (model, _) in section_models.items():
        assert heading in sections, f"missing section {heading}"
        rows = _rows(sections[heading])
        assert set(model.model_fields) <= set(rows), f"{heading}: missing keys {set(model.model_fields) - set(rows)}"
        for key, field in model.model_fields.items():
            if field.description:
                assert _plain(field.description) in _plain(rows[key][2]), (heading, key)
    top = _rows(sections["Top-level keys"])
    scalar_keys = {k for k in RunConfig.model_fields if f"`[{k}]`" not in sections and f"`[{k}.<name>]`" not in sections}
    assert scalar_keys == set(top) and "device" in top


def test_config_page_defaults_are_the_model_defaults(config_page):
    sections = _sections(config_page)
    for heading, (model, defaults) in _section_models().items():
        if defaults is None:
            defaults = model().model_dump(mode="json")
        rows = _rows(sections[heading])
        for key in model.model_fields:
            shown = rows[key][1]
            if defaults[key] is None:
                assert shown == "`(not set)`", (heading, key)
            else:
                assert _toml_value(_unescape_code(shown)) == defaults[key], (heading, key, shown)
    top = _rows(sections["Top-level keys"])
    assert _toml_value(_unescape_code(top["device"][1])) == RunConfig().device


def test_config_page_known_rows(config_page):
    sections = _sections(config_page)
    texture = _rows(sections["`[texture]`"])
    assert texture["size"][:2] == ["integer (≥ 16)", "`512`"]
    assert texture["background"][:2] == ["float (≥ 0, ≤ 1)", "`1.0`"]
    cameras = _rows(sections["`[cameras]`"])
    assert cameras["paint"][0] == "string or table ([CameraPath](#camerapath))"
    assert cameras["fov"][0] == "float (> 0, < 180)"
    training = _rows(sections["`[training]`"])
    assert training["truncation"][:2] == ['integer or `"all"`', '`"all"`']
    assert training["betas"][0] == "list of 2 × float"
    assert training["mixed_precision"][0] == 'one of `"no"`, `"fp32"`, `"fp16"`, `"bf16"`'
    generator = _rows(sections["`[generator]`"])
    assert generator["name"][1] == '`"tiny"`'
    path = _rows(sections["CameraPath"])
    assert path["elevation"][:2] == ["list of float", "required"]
    prompts = _rows(sections["`[prompts]`"])
    assert len(prompts["view_suffix"]) == 3 and "`<view>`" in prompts["view_suffix"][2]  # code span kept, row not broken


def test_text_cells_escape_html_and_pipes_outside_code_spans():
    """Free text like ``<front|side>`` must neither open an HTML tag nor split the table row."""
    cell = hook._text_cell("one of <front|side> or ``a|b``, `<view>`")
    assert cell == "one of &lt;front\\|side&gt; or `a\\|b`, `<view>`"


def test_config_page_lists_installed_components_with_their_parameters(config_page):
    from texkit.registry import get_registry

    reg = get_registry()
    sections = _sections(config_page)
    for name in reg.names("rewards"):
        cls = reg.reward_class(name)
        body = sections[f"`{name}`"]
        assert _plain(cls.description) in _plain(body), name
        assert set(cls.Params.model_fields) <= set(_rows(body)), name
    for kind in ("generators", "renderers"):
        for name in reg.names(kind):
            assert f"`{name}`" in sections, (kind, name)
    if "tiny" in reg.names("generators"):
        tiny = _rows(sections["`tiny`"])
        assert tiny["steps"][0].startswith("int") and "seed" in tiny and "lora_rank" in tiny
        assert "truncation" not in tiny  # run-owned: set under [training], listed as such


# -- CLI reference --------------------------------------------------------------------------------


def test_cli_page_has_every_command_argument_and_option(cli_page):
    sections = _sections(cli_page)
    commands = hook.cli_commands()
    assert {"demo", "render", "score", "generate", "train", "plugins", "rewards", "doctor", "new-reward"} <= {n for n, _ in commands}
    for name, command in commands:
        body = sections[f"`texkit {name}`"]
        assert f"(#texkit-{name})" in cli_page
        rows = _rows(body)
        for param in command.params:
            if param.param_type_name == "argument":
                key = param.name.upper()
            else:
                key = ", ".join(param.opts)
            assert key in rows, (name, key)
            assert _plain(param.help or "") in _plain(rows[key][2]), (name, key)
            assert (rows[key][1] == "required") == bool(param.required), (name, key)


def test_cli_page_known_answers(cli_page):
    sections = _sections(cli_page)
    render = sections["`texkit render`"]
    assert "```text\ntexkit render [OPTIONS] MESH\n```" in render
    rows = _rows(render)
    assert rows["--views"][:2] == ["integer (≥ 1)", "`8`"]
    assert rows["--out"][:2] == ["path", "required"]
    assert rows["--texture"][1] == "—"
    score = _rows(sections["`texkit score`"])
    assert score["--reward"][:2] == ["text, repeatable", "required"]
    assert _rows(sections["`texkit rewards`"])["--json"][:2] == ["flag", "off"]
    assert "texkit score [OPTIONS] MESH [TEXTURE]" in sections["`texkit score`"]  # TEXTURE optional: the mesh's own
    assert _rows(sections["`texkit score`"])["TEXTURE"][:2] == ["path", "—"]


# -- the mkdocs hook ------------------------------------------------------------------------------


def test_on_files_adds_the_generated_pages_and_drops_the_hook(tmp_path, monkeypatch):
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import File, Files

    monkeypatch.setattr(hook, "GENERATED_PAGES", {"reference/a.md": lambda files: "# A\n", "reference/b.md": lambda files: f"# B {len(files)}\n"})
    (tmp_path / "docs" / "hooks").mkdir(parents=True)
    (tmp_path / "docs" / "index.md").write_text("# Home\n")
    (tmp_path / "docs" / "hooks" / "generate_reference.py").write_text("")
    config = MkDocsConfig(config_file_path=str(tmp_path / "mkdocs.yml"))
    config.load_dict({"site_name": "t", "docs_dir": str(tmp_path / "docs"), "site_dir": str(tmp_path / "site")})
    errors, _ = config.validate()
    assert not errors, errors
    monkeypatch.setattr(config.plugins, "_current_plugin", "hooks", raising=False)  # set by mkdocs during events
    files = Files([File(p, config.docs_dir, config.site_dir, True) for p in ("index.md", "hooks/generate_reference.py")])
    files.append(File.generated(config, "reference/a.md", content="stale"))

    result = hook.on_files(files, config)

    uris = sorted(f.src_uri for f in result)
    assert uris == ["index.md", "reference/a.md", "reference/b.md"]
    generated = {f.src_uri: f.content_string for f in result if f.src_uri.startswith("reference/")}
    assert generated == {"reference/a.md": "# A\n", "reference/b.md": "# B 2\n"}  # pages see the build's files
    assert all(f.is_documentation_page() for f in result)


def test_hook_is_registered_in_mkdocs_yml():
    text = (REPO / "mkdocs.yml").read_text()
    assert re.search(r"^hooks:\n  - docs/hooks/generate_reference.py$", text, flags=re.MULTILINE)


# -- the configuration guide ----------------------------------------------------------------------


def _fenced(path: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", path.read_text(), flags=re.MULTILINE | re.DOTALL)


def test_guide_examples_parse_with_load_config(tmp_path):
    examples = _fenced(GUIDE, "toml")
    assert len(examples) == 2
    paths = []
    for i, text in enumerate(examples):
        paths.append(tmp_path / f"example_{i}.toml")
        paths[-1].write_text(text)
    full = load_config(paths[0])
    assert full.mesh.path == "meshes/vase.obj" and len(full.prompts.text) == 2
    assert full.generator.name == "tiny" and full.generator.options == {"steps": 4, "seed": 0, "lora_rank": 4}
    assert full.cameras.paint == "front_short"
    assert full.cameras.reward.azimuth == [45, 135, -135, -45] and full.cameras.learn == ["reward"]
    assert {name: r.weight for name, r in full.rewards.items()} == {"symmetry": 1.0, "curvature_color": 0.5}
    assert full.rewards["symmetry"].params() == {"patch": 3}
    assert full.rewards["curvature_color"].params() == {"mode": "smooth"}
    assert (full.training.steps, full.training.lr, full.output.dir) == (50, 1e-3, "runs/vase")

    sd = load_config(paths[1])
    assert sd.generator.name == "stable-diffusion"
    assert sd.generator.options["controlnet"].endswith("control_v11e_sd15_depth_aware_inpaint")
    assert (sd.training.truncation, sd.training.mixed_precision, sd.renderer.name) == (1, "fp16", "nvdiffrast")
    assert sd.rewards["aesthetic"].params()["clip_path"].startswith("/models/")


def test_guide_example_options_exist_in_the_factories_and_reward_params():
    """Every generator option and reward parameter the guide uses is one the installed code accepts."""
    from texkit.registry import get_registry

    reg = get_registry()
    for text in _fenced(GUIDE, "toml"):
        cfg = parse_config(tomllib.loads(text))
        if cfg.generator.name in reg.names("generators"):
            accepted = reg.params_model("generators", cfg.generator.name).model_fields
            assert set(cfg.generator.options) <= set(accepted), cfg.generator.name
        for name, reward in cfg.rewards.items():
            if name in reg.names("rewards"):
                assert set(reward.params()) <= set(reg.reward_class(name).Params.model_fields), name


def test_guide_set_lines_apply_to_the_example():
    example = tomllib.loads(_fenced(GUIDE, "toml")[0])
    commands = [line for block in _fenced(GUIDE, "bash") for line in block.splitlines() if "--set" in line]
    assert len(commands) >= 5
    for line in commands:
        words = shlex.split(line)
        overrides = [words[i + 1] for i, word in enumerate(words) if word == "--set"]
        dumped = parse_config(apply_overrides(tomllib.loads(_fenced(GUIDE, "toml")[0]), overrides)).model_dump()
        for item in overrides:
            dotted, raw = item.split("=", 1)
            value: Any = dumped
            for part in dotted.split("."):
                value = value[part]
            expected = _parse_value(raw)
            assert value == (tuple(expected) if isinstance(value, tuple) else expected), item
    cfg = parse_config(apply_overrides(example, ["prompts.text=[\"a wooden cow\", \"a porcelain cow\"]", "mesh.path=meshes/cow.obj", "rewards.palette.temperature=0.02"]))
    assert cfg.prompts.text == ["a wooden cow", "a porcelain cow"] and cfg.mesh.path == "meshes/cow.obj"
    assert cfg.rewards["palette"].params() == {"temperature": 0.02} and cfg.rewards["palette"].weight == 1.0


# -- the quickstart -------------------------------------------------------------------------------


def test_quickstart_documents_every_command_and_only_real_ones():
    text = QUICKSTART.read_text()
    names = {name for name, _ in hook.cli_commands()}
    mentioned = set(re.findall(r"^texkit ([a-z-]+)", "\n".join(_fenced(QUICKSTART, "bash")), flags=re.MULTILINE))
    assert names <= mentioned, f"not in the quickstart: {names - mentioned}"
    assert mentioned <= names, f"not texkit commands: {mentioned - names}"
    assert "make demo" in text and "make test" in text


def test_quickstart_config_parses(tmp_path):
    for i, text in enumerate(_fenced(QUICKSTART, "toml")):
        (tmp_path / f"q{i}.toml").write_text(text)
        cfg = load_config(tmp_path / f"q{i}.toml")
        assert cfg.generator.name == "tiny" and cfg.rewards


def test_reward_page_links_by_name_or_title(config_page):
    from types import SimpleNamespace

    from texkit.registry import get_registry

    names = get_registry().names("rewards")
    page = SimpleNamespace
    files = [
        page(src_uri="rewards/index.md", content_string="# Rewards: `symmetry`, `palette`\n"),
        page(src_uri="rewards/symmetry.md", content_string="# Symmetry\n"),
        page(src_uri="rewards/jpeg.md", content_string="# Rewards: `jpeg_compressibility`, `jpeg_incompressibility`\n"),
        page(src_uri="guide/palette.md", content_string="# `palette`\n"),
    ]
    links = hook.reward_page_links(files)
    expected = {"symmetry": "../rewards/symmetry.md", "jpeg_compressibility": "../rewards/jpeg.md", "jpeg_incompressibility": "../rewards/jpeg.md"}
    assert links == {k: v for k, v in expected.items() if k in names}
    assert hook.reward_page_links(None) == {}
    linked = hook.config_reference_markdown(reward_pages={"symmetry": "../rewards/symmetry.md"})
    assert "Explained on [its page](../rewards/symmetry.md)." in _sections(linked)["`symmetry`"]
    assert "Explained on" not in config_page


def test_every_installed_reward_has_a_page():
    """Each reward of the repository's plugins is explained on a page under docs/rewards/ (a page per reward or naming it in its title)."""
    from types import SimpleNamespace

    from texkit.registry import get_registry

    files = [SimpleNamespace(src_uri=p.relative_to(REPO / "docs").as_posix(), content_string=p.read_text()) for p in (REPO / "docs" / "rewards").glob("*.md")]
    reg = get_registry()
    repo_dists = {tomllib.loads(p.read_text())["project"]["name"] for p in (REPO / "plugins").glob("*/pyproject.toml")}
    built_in = {name for name in reg.names("rewards") if reg.get("rewards", name).distribution in repo_dists}
    assert built_in, "no reward from the repository's plugins is installed"
    missing = built_in - set(hook.reward_page_links(files))
    assert not missing, f"rewards without a page under docs/rewards/: {sorted(missing)}"
