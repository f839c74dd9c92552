"""Guidance: turns a frozen prior's score on rendered images into a loss on those images.

Design note
-----------
Owns:
  - `base.py`: the `Guidance` contract and its `GuidanceOutput`.
  - `functional.py`: every piece of shared math, once — α_t/σ_t, forward noising, timestep
    weights, classifier-free guidance (standard and "plus_one" conventions), gradient injection
    (∂loss/∂z = g/B, the only place that convention lives), NaN guard and clipping, the DDIM
    step used for inversion and denoising, and the batched cond/uncond prior call.
  - `schedules.py`: timestep schedules (uniform, annealed, sqrt-annealed) and scalar `Schedule`s
    over training; they draw only from a passed CPU generator.
  - `inversion.py`: ISM/TSM's DDIM inversion with the unconditional prediction.
  - one file per rule (`sds.py`, `asd.py`, `ism.py`, `tsm.py`, …), each a config dataclass beside its `Guidance` subclass,
    composing the functions above.
  - `particle.py`: the LoRA particle model of VSD/ESD (the only parameters a rule trains).
Does not own:
  - the diffusion network, its text/image encoders, v→ε conversion (`dreamer.priors`);
  - cameras, rendering, or what the images are (`dreamer.cameras`, `dreamer.representations`);
  - the optimiser, the step loop, logging (`dreamer.trainer`); the name → config table.
Conventions: images enter as [B, H, W, 3] in [0, 1]; the prior sees [B, 3, H, W]; every prior
call runs under no_grad and only z = prior.encode_images(images) carries a graph.
"""

from dreamer.guidance.base import Guidance, GuidanceOutput
from dreamer.guidance.schedules import (
    AnnealedTimesteps,
    Schedule,
    SqrtAnnealTimesteps,
    TimestepSchedule,
    UniformTimesteps,
)
from dreamer.guidance.asd import ASD, ASDConfig
from dreamer.guidance.ism import ISM, ISMConfig
from dreamer.guidance.sds import SDS, SDSConfig
from dreamer.guidance.esd import ESD, ESDConfig
from dreamer.guidance.tsm import TSM, TSMConfig
from dreamer.guidance.vsd import VSD, VSDConfig

__all__ = [
    "Guidance",
    "GuidanceOutput",
    "SDS",
    "SDSConfig",
    "ASD",
    "ASDConfig",
    "ISM",
    "ISMConfig",
    "TSM",
    "TSMConfig",
    "VSD",
    "VSDConfig",
    "ESD",
    "ESDConfig",
    "Schedule",
    "TimestepSchedule",
    "UniformTimesteps",
    "AnnealedTimesteps",
    "SqrtAnnealTimesteps",
]
