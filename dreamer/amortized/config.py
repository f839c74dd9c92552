"""Settings of an amortised generator and of its training (typed; `key=value` overrides)."""

from __future__ import annotations

from dataclasses import dataclass

from dreamer.errors import UserError

WEIGHTS = "generator.pt"  # a trained generator's file in its folder (weights, settings, prompts)


@dataclass
class GeneratorConfig:
    """text vector [D] -> mapping MLP -> 3 planes at `seed_resolution`² -> upsampling convs -> 3 planes
    [`plane_features`, `plane_resolution`²] -> the NeRF's shared MLP decoder (density, colour)."""

    mapping_width: int = 128  # hidden width of the mapping network from the text vector
    seed_resolution: int = 8  # side of the planes the mapping network writes directly
    plane_resolution: int = 32  # side of the output planes (seed_resolution × a power of two)
    channels: int = 32  # channels of the upsampling convs
    plane_features: int = 8  # channels of each output plane (the NeRF decoder reads 3× this)
    mlp_hidden: int = 32  # the shared decoder's hidden width (the NeRF's mlp_hidden)
    num_samples: int = 48  # samples per ray when rendering

    def validate(self) -> "GeneratorConfig":
        ratio = self.plane_resolution // max(self.seed_resolution, 1)
        if self.seed_resolution < 2 or ratio < 1 or ratio * self.seed_resolution != self.plane_resolution \
                or ratio & (ratio - 1):
            raise UserError(f"generator.plane_resolution ({self.plane_resolution}) must be generator.seed_resolution "
                            f"({self.seed_resolution}, at least 2) times a power of two")
        for name in ("mapping_width", "channels", "plane_features", "mlp_hidden", "num_samples"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"generator.{name} must be a positive integer, got {getattr(self, name)!r}")
        return self


@dataclass
class AmortizedTrainConfig:
    """What `dreamer amortized train` runs: the per-prompt preset supplies prior, guidance, cameras,
    render size and regularizers; these settings are the amortised loop's own."""

    preset: str = "sds-tiny"  # the per-prompt preset whose prior, guidance, cameras and regularizers are used
    guidance: str = ""  # another rule than the preset's (sds, asd, vsd, …); "" = the preset's
    prompts: str = "vocabulary"  # "vocabulary" (the tiny prior's trained colour × shape pairs) or a text file
    steps: int = 2000  # optimiser steps
    batch_size: int = 4  # prompts per step, summed over all processes (each renders one camera)
    lr: float = 2e-3  # Adam learning rate of the generator
    seed: int = 0  # the prompt order, every camera, t and ε come from (seed, step, prompt index)
    checkpoint_every: int = 100  # steps between checkpoints (and always at the end)
    log_every: int = 10  # steps between metrics.jsonl lines
    threads: int = 0  # torch threads per process (0: torch's default)
    dtype: str = "float32"  # float32, or float64 (the equivalence tests)

    def validate(self, world_size: int = 1) -> "AmortizedTrainConfig":
        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.batch_size % world_size:
            raise UserError(f"batch_size ({self.batch_size}) must be a multiple of the number of processes "
                            f"({world_size}): each takes batch_size / processes prompts per step")
        if self.lr <= 0:
            raise UserError(f"lr must be positive, got {self.lr}")
        if self.dtype not in ("float32", "float64"):
            raise UserError(f"dtype must be float32 or float64, got {self.dtype!r}")
        return self
