"""The one explicit table from component names to their configs and classes.

Imports happen when a name is looked up (so `import dreamer` stays light); a failed import
fails loudly. New components add one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from dreamer.errors import UserError


@dataclass(frozen=True)
class Entry:
    module: str  # dotted module path
    config: str  # config dataclass name in that module
    cls: str  # component class name in that module
    defaults: dict = field(default_factory=dict)  # config fields this name presets
    summary: str = ""


GUIDANCES: dict[str, Entry] = {
    "sds": Entry("dreamer.guidance.sds", "SDSConfig", "SDS", summary="Score Distillation Sampling (DreamFusion)"),
    "ism": Entry("dreamer.guidance.ism", "ISMConfig", "ISM", summary="Interval Score Matching (LucidDreamer)"),
    "tsm": Entry("dreamer.guidance.tsm", "TSMConfig", "TSM", summary="Trajectory Score Matching (Dreamer XL)"),
    "vsd": Entry("dreamer.guidance.vsd", "VSDConfig", "VSD", summary="Variational Score Distillation (ProlificDreamer)"),
    "esd": Entry("dreamer.guidance.esd", "ESDConfig", "ESD", summary="Entropic Score Distillation (VSD + camera-free entropy term)"),
    "asd": Entry("dreamer.guidance.asd", "ASDConfig", "ASD", summary="Asynchronous Score Distillation (ScaleDreamer)"),
    "video-sds": Entry("dreamer.guidance.video_sds", "VideoSDSConfig", "VideoSDS",
                       summary="SDS on clips with motion amplification and a motion-averse negative prompt (4D)"),
}

REPRESENTATIONS: dict[str, Entry] = {
    "nerf": Entry("dreamer.representations.nerf", "NeRFConfig", "NeRF", summary="grid-encoded NeRF, volume rendered"),
    "gaussians": Entry("dreamer.representations.gaussians", "GaussiansConfig", "Gaussians",
                       summary="3D Gaussian splats (gsplat on CUDA, our tile rasterizer on CPU)"),
    "mesh": Entry("dreamer.representations.mesh", "MeshConfig", "MeshRepresentation",
                  summary="DMTet surface on a tetrahedral grid with a colour field, rasterized"),
    "gaussians4d": Entry("dreamer.representations.gaussians4d", "Gaussians4DConfig", "Gaussians4D",
                         summary="4D: canonical Gaussians + HexPlane deformation field (Δx, Δq, Δs)"),
}

PRIORS: dict[str, Entry] = {
    "reference": Entry("dreamer.priors.reference", "ReferencePriorConfig", "ReferencePrior",
                       summary="exact denoiser over shape-library renders (no weights)"),
    "tiny": Entry("dreamer.priors.tiny.prior", "TinyPriorConfig", "TinyPrior",
                  summary="the project's small text + camera conditioned pixel UNet (weights from `dreamer prior train`)"),
    "tiny-mv": Entry("dreamer.priors.tiny.prior", "TinyPriorConfig", "TinyPrior", {"weights": "assets/priors/tiny_mv"},
                     "the tiny prior, multi-view: 4-view sets denoised jointly (cross-view attention), per-pixel "
                     "raymaps (weights from `dreamer prior train --model tiny-mv`)"),
    "tiny-3d": Entry("dreamer.priors.tiny.prior", "TinyPriorConfig", "TinyPrior", {"weights": "assets/priors/tiny_3d"},
                     "the tiny prior, lifted: each 4-view set's estimate is one voxel volume rendered at its cameras "
                     "(camera-true by construction; weights from `dreamer prior train --model tiny-3d`)"),
    "sd15": Entry("dreamer.priors.stable_diffusion", "StableDiffusionConfig", "StableDiffusionPrior",
                  {"model": "sd15"}, "Stable Diffusion 1.5 (diffusers)"),
    "sd21": Entry("dreamer.priors.stable_diffusion", "StableDiffusionConfig", "StableDiffusionPrior",
                  {"model": "sd21"}, "Stable Diffusion 2.1, 768 px v-prediction (diffusers)"),
    "sd21-base": Entry("dreamer.priors.stable_diffusion", "StableDiffusionConfig", "StableDiffusionPrior",
                       {"model": "sd21-base"}, "Stable Diffusion 2.1-base, 512 px (diffusers)"),
    "sdxl": Entry("dreamer.priors.sdxl", "SDXLConfig", "SDXLPrior", summary="Stable Diffusion XL base, 1024 px (diffusers)"),
    "deepfloyd-if": Entry("dreamer.priors.deepfloyd_if", "DeepFloydIFConfig", "DeepFloydIFPrior",
                          summary="DeepFloyd IF stage I, pixel space 64 px (diffusers)"),
    "reference-video": Entry("dreamer.priors.reference_video", "ReferenceVideoPriorConfig", "ReferenceVideoPrior",
                             summary="video: exact denoiser over clips of the animated shape library (no weights)"),
    "tiny-motion": Entry("dreamer.priors.tiny_motion.prior", "TinyMotionPriorConfig", "TinyMotionPrior",
                         summary="video, embedded: tiny's frozen image UNet + trained temporal layers (diffusers "
                                 "MotionAdapter; weights from `dreamer prior train-motion`)"),
    "animatediff": Entry("dreamer.priors.animatediff", "AnimateDiffConfig", "AnimateDiffPrior",
                         summary="video: Stable Diffusion 1.5 + AnimateDiff MotionAdapter (diffusers UNetMotionModel)"),
    "zeroscope": Entry("dreamer.priors.zeroscope", "ZeroscopeConfig", "ZeroscopePrior",
                       summary="video: zeroscope / ModelScope UNet3DConditionModel (diffusers)"),
}

TABLES: dict[str, dict[str, Entry]] = {
    "guidance": GUIDANCES,
    "representation": REPRESENTATIONS,
    "prior": PRIORS,
}


def entry(kind: str, name: str) -> Entry:
    table = TABLES[kind]
    if name not in table:
        raise UserError(f"unknown {kind} '{name}': choose one of {', '.join(sorted(table))}")
    return table[name]


def _module(e: Entry):
    return importlib.import_module(e.module)


def config_class(kind: str, name: str) -> type:
    return getattr(_module(entry(kind, name)), entry(kind, name).config)


def component_class(kind: str, name: str) -> type:
    return getattr(_module(entry(kind, name)), entry(kind, name).cls)


def default_config(kind: str, name: str) -> Any:
    from dreamer.config import merge

    e = entry(kind, name)
    return merge(config_class(kind, name)(), dict(e.defaults), prefix=kind)
