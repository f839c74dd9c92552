"""Guidance: turns a frozen prior's score on rendered images into a loss on those images.

Design note
-----------
Owns:
  - `base.py`: the `Guidance` contract and its `GuidanceOutput`.
  - `functional.py`: every piece of the rules' shared math, once — timestep weights,
    classifier-free guidance (standard and "plus_one" conventions), gradient injection
    (∂loss/∂z = g/B, the only place that convention lives), NaN guard and clipping, the DDIM
    step used for inversion and denoising, the per-pixel clip, and the batched cond/uncond prior
    call. α_t/σ_t, forward noising and the ε/v/x0 conversions are the priors' (`dreamer.priors.schedule`,
    ᾱ_t exactly as diffusers' DDPMScheduler computes it); functional.py re-exports `alphas_sigmas` and `add_noise`.
  - `schedules.py`: timestep schedules (uniform, annealed — linear or hold-then-drop —, sqrt-annealed,
    DreamGaussian's deterministic linear descent) and scalar `Schedule`s over training (`anneal`);
    they draw only from a passed CPU generator.
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

from dreamer.guidance.base import Guidance, GuidanceConfig, GuidanceOutput
from dreamer.guidance.schedules import (
    AnnealedTimesteps,
    LinearDescendingTimesteps,
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
    "GuidanceConfig",
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
    "LinearDescendingTimesteps",
    "AnnealedTimesteps",
    "SqrtAnnealTimesteps",
]
