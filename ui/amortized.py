"""The web UI's "One generator" tab: pick a trained amortised generator, type a prompt, and the asset
is made in one forward pass (dreamer.amortized) and shown at once, as an ordinary run folder that the
History tab lists too. Two prompts and a frame count make an interpolation video instead (the text
vectors mixed from one prompt to the other), written to `<runs>/<time>-<start>-to-<end>/`.

Generators are the folders holding a `generator.pt` directly under `<runs>/generators/` (train one
there with `dreamer amortized train --out <runs>/generators/NAME`).
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from dreamer.api import AMORTIZED_WEIGHTS, UserError, amortized_interpolate, generate_amortized
from dreamer.ui.paths import new_run_dir

GENERATORS = "generators"
MAX_FRAMES = 256  # an interpolation's frames are rendered and held in memory at once
_lock = threading.Lock()  # one forward pass at a time: they are short, and share the CPU threads


def list_generators(runs_dir: Path) -> list[str]:
    """Names of the trained generators under `<runs>/generators/`."""
    root = runs_dir / GENERATORS
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / AMORTIZED_WEIGHTS).is_file())


@dataclass
class Made:
    run_dir: Path
    model: Path
    video: Path | None
    eval: dict
    forward_seconds: float


def _generator_dir(runs_dir: Path, generator: str | None) -> Path:
    if not generator:
        raise UserError(f"choose a generator (train one with: dreamer amortized train --out {runs_dir / GENERATORS}/NAME)")
    if generator not in list_generators(runs_dir):
        raise UserError(f"no generator named '{generator}' in {runs_dir / GENERATORS}")
    return runs_dir / GENERATORS / generator


def make(runs_dir: Path, generator: str | None, prompt: str, overrides: list[str] | None = None) -> Made:
    """The asset for `prompt` from the generator named `generator`, in a new run folder; the server's
    `export.*` overrides apply (the others are training settings, which a forward pass has none of)."""
    folder = _generator_dir(runs_dir, generator)
    if not prompt or not prompt.strip():
        raise UserError('the prompt is empty: describe one object such as "a red cube"')
    out = new_run_dir(runs_dir, prompt)
    with _lock:
        result = generate_amortized(prompt, folder, out=out, overwrite=True,
                                    dotted=[o for o in overrides or [] if o.startswith("export.")])
    return Made(result.run_dir, result.mesh, result.video, result.metrics.get("eval", {}),
                result.metrics["forward_seconds"])


def blend(runs_dir: Path, generator: str | None, start: str, end: str, frames: int | float | None) -> Path:
    """An interpolation video from `start` to `end` (`frames` frames) by the generator named `generator`."""
    folder = _generator_dir(runs_dir, generator)
    try:
        whole = int(frames) if float(frames) == int(frames) else None
    except (TypeError, ValueError, OverflowError):  # None, text, NaN, infinity
        whole = None
    if whole is None or not 2 <= whole <= MAX_FRAMES:
        raise UserError(f"frames must be a whole number from 2 to {MAX_FRAMES}, got {frames!r}")
    out = new_run_dir(runs_dir, f"{start or ''} to {end or ''}")
    try:
        with _lock:
            return amortized_interpolate(folder, start, end, out / "interpolation.mp4", frames=whole)
    except Exception:
        shutil.rmtree(out, ignore_errors=True)  # no half-written video left behind
        raise
