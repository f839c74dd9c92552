"""The config of one text-to-3D run, and how presets, overrides and names combine into it."""

from __future__ import annotations

import copy
import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dreamer import registry
from dreamer.cameras import OrbitConfig
from dreamer.config import load_yaml, merge, nested_update, parse_override, resolve_preset, to_dict
from dreamer.errors import UserError
from dreamer.export.options import MAX_FACES, PADDING, TEXTURE_SIZE, MeshExportOptions


@dataclass
class Component:
    """A chosen component: its table name and its config dataclass."""

    name: str
    config: Any


@dataclass
class OptimConfig:
    lr_scale: float = 1.0  # multiplies every parameter group's learning rate
    betas: tuple[float, float] = (0.9, 0.99)  # Adam betas
    eps: float = 1e-15  # Adam epsilon (small: grid features get tiny gradients)
    weight_decay: float = 0.0  # Adam weight decay


@dataclass
class TrainerConfig:
    checkpoint_every: int = 200  # steps between atomic checkpoints (and always at the end)
    preview_every: int = 100  # steps between preview renders in previews/ (0 = off)
    preview_resolution: int = 128  # side of the preview render, pixels
    log_every: int = 10  # steps between metrics.jsonl lines
    progress: bool = True  # show a progress bar with ETA on stderr
    evaluate: bool = True  # write eval.json at the end for prompts of the shape library
    # share of steps whose renders are composited over a random solid colour (one per view set) instead of the
    # representation's own background: a white object over a white background costs the prior nothing as a
    # ghost; over a colour it must be opaque to look white (0 = off; the previews, exports and eval are unchanged)
    random_background: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.random_background <= 1.0:
            from dreamer.errors import UserError

            raise UserError(f"trainer.random_background must lie in [0, 1], got {self.random_background}")


@dataclass
class ExportConfig:
    formats: list[str] = field(default_factory=lambda: ["glb"])  # any of glb, obj, ply (glb always written)
    mesh_resolution: int = 128  # marching-cubes grid side (the iso-level is chosen automatically)
    fill_unseen: bool = True  # NeRF/Gaussians: fill space no camera sees before meshing (render.solid), so a shell
                              # open underneath exports as a solid; eval.json records it (it raises volume IoU)
    max_faces: int = MAX_FACES  # decimate meshes with more triangles than this (UV unwrap time grows fast)
    texture: bool = True  # bake colour into a UV texture (glb, obj+mtl+png); false: vertex colours
    texture_size: int = TEXTURE_SIZE  # texture side in texels, a power of two (16 to 8192)
    padding: int = PADDING  # texels of chart colour dilated past chart edges (no seams under filtering)
    video: bool = True  # write the turntable video
    video_frames: int = 48  # frames in the turntable
    video_resolution: int = 192  # side of the turntable frames, pixels
    fps: int = 16  # turntable frame rate (48 frames: a 3 s turn)

    def mesh_options(self, formats: list[str] | None = None) -> MeshExportOptions:
        """The mesh exporter's options (validated: a one-line UserError for a bad value)."""
        return MeshExportOptions(formats=list(self.formats if formats is None else formats),
                                 max_faces=self.max_faces, texture=self.texture,
                                 texture_size=self.texture_size, padding=self.padding).validate()


@dataclass
class RefineConfig:
    """A second stage: the first stage's result turned into a mesh and optimised on (Magic3D, DreamGaussian)."""

    steps: int = 0  # steps of the second stage; 0 = no second stage
    representation: dict[str, Any] = field(default_factory=lambda: {"name": "mesh"})  # its section (name + options)
    resolution: int = 0  # training render side in the second stage (0 = the run's `resolution`)
    start_resolution: int = 64  # marching-cubes side of the first stage's surface that the mesh starts from
    lr_scale: float = 1.0  # the second stage's optim.lr_scale
    regularizers: dict[str, float] = field(default_factory=dict)  # the second stage's regularizer weights (checked
                                                                  # against refine.representation's, like `regularizers`)


