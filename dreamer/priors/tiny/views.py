"""The `ViewBank`: seeded random views of every training combination, rendered once and cached.

Each training spec gets `views_per_combo` cameras from a generator seeded with the data seed and
is rendered over black (premultiplied colour + coverage, float16). The bank is cached in
`$DREAMER_CACHE/tiny` (or `~/.cache/dreamer/tiny`) under a key that hashes the data settings,
the spec list and the shape library's source, written atomically; a missing or mismatched file
is re-rendered. 32 px, 128 views × 158 combinations ≈ 20k views ≈ 160 MB in memory.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from dreamer.shapes.fingerprint import cache_key, shape_library_fingerprint
from dreamer.priors.tiny.data import TinyDataConfig, render_premultiplied, sample_cameras

log = logging.getLogger(__name__)

BANK_VERSION = "tiny-views-v1"  # bump when the rendering or the file layout changes


@dataclass
class ViewBank:
    """Pre-rendered training views."""

    premultiplied: torch.Tensor  # [N, 3, S, S] float16, colour × coverage over black
    alpha: torch.Tensor  # [N, 1, S, S] float16 coverage
    cameras: torch.Tensor  # [N, 3] float32 azimuth°, elevation°, distance
    combo: torch.Tensor  # [N] long, index into TinyDataConfig.combos()[0]

    def __len__(self) -> int:
        return self.combo.shape[0]


def default_cache_dir() -> Path:
    root = os.environ.get("DREAMER_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "dreamer") / "tiny"


def bank_key(config: TinyDataConfig) -> str:
    fields = dataclasses.asdict(config)
    for how_batches_are_drawn in ("source", "focus_shapes", "focus_weight", "views_per_set", "fovy_range",
                                  "set_jitter", "even_share"):  # the rendered views don't depend on these
        fields.pop(how_batches_are_drawn)
    train, _ = config.combos()
    return cache_key({"version": BANK_VERSION, "library": shape_library_fingerprint(),
                                      "data": fields, "specs": [(s.shape, s.colour) for s in train]})


def build_bank(config: TinyDataConfig, progress: Callable[[int, int], None] | None = None) -> ViewBank:
    """Render the bank (deterministic in config.seed). `progress(done, total)` after each spec."""
    train, _ = config.combos()
    gen = torch.Generator().manual_seed(config.seed)
    n = config.views_per_combo
    premult, alpha, cams = [], [], []
    for i, spec in enumerate(train):
        cameras = sample_cameras(n, config, gen)
        rgb, a = render_premultiplied(spec, cameras, config)
        premult.append(rgb.half())
        alpha.append(a.half())
        cams.append(cameras)
        if progress is not None:
            progress(i + 1, len(train))
    combo = torch.arange(len(train)).repeat_interleave(n)
    return ViewBank(torch.cat(premult), torch.cat(alpha), torch.cat(cams), combo)


def load_or_build_bank(config: TinyDataConfig, cache_dir: Path | None = None,
                       progress: Callable[[int, int], None] | None = None) -> ViewBank:
    """The cached bank for `config`, rendering (and caching) it when needed."""
    from safetensors.torch import load_file, save_file

    from dreamer.io import atomic_save

    key = bank_key(config)
    path = Path(cache_dir or default_cache_dir()) / f"views-{config.image_size}px-{key}.safetensors"
    if path.is_file():
        try:
            t = load_file(str(path))
            bank = ViewBank(t["premultiplied"].clone(), t["alpha"].clone(), t["cameras"].clone(), t["combo"].clone())
            if len(bank) == len(config.combos()[0]) * config.views_per_combo:
                return bank
        except Exception as exc:  # unreadable cache: render again
            log.warning("tiny view bank %s is unreadable (%s); re-rendering", path, exc)
    bank = build_bank(config, progress)
    tensors = {f.name: getattr(bank, f.name).contiguous() for f in dataclasses.fields(ViewBank)}
    try:
        atomic_save(path, lambda tmp: save_file(tensors, str(tmp), metadata={"key": key}))
    except OSError as exc:  # unwritable cache: keep going in memory
        log.warning("could not write the tiny view bank %s (%s)", path, exc)
    return bank
