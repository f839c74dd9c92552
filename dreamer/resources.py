"""Files shipped with the package: the presets, the embedded weights, the web UI.

In the checkout they are the top-level folders `configs/`, `assets/` and `ui/`; pyproject.toml maps
them into the package as `dreamer.configs`, `dreamer.assets` and `dreamer.ui`, so a wheel carries
them and an editable install sees the checkout's folders. Code finds them here, through
`importlib.resources`, never by walking up from `__file__`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dreamer.errors import UserError

SHIPPED_PREFIX = "assets/"  # how presets and defaults name a shipped folder, e.g. "assets/priors/tiny"


def _package_folder(package: str) -> Path:
    root = resources.files(package)
    if not isinstance(root, Path):  # a zipped install: the weights must be real files for safetensors
        raise UserError(f"{package} is installed inside an archive ({root}); install dreamer unpacked")
    return root


def configs_dir() -> Path:
    """The folder of preset YAML files."""
    return _package_folder("dreamer.configs")


def assets_dir() -> Path:
    """The folder of shipped weights (priors/tiny, evaluator)."""
    return _package_folder("dreamer.assets")


def shipped(relative: str) -> Path:
    """`"assets/priors/tiny"` (or `"priors/tiny"`) → that shipped folder or file."""
    inside = relative[len(SHIPPED_PREFIX):] if relative.startswith(SHIPPED_PREFIX) else relative
    return assets_dir().joinpath(*Path(inside).parts)


def resolve_weights(path: str | Path) -> Path:
    """A weights path as users write it: absolute, relative to the current folder, or a shipped
    `assets/...` folder (looked up in the package when the current folder has no such path)."""
    given = Path(path).expanduser()
    if given.is_absolute() or given.exists() or not str(path).startswith(SHIPPED_PREFIX):
        return given
    return shipped(str(path))
