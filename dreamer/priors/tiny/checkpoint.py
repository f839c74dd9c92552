"""Resumable training state of the tiny prior: one file, `<out>/checkpoints/last.pt`, written atomically.

It holds the model, the EMA, the optimizer, the step, the training generator's state (the only
source of randomness in the loop), the loss history, the elapsed time and the training config,
so a resumed run continues exactly where the saved one stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dreamer.errors import UserError
from dreamer.io import atomic_save

CHECKPOINT = Path("checkpoints") / "last.pt"


def checkpoint_path(out_dir: Path | str) -> Path:
    return Path(out_dir) / CHECKPOINT


def save_checkpoint(out_dir: Path | str, state: dict[str, Any]) -> Path:
    path = checkpoint_path(out_dir)
    atomic_save(path, lambda tmp: torch.save(state, tmp))
    return path


def load_checkpoint(out_dir: Path | str) -> dict[str, Any]:
    path = checkpoint_path(out_dir)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise UserError(f"no tiny-prior checkpoint in {out_dir}: drop --resume to start a new run") from None
    except Exception as exc:
        raise UserError(f"tiny-prior checkpoint {path} is unreadable ({type(exc).__name__}): "
                        "delete it or pass --fresh to start over") from exc
