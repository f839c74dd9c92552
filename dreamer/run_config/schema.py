"""`RunConfig`: the config of one text-to-3D (or 4D) run, section by section."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dreamer import registry
from dreamer.cameras import OrbitConfig
from dreamer.config import to_dict
from dreamer.run_config.sections import (ColourStageConfig, Component, ExportConfig, MotionConfig, OptimConfig,
                                         RefineConfig, TrainerConfig)


@dataclass
class RunConfig:
    prompt: str = ""  # what to make, e.g. "a red chair"
    negative_prompt: str = ""  # what to steer away from
    seed: int = 0  # seeds cameras, timesteps, noise and initialisation
    steps: int = 1000  # optimisation steps
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = 1  # cameras per step
    resolution: int = 64  # training render side, pixels
    camera: OrbitConfig = field(default_factory=OrbitConfig)  # training camera ranges
    guidance: Component = field(default_factory=lambda: Component("sds", None))
    representation: Component = field(default_factory=lambda: Component("nerf", None))
    prior: Component = field(default_factory=lambda: Component("reference", None))
    regularizers: Any = None  # the representation's regularizer weights: its `regularizer_weights` dataclass
                              # (e.g. nerf: opacity, sparsity; mesh: sdf_sign, laplacian); a YAML mapping name -> weight
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    colour: ColourStageConfig = field(default_factory=ColourStageConfig)  # the last share of `steps`: colour alone
    refine: RefineConfig = field(default_factory=RefineConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)  # 4D runs only (a dynamic representation)

    @property
    def is_4d(self) -> bool:
        """Whether the representation is dynamic (a 4D run: clips, a video prior, animated exports)."""
        return registry.component_class("representation", self.representation.name).is_dynamic

    def validate(self) -> "RunConfig":
        """Every check across sections (one-line UserErrors); returns self with typed regularizers."""
        from dreamer.run_config.validation import validate_run

        return validate_run(self)

    def to_dict(self) -> dict:
        data = to_dict(self)
        for key in registry.TABLES:
            section: Component = getattr(self, key)
            data[key] = {"name": section.name, **to_dict(section.config)}
        for key in ("image_prior", "image_guidance"):
            section = getattr(self.motion, key)
            data["motion"][key] = {"name": section.name, **to_dict(section.config)}
        return data
