"""Build the components of a run from its RunConfig (names looked up in dreamer.registry)."""

from __future__ import annotations

import torch

from dreamer import registry
from dreamer.run_config import RunConfig


def build_representation(config: RunConfig, device: torch.device):
    """The run's representation; a ParticleSet of n of them when the guidance asks for n particles (VSD/ESD)."""
    cls = registry.component_class("representation", config.representation.name)
    torch.manual_seed(config.seed)  # parameter initialisation
    count = config.guidance.config.particle_count
    if count == 1:
        return cls(config.representation.config).to(device)
    from dreamer.representations.particles import ParticleSet

    return ParticleSet([cls(config.representation.config) for _ in range(count)]).to(device)


def build_prior(config: RunConfig, device: torch.device):
    cls = registry.component_class("prior", config.prior.name)
    return cls(config.prior.config, device)


def build_guidance(config: RunConfig, prior, generator: torch.Generator, total_steps: int | None = None):
    """The run's rule; its schedules span `total_steps` (default: the run's steps)."""
    cls = registry.component_class("guidance", config.guidance.name)
    return cls(config.guidance.config, prior, config.steps if total_steps is None else total_steps, generator)
