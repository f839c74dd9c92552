"""The sections of a run's config: optimiser, trainer, export, colour and refine stages, 4D motion settings,
and `Component` (a chosen guidance rule, representation or prior with its typed config)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

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


BACKGROUND_COLOURS: tuple[str, ...] = ("rgb", "neutral")  # TrainerConfig.random_background_colours


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
    # what those colours are: "rgb" uniform in the RGB cube; "neutral" a uniform grey level from black to white
    random_background_colours: str = "rgb"

    def __post_init__(self) -> None:
        from dreamer.errors import UserError

        if not 0.0 <= self.random_background <= 1.0:
            raise UserError(f"trainer.random_background must lie in [0, 1], got {self.random_background}")
        if self.random_background_colours not in BACKGROUND_COLOURS:
            raise UserError(f"trainer.random_background_colours must be one of {BACKGROUND_COLOURS}, "
                            f"got {self.random_background_colours!r}")


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
    video_frames: int = 48  # frames in turntable.mp4: one camera turn at `fps` (a 4D run's loop plays a whole
                            # number of times in it; 4D frame counts: dreamer.trainer.four_d)
    video_resolution: int = 192  # side of the turntable frames, pixels
    fps: int = 16  # turntable frame rate (48 frames: a 3 s turn)
    eval_surface_samples: int = 30_000  # eval.json's chamfer, F-scores and normal consistency: points sampled on each
                                        # mesh (fewer: faster and coarser; most of the 3D eval's time)

    def __post_init__(self) -> None:
        if self.eval_surface_samples < 100:
            from dreamer.errors import UserError

            raise UserError(f"export.eval_surface_samples must be at least 100, got {self.eval_surface_samples}")

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
class ColourStageConfig:
    """The run's last steps with the shape frozen: only what sets colour trains, at a low CFG scale.

    CFG at the default scale (5) extrapolates away from a warm unconditional estimate and pushes colours to
    their saturated neighbours (brown to red, grey to teal), while the conditional estimate alone reads the
    colour right (docs/benchmarks.md, "CFG and colour"). Lowering CFG for the whole run faded the objects,
    because the shape was still forming; here the shape has formed and cannot move. Timesteps are high
    so that the estimate redraws the colour from the prompt instead of keeping the colour it is shown.
    A share of `steps`, so that `--steps N` sets a whole run's length. SDS only; the representation must
    offer `ColourTunable`.
    """

    share: float = 0.0  # the last share of `steps` that trains colour alone (0 = none; the default preset: a third)
    guidance_scale: float = 1.0  # CFG scale of these steps (1 = the conditional estimate: one prior call, not two)
    t_min: float = 0.4  # lowest timestep, fraction of T
    t_max: float = 0.9  # highest timestep, fraction of T (no anneal)
    lr: float = 0.01  # Adam learning rate of the colour parameters

    def __post_init__(self) -> None:
        if not 0.0 <= self.share < 1.0:
            raise UserError(f"colour.share must lie in [0, 1), got {self.share}")
        if self.guidance_scale < 0 or self.lr <= 0:
            raise UserError("colour.guidance_scale must be >= 0 and colour.lr positive")
        if not 0.0 <= self.t_min <= self.t_max <= 1.0:
            raise UserError(f"colour needs 0 <= t_min <= t_max <= 1, got t_min={self.t_min}, t_max={self.t_max}")

    def steps_of(self, steps: int) -> int:
        """How many of a run's `steps` are colour steps (the last ones)."""
        return round(self.share * steps)

    def guidance_config(self, base: Any) -> Any:
        """The run's SDS config with this stage's CFG scale and timesteps (uniform, no anneal)."""
        return replace(base, guidance_scale=self.guidance_scale, t_min=self.t_min, t_max=self.t_max,
                       t_anneal=None, t_schedule="random")


