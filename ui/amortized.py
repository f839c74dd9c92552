"""The web UI's "One generator" tab: pick a trained amortised generator, type a prompt, and the asset
is made in one forward pass (dreamer.amortized) and shown at once, as an ordinary run folder that the
History tab lists too.

Generators are the folders holding a `generator.pt` directly under `<runs>/generators/` (train one
there with `dreamer amortized train --out <runs>/generators/NAME`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from dreamer.api import AMORTIZED_WEIGHTS, UserError, generate_amortized
from dreamer.ui.paths import new_run_dir

GENERATORS = "generators"
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


def make(runs_dir: Path, generator: str | None, prompt: str, overrides: list[str] | None = None) -> Made:
    """The asset for `prompt` from the generator named `generator`, in a new run folder; the server's
    `export.*` overrides apply (the others are training settings, which a forward pass has none of)."""
    names = list_generators(runs_dir)
    if not generator:
        raise UserError(f"choose a generator (train one with: dreamer amortized train --out {runs_dir / GENERATORS}/NAME)")
    if generator not in names:
        raise UserError(f"no generator named '{generator}' in {runs_dir / GENERATORS}")
    if not prompt or not prompt.strip():
        raise UserError('the prompt is empty: describe one object such as "a red cube"')
    out = new_run_dir(runs_dir, prompt)
    with _lock:
        result = generate_amortized(prompt, runs_dir / GENERATORS / generator, out=out, overwrite=True,
                                    dotted=[o for o in overrides or [] if o.startswith("export.")])
    return Made(result.run_dir, result.mesh, result.video, result.metrics.get("eval", {}),
                result.metrics["forward_seconds"])
