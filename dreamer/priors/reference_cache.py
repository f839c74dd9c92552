"""On-disk cache of reference sets for the exact priors (`reference`, `reference-video`).

One safetensors file per reference set, named `<label>-<key>.safetensors`, where `key` hashes
everything that changes the renders (object spec, render settings, the shape library's source,
a format version). Files are written atomically (temp file in the same folder + `os.replace`),
so a crashed or concurrent writer never leaves a half file under the final name. Loading is
defensive: a missing, unreadable, mismatched or malformed file returns None and the caller
re-renders; nothing here raises on a bad cache file.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# Bump when the layout of the file or the way references are rendered changes.
CACHE_VERSION = "reference-v1"


def default_cache_dir() -> Path:
    """`$DREAMER_CACHE/reference` when DREAMER_CACHE is set, else `~/.cache/dreamer/reference`."""
    root = os.environ.get("DREAMER_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "dreamer"
    return base / "reference"


def cache_path(cache_dir: Path, label: str, key: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:48] or "set"
    return Path(cache_dir) / f"{slug}-{key}.safetensors"


def load_references(path: Path, key: str, num: int, image_size: int,
                    with_alpha: bool = False) -> dict[str, torch.Tensor] | None:
    """{"images": [N,3,S,S], "directions": [N,3]} (and "alpha" [N,1,S,S] when `with_alpha`) from
    `path`, or None when absent or unusable."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            # clone: get_tensor may be backed by a memory map of the file, and a file truncated
            # in place later (by hand, by another tool) would then crash the process with SIGBUS.
            tensors = {name: f.get_tensor(name).clone() for name in f.keys()}
    except Exception as exc:  # corrupt / truncated / not safetensors: re-render
        log.warning("reference cache %s is unreadable (%s); re-rendering", path, exc)
        return None
    images, directions, alpha = tensors.get("images"), tensors.get("directions"), tensors.get("alpha")
    alpha_ok = not with_alpha or (alpha is not None and tuple(alpha.shape) == (num, 1, image_size, image_size)
                                  and alpha.dtype == torch.float32 and bool(torch.isfinite(alpha).all()))
    ok = (
        alpha_ok
        and meta.get("key") == key
        and images is not None
        and directions is not None
        and tuple(images.shape) == (num, 3, image_size, image_size)
        and tuple(directions.shape) == (num, 3)
        and images.dtype == torch.float32
        and bool(torch.isfinite(images).all())
        and bool(torch.isfinite(directions).all())
    )
    if not ok:
        log.warning("reference cache %s does not match what was asked for; re-rendering", path)
        return None
    out = {"images": images, "directions": directions.float()}
    if with_alpha:
        out["alpha"] = alpha
    return out


def save_references(path: Path, key: str, images: torch.Tensor, directions: torch.Tensor,
                    metadata: dict[str, str] | None = None, alpha: torch.Tensor | None = None) -> None:
    """Write atomically: a temp file in the same folder, then `os.replace` onto `path`."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        tensors = {
            "images": images.detach().to("cpu", torch.float32).contiguous(),
            "directions": directions.detach().to("cpu", torch.float32).contiguous(),
        }
        if alpha is not None:
            tensors["alpha"] = alpha.detach().to("cpu", torch.float32).contiguous()
        save_file(tensors, tmp, metadata={"key": key, "version": CACHE_VERSION, **(metadata or {})})
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
