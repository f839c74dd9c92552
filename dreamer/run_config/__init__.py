"""The config of one text-to-3D run, and how presets, overrides and names combine into it.

- `sections`: the optimiser, trainer, export, colour, refine and motion sections, and `Component`;
- `schema`: `RunConfig` itself;
- `validation`: checks across sections (view sets, 4D);
- `regularizers`: regularizer weights typed per representation;
- `refine`: the second stage's config;
- `loading`: presets ← override mappings ← 'a.b=value' strings, and saving.
"""

from dreamer.run_config.loading import build_run_config, load_run_config, save_run_config
from dreamer.run_config.refine import refine_stage_config
from dreamer.run_config.regularizers import known_regularizers, regularizers_for
from dreamer.run_config.schema import RunConfig
from dreamer.run_config.sections import (ColourStageConfig, Component, ExportConfig, MotionConfig, OptimConfig,
                                         RefineConfig, TrainerConfig)

__all__ = [
    "RunConfig", "Component", "ColourStageConfig", "OptimConfig", "TrainerConfig", "ExportConfig", "RefineConfig",
    "MotionConfig",
    "build_run_config", "load_run_config", "save_run_config", "refine_stage_config", "known_regularizers",
    "regularizers_for",
]
