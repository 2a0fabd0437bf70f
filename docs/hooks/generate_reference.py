"""mkdocs hook: generates the configuration and CLI reference pages from the code at build time.

``mkdocs.yml`` lists this file under ``hooks:``. `on_files` adds two generated pages to the
documentation (they are never written into ``docs/``, so they cannot go stale):

- ``reference/configuration.md`` from the JSON schema of `texkit.config.RunConfig` and its
  sub-models (every section, key, type, default, constraint and description), plus the parameters of
  every installed reward and the factory options of every installed generator and renderer;
- ``reference/cli.md`` from the click command behind the typer app `texkit.commands.cli.app` (every
  command with its usage line, arguments, options, defaults and help text).

Run ``python docs/hooks/generate_reference.py OUT_DIR`` to write both pages as files for reading.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "GENERATED_PAGES",
    "cli_commands",
    "cli_reference_markdown",
    "config_reference_markdown",
    "on_files",
    "reward_page_links",
    "toml_literal",
]

# ----------------------------------------------------------------------------------------------
# markdown helpers


def _rst_to_md(text: str) -> str:
    """RST double-backtick literals (as in docstrings) become markdown code spans."""
    return re.sub(r"``(.+?)``", r"`\1`", text)


def _text_cell(text: str) -> str:
    """Free text for a table cell: RST double backticks become code spans; ``|``, ``<``, newlines escaped."""
    text = _rst_to_md(" ".join(text.split()))
    parts = re.split(r"(`[^`]*`)", text)  # keep code spans verbatim, escape HTML outside them
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(part.replace("|", "\\|"))
        else:
            out.append(part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|"))
    return "".join(out)


def _code_cell(text: str) -> str:
    """A code span for a table cell (pipes escaped so they do not split the row)."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def toml_literal(value: Any) -> str:
    """The TOML spelling of a default value (what a user would write in a run config).

    Args:
        value: a JSON-compatible value (str, bool, int, float, list, tuple, dict) or None.

    Returns:
        A TOML value, e.g. ``"front_short"``, ``5e-05``, ``true``, ``[0.9, 0.999]``, ``{}``;
        ``None`` becomes ``(not set)`` because TOML has no null.
    """
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_literal(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


# ----------------------------------------------------------------------------------------------
# JSON schema -> types and constraints

_SCALARS = {"string": "string", "integer": "integer", "number": "float", "boolean": "boolean", "null": "none"}


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _schema_type(prop: dict[str, Any]) -> str:
    """A short human type of one JSON-schema property (markdown, links to table types by anchor)."""
    if "$ref" in prop:
        name = _ref_name(prop["$ref"])
        return f"table ([{name}](#{name.lower()}))"
    if "anyOf" in prop:
        options = [_schema_type(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(options)
    if "const" in prop:
        return _code_cell(toml_literal(prop["const"]))
    if "enum" in prop:
        return "one of " + ", ".join(_code_cell(toml_literal(v)) for v in prop["enum"])
    kind = prop.get("type")
    if kind == "array":
        if "prefixItems" in prop:
            kinds = [_schema_type(p) for p in prop["prefixItems"]]
            if len(set(kinds)) == 1:
                return f"list of {len(kinds)} × {kinds[0]}"
            return "list [" + ", ".join(kinds) + "]"
        items = _schema_type(prop["items"]) if prop.get("items") else "values"
        return "list of " + (f"({items})" if " or " in items or " of " in items else items)
    if kind == "object":
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return "table of name → " + _schema_type(extra)
        return "table"
    if isinstance(kind, str):
        return _SCALARS.get(kind, kind)
    return "any"


_BOUNDS = (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"))


def _constraints(prop: dict[str, Any]) -> str:
    found = [f"{sign} {prop[key]}" for key, sign in _BOUNDS if key in prop]
    for option in prop.get("anyOf", []):
        found += [f"{sign} {option[key]}" for key, sign in _BOUNDS if key in option]
    return ", ".join(found)


def _field_rows(schema: dict[str, Any], defaults: dict[str, Any] | None) -> list[list[str]]:
    """Rows ``key | type | default | description`` for one object schema.

    ``defaults`` are the values of a default-constructed model (``None``: the model has no defaults
    as a whole, so a key's default is taken from the schema or shown as required).
    """
    required = set(schema.get("required", []))
    rows = []
    for key, prop in schema.get("properties", {}).items():
        type_text = _schema_type(prop)
        bounds = _constraints(prop)
        if bounds:
            type_text += f" ({bounds})"
        if defaults is not None and key in defaults:
            default = _code_cell(toml_literal(defaults[key]))
        elif "default" in prop:
            default = _code_cell(toml_literal(prop["default"]))
        elif key in required:
            default = "required"
        else:
            default = "—"
        rows.append([_code_cell(key), type_text, default, _text_cell(prop.get("description", ""))])
    return rows


def _doc(obj: Any) -> str:
    return _text_cell(inspect.getdoc(obj) or "")


# ----------------------------------------------------------------------------------------------
# configuration reference


def _model_defaults(model: Any) -> dict[str, Any] | None:
    try:
        return model().model_dump(mode="json")
    except Exception:  # a model with required fields has no default instance
        return None


def _installed_components(kind: str) -> list[tuple[str, Any, str]]:
    from texkit.registry import get_registry

    reg = get_registry()
    return [(name, reg.get(kind, name).obj, reg.get(kind, name).distribution) for name in reg.names(kind)]


def _components_section(kind: str, section: str) -> list[str]:
    """One table per installed renderer or generator, from its ``Params`` model (the registry's schema).

    Run-owned options (set from the run config, see `texkit.session.RUN_OWNED_OPTIONS`) are listed
    with where to set them.
    """
    from texkit.registry import get_registry
    from texkit.session import RUN_OWNED_OPTIONS

    reg = get_registry()
    out = []
    for name, factory, dist in _installed_components(kind):
        model = reg.params_model(kind, name)
        where = f"`{factory.__module__}.{factory.__qualname__}`"
        out.append(f"#### `{name}`\n\nFrom `{dist}`; factory {where}, options `{model.__name__}`.\n")
        rows = _field_rows(model.model_json_schema(), _model_defaults(model))
        if kind == "generators":
            rows = [r for r in rows if r[0].strip("`") not in RUN_OWNED_OPTIONS]
            owned = [f"`{k}` (set `{v}`)" for k, v in RUN_OWNED_OPTIONS.items() if k in model.model_fields]
        else:
            owned = []
        if rows:
            out.append(_table([f"`{section}.options` key", "type", "default", "description"], rows) + "\n")
        else:
            out.append("No options.\n")
        if owned:
            out.append("Owned by the run, not set here: " + ", ".join(owned) + ".\n")
    return out or ["None installed.\n"]


def _rewards_section(reward_pages: dict[str, str]) -> list[str]:
    out = []
    for name, cls, dist in _installed_components("rewards"):
        schema = cls.Params.model_json_schema()
        differentiable = "differentiable" if cls.differentiable else "not differentiable (scoring only)"
        page = f" Explained on [its page]({reward_pages[name]})." if name in reward_pages else ""
        out.append(f"#### `{name}`\n\n{_text_cell(cls.description)} From `{dist}`; {differentiable}.{page}\n")
        rows = _field_rows(schema, _model_defaults(cls.Params))
        if rows:
            out.append(_table([f"`rewards.{name}` key", "type", "default", "description"], rows) + "\n")
        else:
            out.append("No parameters besides `weight`.\n")
    return out or ["None installed.\n"]


def config_reference_markdown(reward_pages: dict[str, str] | None = None) -> str:
    """The configuration reference page (markdown) from `texkit.config.RunConfig`'s JSON schema.

    Args:
        reward_pages: ``{reward name: link to its documentation page, relative to this page}``;
            rewards listed here get a link.

    Returns:
        The page: top-level keys, one section per table of the run config (key, type with
        constraints, default as TOML, description), the table types used inside sections, then the
        parameters of each installed reward and the options of each installed generator and renderer.
    """
    from texkit.config import RunConfig

    schema = RunConfig.model_json_schema()
    defs = schema.get("$defs", {})
    defaults = RunConfig().model_dump(mode="json")
    models = {name: getattr(sys.modules[RunConfig.__module__], name, None) for name in defs}

    out = [
        "# Configuration reference",
        "",
        "Generated from the pydantic models in `texkit.config` when the documentation is built, so it "
        "always matches the code. A run config is a TOML file read by `texkit generate` and `texkit train`; "
        "every key is optional and takes the default shown here. Unknown keys are errors that name the "
        "closest valid key. Any value can be overridden on the command line with "
        "`--set section.key=value` (the value is parsed as TOML). See the "
        "[configuration guide](../guide/configuration.md) for a worked example.",
        "",
        f"{_doc(RunConfig)}",
        "",
        "## Top-level keys",
        "",
    ]
    top_rows, sections = [], []
    for key, prop in schema["properties"].items():
        if "$ref" in prop:
            sections.append((key, _ref_name(prop["$ref"]), False))
        elif prop.get("type") == "object" and isinstance(prop.get("additionalProperties"), dict):
            sections.append((key, _ref_name(prop["additionalProperties"]["$ref"]), True))
        else:
            top_rows.append(_field_rows({"properties": {key: prop}}, defaults)[0])
    out += [_table(["key", "type", "default", "description"], top_rows), ""]

    documented = set()
    for key, def_name, is_named_table in sections:
        documented.add(def_name)
        heading = f"[{key}.<name>]" if is_named_table else f"[{key}]"
        out += [f"## `{heading}`", "", _doc(models.get(def_name)) or _text_cell(defs[def_name].get("description", "")), ""]
        if is_named_table:
            out += [
                f"One table per {key[:-1]}, e.g. `[{key}.symmetry]`. Keys besides those below are passed to the "
                f"{key[:-1]} as its parameters (listed per installed {key[:-1]} below).",
                "",
            ]
        section_defaults = None if is_named_table else defaults.get(key)
        out += [_table(["key", "type", "default", "description"], _field_rows(defs[def_name], section_defaults)), ""]
        if key == "generator":
            out += ["### Installed generators", ""] + _components_section("generators", key)
        elif key == "renderer":
            out += ["### Installed renderers", ""] + _components_section("renderers", key)
        elif key == "rewards":
            out += ["### Installed rewards", ""] + _rewards_section(reward_pages or {})

    table_types = [name for name in defs if name not in documented]
    if table_types:
        out += ["## Table types", "", "Tables used as values inside the sections above.", ""]
        for name in table_types:
            out += [f"### {name}", "", _doc(models.get(name)) or _text_cell(defs[name].get("description", "")), ""]
            out += [_table(["key", "type", "default", "description"], _field_rows(defs[name], None)), ""]
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------------------------
# CLI reference


_PYTHON_TYPES = {int: "integer", float: "float", str: "text", bool: "boolean", Path: "path"}
_CLICK_TYPES = {"integer": "integer", "float": "float", "text": "text", "boolean": "boolean", "path": "path"}


def _base_annotation(annotation: Any) -> Any:
    """``Optional[X]`` -> X, ``list[X]`` -> X."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (list, tuple, typing.Union, types.UnionType) and args:
        return _base_annotation(args[0])
    return annotation


def _param_type(param: Any) -> str:
    """Type of a CLI parameter: duck-typed over click's parameters and typer's own (typer >= 0.25 forks click)."""
    if getattr(param, "is_flag", False) and not getattr(param, "count", False):
        return "flag"
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is not None:
        base = _base_annotation(annotation)
        text = _PYTHON_TYPES.get(base, getattr(base, "__name__", str(base)))
        low, high = getattr(param, "min", None), getattr(param, "max", None)
    else:  # plain click parameter
        kind = param.type
        choices = getattr(kind, "choices", None)
        text = "one of " + ", ".join(f"`{c}`" for c in choices) if choices else _CLICK_TYPES.get(kind.name, kind.name)
        text = "integer" if "int" in kind.name and "range" in kind.name else text
        text = "float" if "float" in kind.name and "range" in kind.name else text
        low, high = getattr(kind, "min", None), getattr(kind, "max", None)
    bounds = [f"{sign} {value}" for sign, value in (("≥", low), ("≤", high)) if value is not None]
    if bounds:
        text += f" ({', '.join(bounds)})"
    if getattr(param, "multiple", False):
        text += ", repeatable"
    return text


def _param_default(param: Any) -> str:
    if param.required:
        return "required"
    default = param.default
    if callable(default):
        return "computed"
    if default is None or default == [] or default == ():
        return "—"
    if getattr(param, "is_flag", False):
        return "on" if default else "off"
    return _code_cell(str(default))


def _usage(path: str, command: Any) -> str:
    """``texkit render [OPTIONS] MESH`` (argument names upper-cased, optional ones in brackets)."""
    pieces = [path]
    if any(p.param_type_name == "option" for p in command.params):
        pieces.append("[OPTIONS]")
    for p in command.params:
        if p.param_type_name == "argument":
            name = p.name.upper() + ("..." if p.nargs == -1 else "")
            pieces.append(name if p.required else f"[{name}]")
    return " ".join(pieces)


def _command_section(path: str, command: Any) -> list[str]:
    out = [f"## `{path}`", "", _rst_to_md(inspect.cleandoc(command.help or "")), ""]
    out += ["```text", _usage(path, command), "```", ""]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    options = [p for p in command.params if p.param_type_name == "option" and not getattr(p, "hidden", False)]
    if arguments:
        rows = [[_code_cell(p.name.upper()), _param_type(p), _param_default(p), _text_cell(p.help or "")] for p in arguments]
        out += ["**Arguments**", "", _table(["argument", "type", "default", "description"], rows), ""]
    if options:
        rows = []
        for p in options:
            flags = _code_cell(", ".join(p.opts))
            if p.secondary_opts:
                flags += " / " + _code_cell(", ".join(p.secondary_opts))
            rows.append([flags, _param_type(p), _param_default(p), _text_cell(p.help or "")])
        out += ["**Options**", "", _table(["option", "type", "default", "description"], rows), ""]
    return out


def cli_commands() -> list[tuple[str, Any]]:
    """``[(name, command), ...]`` of the ``texkit`` app, in the order ``texkit --help`` lists them."""
    import typer

    from texkit.commands.cli import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="texkit")
    return [(name, root.get_command(ctx, name)) for name in root.list_commands(ctx)]


def cli_reference_markdown() -> str:
    """The CLI reference page (markdown) from the command behind `texkit.commands.cli.app`.

    Returns:
        The page: the root command's help, then one section per sub-command with its usage line,
        its arguments and its options (type, default, help text), in the order ``texkit --help`` lists them.
    """
    import typer

    from texkit.commands.cli import app

    root = typer.main.get_command(app)
    out = [
        "# CLI reference",
        "",
        "Generated from the `texkit` command (`texkit.commands.cli.app`) when the documentation is built. "
        + _rst_to_md(root.help or ""),
        "",
        "Every command takes `--help`. Errors a user can cause (a missing file, an unknown reward, a bad "
        "config key) print one line starting with `texkit: error:` and exit with status 2. Plugins may add "
        "commands of their own (the `texkit_register_commands` hook); those are not listed here.",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    commands = cli_commands()
    for name, command in commands:
        summary = _text_cell(inspect.cleandoc(command.help or "").split("\n\n")[0])
        out.append(f"| [`texkit {name}`](#texkit-{name}) | {summary} |")
    out.append("")
    for name, command in commands:
        out += _command_section(f"texkit {name}", command)
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------------------------
# mkdocs hook

#: Generated pages: ``{path under docs/: function returning its markdown}``.
GENERATED_PAGES: dict[str, Callable[[Any], str]] = {
    "reference/configuration.md": lambda files: config_reference_markdown(reward_page_links(files)),
    "reference/cli.md": lambda files: cli_reference_markdown(),
}


def reward_page_links(files: Any) -> dict[str, str]:
    """Links from the configuration reference to each installed reward's page under ``rewards/``.

    A reward's page is ``rewards/<name>.md``, or else the first page under ``rewards/`` (other than
    ``index.md``) whose title line names the reward in backticks (one page may cover several rewards).

    Args:
        files: the build's files (objects with ``src_uri`` and ``content_string``), or None.

    Returns:
        ``{reward name: "../rewards/<page>.md"}`` for the rewards that have a page.
    """
    if files is None:
        return {}
    pages = {f.src_uri: f for f in files if f.src_uri.startswith("rewards/") and f.src_uri.endswith(".md")}
    links = {}
    for name, _, _ in _installed_components("rewards"):
        if f"rewards/{name}.md" in pages:
            links[name] = f"../rewards/{name}.md"
            continue
        for uri, page in sorted(pages.items()):
            title = page.content_string.lstrip().split("\n", 1)[0]
            if uri != "rewards/index.md" and title.startswith("#") and f"`{name}`" in title:
                links[name] = f"../{uri}"
                break
    return links


def on_files(files: Any, config: Any) -> Any:
    """mkdocs ``on_files`` event: add the generated pages (replacing a file of the same path, if any)
    and drop this hook's own folder from the site.

    Args:
        files: the `mkdocs.structure.files.Files` collection of the build.
        config: the mkdocs configuration.

    Returns:
        The same collection with the generated pages added.
    """
    from mkdocs.structure.files import File

    for own in [f for f in files if f.src_uri.startswith("hooks/")]:  # this hook is not a page or an asset
        files.remove(own)
    for src_uri, make_page in GENERATED_PAGES.items():
        existing = files.get_file_from_path(src_uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, src_uri, content=make_page(files)))
    return files


def write_pages(out_dir: Path) -> list[Path]:
    """Write every generated page under ``out_dir`` (for reading outside mkdocs); returns the paths."""
    written = []
    for src_uri, make_page in GENERATED_PAGES.items():
        path = Path(out_dir) / src_uri
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make_page(None), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_pages(Path(sys.argv[1] if len(sys.argv) > 1 else "site_generated")):
        print(written_path)