@dataclass
class MotionConfig:
    """4D runs (a representation with `is_dynamic`, e.g. gaussians4d): clips, stages and the hybrid schedule.

    The run's `prior` and `guidance` are the video prior and its rule (video steps on clips); the
    image prior and rule here score single frames: every step of the static stage (the canonical
    asset alone, Dream-in-4D's first stage) and every `image_every`-th step after it (4D-fy's hybrid).
    """

    frames: int = 0  # frames per training clip; 0 = the video prior's num_frames
    video_resolution: int = 0  # side of the clips' frames in video steps, pixels (0 = the run's `resolution`);
                               # a video prior smaller than the run's renders needs no more (F renders per step)
    static_steps: int = 0  # first stage: the canonical asset alone, image prior only (0: start from a static run,
                           # e.g. representation.init=points representation.init_points=<3D run>/splats.ply)
    image_prior: dict[str, Any] = field(default_factory=lambda: {"name": "reference"})  # single-frame prior (name + options)
    image_guidance: dict[str, Any] = field(default_factory=lambda: {"name": "sds"})  # its rule (name + options)
    image_negative_prompt: str = ""  # the image prior's negative prompt (the run's is motion-averse, for the video prior)
    image_every: int = 0  # after the static stage, every n-th step is an image step at a random time (0: none)
    image_weight: float = 1.0  # loss weight of an image step
    video_weight: float = 1.0  # loss weight of a video step
    freeze_canonical: bool = True  # the motion stage trains only the deformation (Dream-in-4D); false: both
    export_frames: int = 16  # T: frames of the exported loop (animated GLB, PLY sequence, videos, eval)
    fps: int = 8  # playback rate of the loop (16 frames: 2 s)

    def validate(self) -> "MotionConfig":
        if self.frames < 0 or self.frames == 1:
            raise UserError(f"motion.frames must be 0 (the prior's) or at least 2, got {self.frames}")
        if self.video_resolution < 0:
            raise UserError(f"motion.video_resolution must be 0 (the run's resolution) or positive, got {self.video_resolution}")
        if self.static_steps < 0 or self.image_every < 0:
            raise UserError("motion.static_steps and motion.image_every must be 0 or positive")
        if self.export_frames < 2 or self.fps < 1:
            raise UserError(f"motion.export_frames must be >= 2 and motion.fps >= 1, got {self.export_frames}, {self.fps}")
        if self.image_weight < 0 or self.video_weight < 0:
            raise UserError("motion.image_weight and motion.video_weight must be >= 0")
        for key in ("image_prior", "image_guidance"):
            section = getattr(self, key)
            if not isinstance(section, dict) or not isinstance(section.get("name"), str):
                raise UserError(f"motion.{key} must be a mapping with a name, got {section!r}")
        return self

    def component(self, kind: str) -> Component:
        """The image prior ("prior") or image rule ("guidance") as a typed component."""
        raw = dict(self.image_prior if kind == "prior" else self.image_guidance)
        name = raw.pop("name")
        return Component(name, merge(registry.default_config(kind, name), raw, prefix=f"motion.image_{kind}"))


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
    refine: RefineConfig = field(default_factory=RefineConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)  # 4D runs only (a dynamic representation)

    @property
    def is_4d(self) -> bool:
        """Whether the representation is dynamic (a 4D run: clips, a video prior, animated exports)."""
        return registry.component_class("representation", self.representation.name).is_dynamic

    def validate(self) -> "RunConfig":
        if not self.prompt.strip():
            raise UserError("the prompt is empty: give a description such as \"a red chair\"")
        if self.steps <= 0:
            raise UserError(f"steps must be a positive integer, got {self.steps}")
        if self.resolution <= 0:
            raise UserError(f"resolution must be a positive integer, got {self.resolution}")
        if self.batch_size <= 0:
            raise UserError(f"batch_size must be a positive integer, got {self.batch_size}")
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise UserError(f"device must be auto, cpu or cuda, got '{self.device}'")
        self.export.mesh_options()
        if self.refine.steps < 0 or self.refine.resolution < 0 or self.refine.start_resolution < 8:
            raise UserError("refine.steps and refine.resolution must be 0 or positive, refine.start_resolution >= 8")
        if self.refine.steps:
            refine_stage_config(self, Path("coarse.ply"))  # a bad refine section fails before any work
        if self.is_4d:
            self._validate_4d()
        elif registry.component_class("prior", self.prior.name).is_video:
            raise UserError(f"prior '{self.prior.name}' is a video prior: it needs a 4D representation "
                            "(representation=gaussians4d, or --config 4d)")
        else:
            self._validate_view_sets()
        # typed (again) for the representation in force: a mapping set by hand, or another
        # representation's weights, are checked name by name here
        self.regularizers = regularizers_for(self.representation.name, self.regularizers)
        return self

    def _validate_view_sets(self) -> None:
        views = registry.component_class("prior", self.prior.name).declared_views(self.prior.config)
        if views > 1 and not self.guidance.config.takes_view_sets:
            raise UserError(f"guidance '{self.guidance.name}' does not run on view sets (prior '{self.prior.name}' "
                            f"denoises {views} views jointly): use sds, asd, or ism/tsm with flip_probability=0, "
                            "or a single-view prior such as tiny")

    def _validate_4d(self) -> None:
        m = self.motion.validate()
        if self.refine.steps:
            raise UserError("a 4D run has no mesh refine stage: set refine.steps=0")
        if not registry.component_class("prior", self.prior.name).is_video:
            raise UserError(f"a 4D run scores clips: prior '{self.prior.name}' is an image prior; use a video prior "
                            "(reference-video, animatediff, zeroscope) and put the image prior in motion.image_prior")
        prior_class = registry.component_class("prior", self.prior.name)
        if prior_class.fixed_frames and m.frames not in (0, self.prior.config.num_frames):
            raise UserError(f"motion.frames = {m.frames}: the {self.prior.name} prior takes clips of "
                            f"{self.prior.config.num_frames} frames (prior.num_frames); set motion.frames=0")
        if not self.guidance.config.takes_clips:
            raise UserError(f"guidance '{self.guidance.name}' does not run on clips; use video-sds, sds, ism, tsm or asd")
        image_prior, image_rule = m.component("prior"), m.component("guidance")
        if registry.component_class("prior", image_prior.name).is_video:
            raise UserError(f"motion.image_prior '{image_prior.name}' is a video prior; use an image prior")
        if registry.component_class("prior", image_prior.name).declared_views(image_prior.config) > 1:
            raise UserError(f"motion.image_prior '{image_prior.name}' is a multi-view prior; a 4D run scores "
                            "single frames: use tiny or reference")
        if not image_rule.config.takes_images:
            raise UserError(f"motion.image_guidance '{image_rule.name}' does not run on single frames")
        if image_rule.config.particle_count != 1:
            raise UserError("motion.image_guidance cannot optimise several particles (vsd/esd particles=1)")
        if self.motion.static_steps >= self.steps:
            raise UserError(f"motion.static_steps ({self.motion.static_steps}) leaves no motion stage in {self.steps} steps")

    def to_dict(self) -> dict:
        data = to_dict(self)
        for key in registry.TABLES:
            section: Component = getattr(self, key)
            data[key] = {"name": section.name, **to_dict(section.config)}
        return data


