"""The layer rules of docs/architecture.md ("Layers"), checked on the source: every `import` under dreamer/
(module level or inside a function) must point down the layer list.

front doors (cli, api, ui, batch, the amortised generator's use) → trainer → guidance → priors;
representations → render;
everything → cameras and shapes; shapes is the bottom (it imports only cameras and errors).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dreamer"
# modules (or packages) that only users call: they may import anything, nothing may import them
FRONT_DOORS = {"dreamer.api", "dreamer.cli", "dreamer.ui_launch", "dreamer.__main__", "dreamer.batch",
               "dreamer.amortized.use"}

# subpackage (or module) -> imports it may make within dreamer (prefixes); None = anything not forbidden
ALLOWED: dict[str, set[str]] = {
    "dreamer.shapes": {"dreamer.shapes", "dreamer.cameras", "dreamer.errors"},
    "dreamer.cameras": {"dreamer.cameras", "dreamer.errors"},
    # leaf modules every layer may use
    "dreamer.devices": {"dreamer.errors"},
    "dreamer.resources": {"dreamer.errors"},
    "dreamer.errors": set(),
}
# subpackage -> imports it must not make
FORBIDDEN: dict[str, set[str]] = {
    "dreamer.render": {"dreamer.representations", "dreamer.trainer", "dreamer.guidance", "dreamer.priors",
                       "dreamer.export", "dreamer.eval"},
    "dreamer.representations": {"dreamer.export", "dreamer.trainer", "dreamer.guidance", "dreamer.priors",
                                "dreamer.eval"},
    "dreamer.priors": {"dreamer.guidance", "dreamer.trainer", "dreamer.representations", "dreamer.export",
                       "dreamer.eval"},
    "dreamer.guidance": {"dreamer.trainer", "dreamer.representations", "dreamer.export", "dreamer.eval"},
    "dreamer.export": {"dreamer.trainer", "dreamer.guidance", "dreamer.priors", "dreamer.representations",
                       "dreamer.eval"},
    "dreamer.eval": {"dreamer.trainer", "dreamer.guidance", "dreamer.priors"},
    "dreamer.trainer": set(),
    # the embedded priors stand on their own: the trained one does not borrow from the reference one
    "dreamer.priors.tiny": {"dreamer.priors.reference", "dreamer.priors.reference_cache",
                            "dreamer.priors.reference_config", "dreamer.priors.reference_orbit",
                            "dreamer.priors.reference_video", "dreamer.priors.exact_mixture",
                            "dreamer.priors.exact_prior"},
}
# (importing module, imported module) pairs that break a rule and are being fixed elsewhere
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[str]:
    """Every dreamer module `path` imports, relative imports resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.append(".".join(base + ([node.module] if node.module else [])))
            else:
                found.append(node.module or "")
    return [name for name in found if name == "dreamer" or name.startswith("dreamer.")]


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _rules(module: str) -> tuple[set[str] | None, set[str]]:
    """(allowed prefixes or None, forbidden prefixes) for `module`: every rule of every enclosing package."""
    allowed: set[str] | None = None
    front_door = any(_within(module, door) for door in FRONT_DOORS)
    forbidden = set() if front_door else set(FRONT_DOORS)
    for package, names in ALLOWED.items():
        if _within(module, package):
            allowed = names if allowed is None else allowed & names
    for package, names in FORBIDDEN.items():
        if _within(module, package):
            forbidden |= names
    return allowed, forbidden


def _violations() -> list[tuple[str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        allowed, forbidden = _rules(module)
        for name in _imports(path):
            if any(_within(name, f) for f in forbidden) or (
                    allowed is not None and not any(_within(name, a) for a in allowed)):
                found.append((module, name))
    return found


def test_every_import_points_down_the_layers():
    bad = [pair for pair in _violations() if pair not in KNOWN_EXCEPTIONS]
    assert not bad, "layer violations:\n" + "\n".join(f"  {a} imports {b}" for a, b in bad)


def test_known_exceptions_are_still_needed():
    """An exception that no longer happens must leave the table (it would hide a regression)."""
    stale = KNOWN_EXCEPTIONS - set(_violations())
    assert not stale, f"fixed, remove from KNOWN_EXCEPTIONS: {sorted(stale)}"


@pytest.mark.parametrize("source, expected", [
    ("from dreamer.render.rays import camera_rays\n", ["dreamer.render.rays"]),
    ("def f():\n    import dreamer.export.mesh as m\n", ["dreamer.export.mesh"]),
    ("from ..render import volume\n", ["dreamer.render"]),
    ("from . import spec\nimport numpy\n", ["dreamer.shapes"]),
])
def test_the_scanner_sees_every_kind_of_import(tmp_path, monkeypatch, source, expected):
    package = tmp_path / "dreamer" / "shapes"
    package.mkdir(parents=True)
    path = package / "probe.py"
    path.write_text(source)
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path / "dreamer")
    assert _imports(path) == expected


def test_the_rules_catch_a_shape_importing_a_representation():
    allowed, forbidden = _rules("dreamer.shapes.raytrace")
    assert allowed is not None and not any(_within("dreamer.representations.base", a) for a in allowed)
    assert any(_within("dreamer.export.splats_ply", f) for f in _rules("dreamer.representations.gaussians")[1])
