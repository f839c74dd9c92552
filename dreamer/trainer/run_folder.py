"""The run folder: config.yaml, metrics.jsonl, checkpoints/, previews/ and the exported assets.

Checkpoints are written atomically and loaded with `weights_only=True`, so a checkpoint file can
never run code when it is opened.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from dreamer.errors import UserError
from dreamer.io import append_text, atomic_save

CHECKPOINT_NAME = "last.pt"


class RunFolder:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    # -- layout ---------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint_dir / CHECKPOINT_NAME

    @property
    def preview_dir(self) -> Path:
        return self.root / "previews"

    @property
    def refine_dir(self) -> Path:
        """The second stage's own run folder (runs with `refine.steps`)."""
        return self.root / "refine"

    def asset(self, name: str) -> Path:
        return self.root / name

    # -- checks ---------------------------------------------------------------------------
    def prepare(self) -> "RunFolder":
        """Create the folder tree; a clear error when the path is a file or not writable."""
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"output folder '{self.root}' is a file: choose another --out")
        try:
            for d in (self.root, self.checkpoint_dir, self.preview_dir):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create output folder '{self.root}': {e.strerror}; choose another --out") from None
        if not os.access(self.root, os.W_OK):
            raise UserError(f"output folder '{self.root}' is not writable: choose another --out")
        return self

    # -- metrics --------------------------------------------------------------------------
    def append_metrics(self, record: dict) -> None:
        append_text(self.metrics_path, json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.exists():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash; the rest are intact
        return records

    def truncate_metrics(self, last_step: int) -> None:
        """Drop lines logged after `last_step` (they are re-run on resume)."""
        records = [r for r in self.read_metrics() if r.get("step", 0) <= last_step]
        atomic_save(self.metrics_path, lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in records)))

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        atomic_save(self.checkpoint_path, lambda p: torch.save(state, p))

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists()

    def load_checkpoint(self, map_location="cpu") -> dict[str, Any]:
        try:
            state = torch.load(self.checkpoint_path, map_location=map_location, weights_only=True)
        except FileNotFoundError:
            raise UserError(f"no checkpoint in '{self.root}': start the run without --resume") from None
        except Exception as e:  # noqa: BLE001 - any unpickling/zip failure means a corrupt file
            raise UserError(
                f"checkpoint '{self.checkpoint_path}' is corrupt ({type(e).__name__}); "
                "delete it to start over, or resume from a copy"
            ) from None
        if not isinstance(state, dict) or "step" not in state or "representation" not in state:
            raise UserError(f"checkpoint '{self.checkpoint_path}' is corrupt (missing fields); delete it to start over")
        return state
