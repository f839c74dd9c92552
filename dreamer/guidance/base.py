"""The contract every guidance rule (SDS, VSD, ESD, ISM, TSM, ASD) fulfils."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from dreamer.cameras import Camera
from dreamer.priors.base import PromptEmbedding, Prior


@dataclass
class GuidanceOutput:
    loss: torch.Tensor  # scalar; backward() puts the rule's gradient on the images
    grad_norm: torch.Tensor  # scalar, ‖g‖ averaged over the batch (monitoring)
    t: torch.Tensor  # [B] integer timesteps used
    extras: dict[str, Any] = field(default_factory=dict)


class Guidance(torch.nn.Module):
    """Turns a prior's score on rendered images into a loss.

    Constructed with (config, prior, total_steps, generator); randomness (timesteps, noise) is drawn
    from the given torch.Generator and the rule's timestep schedule only.
    """

    def __init__(self, prior: Prior, total_steps: int, generator: torch.Generator):
        super().__init__()
        self.prior = prior
        self.total_steps = total_steps
        self.generator = generator

    def forward(self, images: torch.Tensor, embedding: PromptEmbedding, cameras: Camera,
                step: int) -> GuidanceOutput:
        """images: [B, H, W, 3] renders in [0, 1] (channels last, carrying the graph)."""
        raise NotImplementedError

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters the rule trains itself (VSD/ESD LoRA); empty for SDS."""
        return []

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps of the rule: its trainable parameters only (never the frozen prior
        or the frozen copy under a LoRA). Restore with load_state_dict(..., strict=False)."""
        trainable = {id(p) for p in self.trainable_parameters()}
        return {k: p.detach().clone() for k, p in self.named_parameters() if id(p) in trainable}