_COMPONENT_KEYS = tuple(registry.TABLES)


def known_regularizers(representation: str) -> list[str]:
    """The regularizer names of a representation (the fields of its `regularizer_weights`)."""
    cls = registry.component_class("representation", representation).regularizer_weights
    return [f.name for f in dataclasses.fields(cls)]


def regularizers_for(representation: str, weights: Any, prefix: str = "regularizers") -> Any:
    """The typed regularizer weights of `representation` from a mapping name -> weight (None: all off).

    A name the representation does not have is a UserError with the closest one it does have.
    """
    cls = registry.component_class("representation", representation).regularizer_weights
    if weights is None:
        weights = {}
    if dataclasses.is_dataclass(weights):
        weights = to_dict(weights)
    if not isinstance(weights, dict):
        raise UserError(f"config section '{prefix}' must map regularizer names to weights, got {weights!r}")
    known = known_regularizers(representation)
    for key in weights:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            listing = f"{representation} knows: {', '.join(known)}" if known else f"{representation} has none"
            raise UserError(f"{prefix}: unknown '{key}' for {representation}{hint} ({listing})")
    return merge(cls(), weights, prefix=prefix)


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
                regularizers=dict(r.regularizers), refine={"steps": 0})
    data["optim"]["lr_scale"] = r.lr_scale
    stage = build_run_config(data)
    if stage.refine.steps:
        raise UserError("refine.representation cannot itself have a refine stage")
    return stage


