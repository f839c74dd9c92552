"""Checks of a whole RunConfig across its sections: steps and sizes, the colour and refine stages, multi-view
priors against their guidance rule, and a 4D run's video prior, image prior and stages. One-line UserErrors."""

from __future__ import annotations

from pathlib import Path

from dreamer import registry
from dreamer.errors import UserError
from dreamer.run_config.refine import refine_stage_config
from dreamer.run_config.regularizers import regularizers_for
from dreamer.run_config.schema import RunConfig


def validate_run(config: RunConfig) -> RunConfig:
    """`RunConfig.validate`: every check across sections; returns `config` with typed regularizers."""
    if not config.prompt.strip():
        raise UserError("the prompt is empty: give a description such as \"a red chair\"")
    if config.steps <= 0:
        raise UserError(f"steps must be a positive integer, got {config.steps}")
    if config.resolution <= 0:
        raise UserError(f"resolution must be a positive integer, got {config.resolution}")
    if config.batch_size <= 0:
        raise UserError(f"batch_size must be a positive integer, got {config.batch_size}")
    if config.device != "auto" and not (config.device == "cpu" or config.device.startswith("cuda")):
        raise UserError(f"device must be auto, cpu or cuda, got '{config.device}'")
    config.export.mesh_options()
    if config.refine.steps < 0 or config.refine.resolution < 0 or config.refine.start_resolution < 8:
        raise UserError("refine.steps and refine.resolution must be 0 or positive, refine.start_resolution >= 8")
    if config.refine.steps:
        refine_stage_config(config, Path("coarse.ply"))  # a bad refine section fails before any work
    if config.colour.share:
        validate_colour_stage(config)
    if config.is_4d:
        validate_4d(config)
    elif registry.component_class("prior", config.prior.name).is_video:
        raise UserError(f"prior '{config.prior.name}' is a video prior: it needs a 4D representation "
                        "(representation=gaussians4d, or --config 4d)")
    else:
        validate_view_sets(config)
    # typed (again) for the representation in force: a mapping set by hand, or another
    # representation's weights, are checked name by name here
    config.regularizers = regularizers_for(config.representation.name, config.regularizers)
    return config

def validate_colour_stage(config: RunConfig) -> None:
    """The colour stage re-scales an SDS rule's CFG over a representation that can freeze its shape."""
    from dreamer.guidance.sds import SDSConfig
    from dreamer.representations.base import ColourTunable

    if config.is_4d:
        raise UserError("a 4D run has no colour stage: set colour.share=0")
    if not isinstance(config.guidance.config, SDSConfig):
        raise UserError(f"colour.share needs guidance sds; '{config.guidance.name}' has no CFG scale and timesteps "
                        "to set (colour.share=0)")
    representation = registry.component_class("representation", config.representation.name)
    if not issubclass(representation, ColourTunable):
        raise UserError(f"representation '{config.representation.name}' cannot train its colour alone: "
                        "set colour.share=0")
    if config.colour.steps_of(config.steps) >= config.steps:
        raise UserError(f"colour.share = {config.colour.share} leaves no step of {config.steps} to form the shape")
    config.colour.guidance_config(config.guidance.config)  # a bad combination fails before any work


def validate_view_sets(config: RunConfig) -> None:
    """A prior that denoises views jointly needs a rule that runs on view sets."""
    views = registry.component_class("prior", config.prior.name).declared_views(config.prior.config)
    if views > 1 and not config.guidance.config.takes_view_sets:
        raise UserError(f"guidance '{config.guidance.name}' does not run on view sets (prior '{config.prior.name}' "
                        f"denoises {views} views jointly): use sds, asd, or ism/tsm with flip_probability=0, "
                        "or a single-view prior such as tiny")

def validate_4d(config: RunConfig) -> None:
    """A 4D run: a video prior and clip rule, an image prior and single-frame rule, stages that fit."""
    m = config.motion.validate()
    if config.refine.steps:
        raise UserError("a 4D run has no mesh refine stage: set refine.steps=0")
    if not registry.component_class("prior", config.prior.name).is_video:
        raise UserError(f"a 4D run scores clips: prior '{config.prior.name}' is an image prior; use a video prior "
                        "(reference-video, animatediff, zeroscope) and put the image prior in motion.image_prior")
    prior_class = registry.component_class("prior", config.prior.name)
    if prior_class.fixed_frames and m.frames not in (0, config.prior.config.num_frames):
        raise UserError(f"motion.frames = {m.frames}: the {config.prior.name} prior takes clips of "
                        f"{config.prior.config.num_frames} frames (prior.num_frames); set motion.frames=0")
    if not config.guidance.config.takes_clips:
        raise UserError(f"guidance '{config.guidance.name}' does not run on clips; use video-sds, sds, ism, tsm or asd")
    image_prior, image_rule = m.component("prior"), m.component("guidance")
    if registry.component_class("prior", image_prior.name).is_video:
        raise UserError(f"motion.image_prior '{image_prior.name}' is a video prior; use an image prior")
    if not image_rule.config.takes_images:
        raise UserError(f"motion.image_guidance '{image_rule.name}' does not run on single frames")
    if image_rule.config.particle_count != 1:
        raise UserError("motion.image_guidance cannot optimise several particles (vsd/esd particles=1)")
    if config.motion.static_steps >= config.steps:
        raise UserError(f"motion.static_steps ({config.motion.static_steps}) leaves no motion stage in {config.steps} steps")
