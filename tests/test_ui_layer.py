"""The web UI reaches the library only through `dreamer.api` (and what it exports for front doors)."""

import ast
from pathlib import Path

import dreamer.api as api

UI = Path(__file__).resolve().parents[1] / "ui"


def _dreamer_imports(path: Path) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dreamer":
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] == "dreamer"]
    return found


def test_the_ui_imports_only_the_api_and_itself():
    wrong = [f"{p.name}: {module}" for p in sorted(UI.glob("*.py")) for module, _ in _dreamer_imports(p)
             if module != "dreamer.api" and not module.startswith("dreamer.ui")]
    assert wrong == []


def test_what_the_ui_takes_from_the_api_is_exported_on_purpose():
    taken = {name for p in UI.glob("*.py") for module, names in _dreamer_imports(p) if module == "dreamer.api" for name in names}
    assert taken and taken <= set(api.__all__), taken - set(api.__all__)
    assert all(hasattr(api, name) for name in api.__all__)


def test_component_summaries_follow_the_registry():
    assert set(api.COMPONENT_KINDS) == {"guidance", "representation", "prior"}
    assert set(api.component_summaries("guidance")) == {"sds", "vsd", "esd", "ism", "tsm", "asd", "video-sds"}
    assert api.component_summaries("representation")["nerf"] == "grid-encoded NeRF, volume rendered"