def build_run_config(data: dict) -> RunConfig:
    """RunConfig from a plain mapping (a merged preset); validates every key and type."""
    data = copy.deepcopy(data)
    sections = {}
    for key in _COMPONENT_KEYS:
        raw = data.pop(key, None)
        if raw is None:
            raw = {}
        if isinstance(raw, str):
            raw = {"name": raw}
        if not isinstance(raw, dict):
            raise UserError(f"config section '{key}' must be a name or a mapping, got {raw!r}")
        raw = dict(raw)
        name = raw.pop("name", getattr(RunConfig(), key).name)
        if not isinstance(name, str):
            raise UserError(f"config key '{key}.name' must be a string, got {name!r}")
        config = merge(registry.default_config(key, name), raw, prefix=key)
        sections[key] = Component(name, config)
    weights = data.pop("regularizers", None)
    config = merge(RunConfig(), data)
    for key, section in sections.items():
        setattr(config, key, section)
    config.regularizers = regularizers_for(config.representation.name, weights)
    if config.refine.regularizers:  # checked now, even when refine.steps = 0
        refine_name = config.refine.representation.get("name", "mesh")
        if isinstance(refine_name, str):
            regularizers_for(refine_name, config.refine.regularizers, prefix="refine.regularizers")
    return config


def load_run_config(preset: str | None = "default", overrides: dict | None = None,
                    dotted: list[str] | None = None) -> RunConfig:
    """Preset (name or path) ← overrides mapping ← 'a.b=value' strings, in that order.

    Changing a component's name (e.g. guidance=vsd) drops the preset's options for the old one;
    changing the representation keeps only the preset's regularizer weights the new one has
    (representation=gaussians keeps a NeRF preset's sparsity; representation=mesh drops it).
    """
    data: dict = load_yaml(resolve_preset(preset)) if preset else {}
    preset_weights = data.pop("regularizers", None)
    preset_representation = _section_name(data, "representation")
    for key, value in (overrides or {}).items():
        _apply(data, key.split("."), value)
    for text in dotted or []:
        path, value = parse_override(text)
        _apply(data, path, value)
    representation = _section_name(data, "representation")
    if isinstance(preset_weights, dict) and isinstance(representation, str) and representation != preset_representation:
        known = known_regularizers(representation)  # the preset's weights for another representation
        preset_weights = {k: v for k, v in preset_weights.items() if k in known}
    given = data.pop("regularizers", None)
    if isinstance(preset_weights, dict) and isinstance(given, (dict, type(None))):
        given = {**preset_weights, **(given or {})}  # the overrides win, name by name
    elif given is None:
        given = preset_weights  # None, or not a mapping (build_run_config says so)
    if given is not None:
        data["regularizers"] = given
    return build_run_config(data)


def _section_name(data: dict, key: str) -> Any:
    """The component name a (partly merged) config mapping chooses for section `key`."""
    section = data.get(key)
    if isinstance(section, str):
        return section
    if isinstance(section, dict) and "name" in section:
        return section["name"]
    return getattr(RunConfig(), key).name


def _apply(data: dict, path: list[str], value: Any) -> None:
    head = path[0]
    if head in _COMPONENT_KEYS:
        section = data.get(head)
        if isinstance(section, str):
            section = {"name": section}
            data[head] = section
        if len(path) == 1 or path[1:] == ["name"]:
            if isinstance(value, dict):
                data[head] = value
                return
            current = (section or {}).get("name") if isinstance(section, dict) else None
            if current != value:
                data[head] = {"name": value}  # another component: the old options don't apply
            return
    nested_update(data, path, value)


def save_run_config(config: RunConfig, path: Path) -> None:
    import yaml

    from dreamer.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
