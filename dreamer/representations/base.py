"""The contract every representation (NeRF, Gaussians, mesh) fulfils."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from dreamer.cameras import Camera


@dataclass
class RenderOutput:
    rgb: torch.Tensor  # [B, H, W, 3] in [0, 1], composited over the background
    alpha: torch.Tensor  # [B, H, W, 1] accumulated opacity in [0, 1]
    depth: torch.Tensor  # [B, H, W, 1] expected depth along the ray (0 where empty)
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. "weights", "regularizers"


class Representation(torch.nn.Module):
    """A 3D asset with parameters that a guidance loss can optimise.

    Subclasses implement `render`, `parameter_groups` and `to_mesh`. `before_step(step)` and
    `after_step(step, optimizer)` are optional hooks (occupancy-grid updates, densification).
    `background` is an RGB tensor broadcastable to [B, H, W, 3] or None for the
    representation's own background model.
    """

    def render(self, camera: Camera, background: torch.Tensor | None = None) -> RenderOutput:
        raise NotImplementedError

    def parameter_groups(self, lr_scale: float = 1.0) -> list[dict]:
        """Optimizer parameter groups (each a dict with "params", "lr", "name")."""
        raise NotImplementedError

    def regularization(self, out: RenderOutput) -> dict[str, torch.Tensor]:
        """Named scalar regularisers computed from a render (weighted by the trainer)."""
        return {}

    def before_step(self, step: int) -> None:
        pass

    def after_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        pass

    def to_mesh(self, resolution: int = 128):  # -> trimesh.Trimesh with vertex colours
        raise NotImplementedError
