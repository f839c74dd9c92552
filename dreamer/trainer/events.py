"""Typed progress events the trainer emits (the CLI's bar and the UI both listen)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ProgressEvent:
    step: int  # steps completed
    total: int  # final step
    loss: float  # total loss of the last step
    elapsed_s: float  # seconds since this process started training
    eta_s: float  # estimated seconds left
    preview: Path | None = None  # newest preview image, when one was just written
    metrics: dict = field(default_factory=dict)
