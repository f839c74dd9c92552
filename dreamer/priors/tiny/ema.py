"""Exponential moving average of a model's parameters (the weights that get shipped).

decay_k = min(decay, (1 + k) / (10 + k)) at update k, so early averages are not dominated by
the random initialisation (short runs still ship sensible weights).
"""

from __future__ import annotations

import torch


class EMA:
    """Shadow copies of `model`'s floating-point parameters and buffers."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999) -> None:
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for k, v in model.state_dict().items():
            if k in self.shadow:
                self.shadow[k].lerp_(v.detach(), 1.0 - d)

    def copy_to(self, model: torch.nn.Module) -> None:
        """Load the averaged weights into `model` (in place)."""
        model.load_state_dict(self.shadow, strict=False)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.updates = float(state["decay"]), int(state["updates"])
        # onto the device (and dtype) of the model's current shadow: a checkpoint is loaded on the CPU,
        # and a run resumed on a GPU must keep averaging there
        self.shadow = {k: v.to(self.shadow[k], copy=True) if k in self.shadow else v.clone() for k, v in state["shadow"].items()}
