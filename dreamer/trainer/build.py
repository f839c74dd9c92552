"""Build the components of a run from its RunConfig (names looked up in dreamer.registry).

One build at a time per process: the web UI runs jobs in threads, and building (1) resolves
diffusers' lazy attributes, which are not thread-safe (two jobs starting at once failed with
"cannot import name 'DDPMScheduler' from 'diffusers'"), and (2) seeds torch's global generator for
the representation's initialisation, which another build's seeding would disturb. (A job already
training in another thread still draws from that generator: concurrent UI jobs are not bit-for-bit
reproducible; a run alone is.)
"""

from __future__ import annotations

import functools
import threading

import torch

from dreamer import registry
from dreamer.run_config import RunConfig

_BUILDING = threading.RLock()


def _one_at_a_time(build):
    @functools.wraps(build)
    def locked(*args, **kwargs):
        with _BUILDING:
            return build(*args, **kwargs)
    return locked


@_one_at_a_time
def build_representation(config: RunConfig, device: torch.device):
    """The run's representation; a ParticleSet of n of them when the guidance asks for n particles (VSD/ESD)."""
    cls = registry.component_class("representation", config.representation.name)
    _fill_mesh_lowpass(config)
    torch.manual_seed(config.seed)  # parameter initialisation
    count = config.guidance.config.particle_count
    if count == 1:
        return cls(config.representation.config).to(device)
    from dreamer.representations.particles import ParticleSet

    return ParticleSet([cls(config.representation.config) for _ in range(count)]).to(device)


def _fill_mesh_lowpass(config: RunConfig) -> None:
    """A splat representation whose `mesh_lowpass` is unset gets its training renders' (gaussian_density): the
    rasterizer's low-pass at the pixel size of `config.resolution` px at the mean camera distance and fov."""
    from dreamer.representations.gaussian_density import render_lowpass

    rep = config.representation.config
    if hasattr(rep, "mesh_lowpass") and rep.mesh_lowpass is None:
        distance, fovy = (sum(config.camera.distance) / 2.0, sum(config.camera.fovy) / 2.0)
        rep.mesh_lowpass = render_lowpass(distance, fovy, config.resolution)


@_one_at_a_time
def build_prior(config: RunConfig, device: torch.device):
    cls = registry.component_class("prior", config.prior.name)
    return cls(config.prior.config, device)


@_one_at_a_time
def build_guidance(config: RunConfig, prior, generator: torch.Generator, total_steps: int | None = None):
    """The run's rule; its schedules span `total_steps` (default: the run's steps)."""
    cls = registry.component_class("guidance", config.guidance.name)
    return cls(config.guidance.config, prior, config.steps if total_steps is None else total_steps, generator)
