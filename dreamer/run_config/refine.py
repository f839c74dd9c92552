"""The refine (second) stage's RunConfig, derived from the first stage's."""

from __future__ import annotations

from pathlib import Path

from dreamer.errors import UserError
from dreamer.run_config.schema import RunConfig


def refine_stage_config(config: RunConfig, start_mesh: Path) -> RunConfig:
    """The second stage's RunConfig: the run's prompt, prior, guidance and export settings on
    `refine.representation` (by default a mesh initialised from `start_mesh`, the first stage's surface)."""
    r = config.refine
    data = config.to_dict()
    representation = dict(r.representation)
    representation.setdefault("name", "mesh")
    if representation["name"] == "mesh":
        representation.setdefault("init", "mesh")
        representation.setdefault("init_mesh", str(start_mesh))
    data.update(steps=r.steps, resolution=r.resolution or config.resolution, representation=representation,
                regularizers=dict(r.regularizers), refine={"steps": 0},
                colour={"share": 0.0})  # the mesh starts from the first stage's colours; it has no colour tail
    data["optim"]["lr_scale"] = r.lr_scale
    from dreamer.run_config.loading import build_run_config

    stage = build_run_config(data)
    if stage.refine.steps:
        raise UserError("refine.representation cannot itself have a refine stage")
    return stage
