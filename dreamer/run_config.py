"""The config of one text-to-3D run, and how presets, overrides and names combine into it."""

from __future__ import annotations

import copy
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


@dataclass
class ExportConfig:
    formats: list[str] = field(default_factory=lambda: ["glb"])  # any of glb, obj, ply (glb always written)
    mesh_resolution: int = 128  # marching-cubes grid side (the iso-level is chosen automatically)
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
    regularizers: dict[str, float] = field(default_factory=dict)  # the second stage's regularizer weights


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
    regularizers: dict[str, float] = field(default_factory=dict)  # weight per representation regulariser name
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)

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
        for name, weight in self.regularizers.items():
            if not isinstance(weight, (int, float)):
                raise UserError(f"regularizers.{name} must be a number, got {weight!r}")
        return self

    def to_dict(self) -> dict:
        data = to_dict(self)
        for key in registry.TABLES:
            section: Component = getattr(self, key)
            data[key] = {"name": section.name, **to_dict(section.config)}
        return data


_COMPONENT_KEYS = tuple(registry.TABLES)


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
    config = merge(RunConfig(), data)
    for key, section in sections.items():
        setattr(config, key, section)
    return config


def load_run_config(preset: str | None = "default", overrides: dict | None = None,
                    dotted: list[str] | None = None) -> RunConfig:
    """Preset (name or path) ← overrides mapping ← 'a.b=value' strings, in that order.

    Changing a component's name (e.g. guidance=vsd) drops the preset's options for the old one.
    """
    data: dict = load_yaml(resolve_preset(preset)) if preset else {}
    for key, value in (overrides or {}).items():
        _apply(data, key.split("."), value)
    for text in dotted or []:
        path, value = parse_override(text)
        _apply(data, path, value)
    return build_run_config(data)


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