@dataclass
class MotionConfig:
    """4D runs (a representation with `is_dynamic`, e.g. gaussians4d): clips, stages and the hybrid schedule.

    The run's `prior` and `guidance` are the video prior and its rule (video steps on clips); the
    image prior and rule here score single frames: every step of the static stage (the canonical
    asset alone, Dream-in-4D's first stage) and every `image_every`-th step after it (4D-fy's hybrid).

    Two frame counts live here: `frames` (F, the training clips) and `export_frames` (T, the exported
    and evaluated loop). They are independent: time is continuous, so a run trained on 8-frame clips
    exports any T. All of a 4D run's frame counts: dreamer.trainer.four_d's module docstring.
    """

    frames: int = 0  # F: frames per training clip (each video step, and the spin test), at times phase + k / F;
                     # 0 = the video prior's `prior.num_frames`, the only value a fixed-length prior
                     # (reference-video) accepts. In code: MotionTrainer.clip_frames
    video_resolution: int = 0  # side of the clips' frames in video steps, pixels (0 = the run's `resolution`);
                               # a video prior smaller than the run's renders needs no more (F renders per step)
    static_steps: int = 0  # first stage: the canonical asset alone, image prior only (0: start from a static run,
                           # e.g. representation.init=points representation.init_points=<3D run>/splats.ply)
    # the single-frame prior and its rule, typed like the run's own `prior` and `guidance` (a YAML mapping with a
    # name and options; build_run_config turns it into a Component whose config is the named class's dataclass)
    image_prior: Component = field(default_factory=lambda: Component("reference", None))
    image_guidance: Component = field(default_factory=lambda: Component("sds", None))
    image_negative_prompt: str = ""  # the image prior's negative prompt (the run's is motion-averse, for the video prior)
    image_every: int = 0  # after the static stage, every n-th step is an image step at a random time (0: none)
    image_weight: float = 1.0  # loss weight of an image step
    video_weight: float = 1.0  # loss weight of a video step
    freeze_canonical: bool = True  # the motion stage trains only the deformation (Dream-in-4D); false: both
    export_frames: int = 16  # T: frames of the exported loop at times k / T: model.glb's morph targets, frames/*.ply,
                             # and the frames eval.json scores ("frames" there); sets motion.mp4's length (one
                             # loop: T / fps seconds at export.fps). Independent of `frames` and export.video_frames
    fps: int = 8  # playback rate of the exported loop, frames of T per second (16 frames: a 2 s loop)
    # whole turns per loop about the vertical axis, chosen at the start of the motion stage by the video prior's
    # denoising error (dreamer.trainer.spin): the hypotheses, and the clips, (t, ε) draws and t range of the test.
    # One hypothesis (the default, 0) is no test: the track learns its rotation from zero as before
    spin_turns: tuple[float, ...] = (0.0,)
    spin_clips: int = 2
    spin_draws: int = 4
    spin_t: tuple[float, float] = (0.3, 0.7)  # t range, as a share of the prior's T
    spin_margin: float = 0.35  # a turn must score this share of no turn's score better than no turn

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
        self.spin_turns, self.spin_t = tuple(float(x) for x in self.spin_turns), tuple(float(x) for x in self.spin_t)
        if not self.spin_turns or any(x != int(x) for x in self.spin_turns) or self.spin_clips < 1 or self.spin_draws < 1:
            raise UserError(f"motion.spin_turns must be whole numbers of turns (e.g. [0, 1, -1]) and spin_clips, "
                            f"spin_draws >= 1; got {list(self.spin_turns)}, {self.spin_clips}, {self.spin_draws}")
        if self.spin_margin < 0:
            raise UserError(f"motion.spin_margin must be >= 0, got {self.spin_margin}")
        if len(self.spin_t) != 2 or not 0.0 <= self.spin_t[0] < self.spin_t[1] <= 1.0:
            raise UserError(f"motion.spin_t must be [low, high] with 0 <= low < high <= 1, got {list(self.spin_t)}")
        return self

    def component(self, kind: str) -> Component:
        """The image prior ("prior") or image rule ("guidance")."""
        return self.image_prior if kind == "prior" else self.image_guidance
