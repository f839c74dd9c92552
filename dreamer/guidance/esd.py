"""Entropic Score Distillation ("Taming Mode Collapse in Score Distillation"): VSD whose particle
term mixes in the camera-free branch with weight λ = entropy_weight (0.5 by default; 0 is VSD).
The camera-free branch models the view-averaged distribution, so the particle model gets the
plain prompt, never a "…, back view" suffix (VSD's default; see `VSDConfig.particle_view_dependent`).
See dreamer.guidance.vsd for the gradient."""

from __future__ import annotations

from dataclasses import dataclass

from dreamer.guidance.vsd import VSD, VSDConfig


@dataclass
class ESDConfig(VSDConfig):
    """Settings of ESD: VSD's, with λ = 0.5."""

    entropy_weight: float = 0.5  # λ; note some public code calls 1 − λ the "lora guidance scale"


class ESD(VSD):
    """Entropic score distillation (VSD with entropy_weight > 0)."""
