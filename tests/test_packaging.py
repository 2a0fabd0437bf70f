"""Packaging metadata: one version source, declared imports, readme/license, the `all` extra.

The wheels themselves are built and installed into fresh venvs by ``.ci/wheels.sh`` (called from
``.ci/run``); these checks are the fast, static half.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

import texkit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ["texkit-diffusers", "texkit-nvdiffrast", "texkit-rewards-geometry", "texkit-rewards-image", "texkit-torch-render"]
# Import names that are not distribution names, and the standard library / own packages.
IMPORT_TO_DIST = {"PIL": "pillow", "yaml": "pyyaml", "diffrp_nvdiffrast": "diffrp-nvdiffrast", "nvdiffrast": "diffrp-nvdiffrast"}
OPTIONAL_IMPORTS = {"xformers", "pytest"}  # imported lazily behind a check, declared as extras


def _pyproject(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _dist_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _imports(src: Path) -> set[str]:
    names: set[str] = set()
    for file in src.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _third_party(names: set[str], own: set[str]) -> set[str]:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    return {IMPORT_TO_DIST.get(n, n).lower().replace("_", "-") for n in names if n not in stdlib and n not in own}


def test_version_is_single_sourced():
    version = (ROOT / "texkit" / "VERSION").read_text(encoding="utf-8").strip()
    assert texkit.__version__ == version
    core = _pyproject(ROOT / "pyproject.toml")
    assert "version" in core["project"]["dynamic"]
    assert core["tool"]["setuptools"]["dynamic"]["version"] == {"file": "texkit/VERSION"}
    major_minor = tuple(int(p) for p in version.split(".")[:2])
    for name in FIRST_PARTY:
        folder = ROOT / "plugins" / name
        meta = _pyproject(folder / "pyproject.toml")
        assert "version" not in meta["project"], f"{name} hard-codes its version"
        assert (folder / "VERSION").is_symlink() and (folder / "VERSION").resolve() == (ROOT / "texkit" / "VERSION")
        core_req = [r for r in meta["project"]["dependencies"] if _dist_name(r) == "texkit"]
        assert len(core_req) == 1, f"{name} must depend on texkit once"
        low = re.search(r">=\s*([\d.]+)", core_req[0])
        high = re.search(r"<\s*([\d.]+)", core_req[0])
        assert low and high, f"{name}: pin a compatible core range, not bare texkit: {core_req[0]}"
        as_tuple = lambda v: tuple(int(p) for p in v.split("."))  # noqa: E731
        assert as_tuple(low.group(1)) <= major_minor < as_tuple(high.group(1)), f"{name}: {core_req[0]} excludes {version}"


@pytest.mark.parametrize("name", ["texkit", *FIRST_PARTY, "texkit-reward-example"])
def test_every_distribution_has_readme_and_license(name):
    folder = ROOT if name == "texkit" else ROOT / "plugins" / name
    meta = _pyproject(folder / "pyproject.toml")["project"]
    assert meta.get("readme") == "README.md" and (folder / "README.md").is_file()
    assert meta.get("license") == "MIT"
    assert meta.get("license-files") == ["LICENSE"] and (folder / "LICENSE").is_file()
    assert (folder / "LICENSE").read_text(encoding="utf-8") == (ROOT / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "name,src",
    [("texkit", "texkit")] + [(n, f"plugins/{n}/src") for n in [*FIRST_PARTY, "texkit-reward-example"]],
)
def test_imports_are_declared(name, src):
    folder = ROOT if name == "texkit" else ROOT / "plugins" / name
    meta = _pyproject(folder / "pyproject.toml")["project"]
    own = {p.name for p in (ROOT / src).iterdir() if p.is_dir()} | {"texkit"}
    declared = {_dist_name(r) for r in meta["dependencies"]}
    optional = {_dist_name(r) for reqs in meta.get("optional-dependencies", {}).values() for r in reqs}
    # The core's doctor imports a plugin lazily; pytest is for scaffolded tests. Not click: recent typer (0.29)
    # bundles its own (typer._click) and no longer installs it.
    allowed = optional | OPTIONAL_IMPORTS | {n.replace("_", "-") for n in FIRST_PARTY}
    missing = _third_party(_imports(ROOT / src), own) - declared - allowed
    assert not missing, f"{name} imports {sorted(missing)} but does not declare them in pyproject.toml"


def test_all_extra_names_every_first_party_plugin():
    extras = _pyproject(ROOT / "pyproject.toml")["project"]["optional-dependencies"]
    assert {_dist_name(r) for r in extras["all"]} == set(FIRST_PARTY)


def test_install_hints_name_real_distributions():
    from texkit import defaults

    for kind, table in defaults.PROVIDERS.items():
        for name, dist in table.items():
            assert dist in FIRST_PARTY, f"{kind} '{name}' hint names {dist}, which is not a first-party plugin"


def test_package_data_ships_every_data_file():
    """The core wheel holds every file under texkit/data (the step model, the presets): each matches a
    ``[tool.setuptools.package-data]`` pattern (.ci/wheels.sh then runs `texkit presets` from the wheel)."""
    from fnmatch import fnmatch

    patterns = _pyproject(ROOT / "pyproject.toml")["tool"]["setuptools"]["package-data"]["texkit"]
    files = [p.relative_to(ROOT / "texkit").as_posix() for p in (ROOT / "texkit" / "data").rglob("*") if p.is_file()]
    assert any(f.startswith("data/presets/") for f in files)

    def shipped(path: str, pattern: str) -> bool:  # setuptools globs: one pattern part per folder level
        parts, wanted = path.split("/"), pattern.split("/")
        return len(parts) == len(wanted) and all(fnmatch(a, b) for a, b in zip(parts, wanted))

    missing = [f for f in files if not any(shipped(f, pattern) for pattern in patterns)]
    assert missing == [], f"not in the core wheel (add a package-data pattern in pyproject.toml): {missing}"
