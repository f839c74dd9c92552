"""The 4D loop: a static stage with the image prior, then a motion stage with the video prior.

Every step renders the representation at cameras that carry times (`Camera.time`):
- an image step (every step of the static stage, and every `motion.image_every`-th step after it,
  4D-fy's hybrid schedule) renders B single frames (B view sets of V frames for a multi-view image
  prior such as `tiny-3d`, the views of a set at one time) — at time 0 in the static stage, where the
  deformation is off, at random times after it — and scores them with `motion.image_prior`;
- a video step renders B clips of F frames (F = `clip_frames`), each from one orbit camera at the loop's
  frame times shifted by a random phase, and scores them [B, F, H, W, 3] with the run's video prior and rule.

In the motion stage the canonical asset is frozen when `motion.freeze_canonical` (Dream-in-4D: the
static result keeps its quality while the deformation learns the motion). The stage is a function
of the step, so a resumed run lands in the same stage with the same frozen parameters.

Frame counts. Time is continuous (`Camera.time` in [0, 1), one loop), so each of a 4D run's frame
counts samples the same loop for its own purpose, and none has to divide another. Config keys keep
their names; in code each count has its own:
- `prior.num_frames` (`VideoPrior.num_frames`): the clip length the video prior takes, by default the
  one it was trained on (reference-video 8; tiny-motion its weights' length, 8; AnimateDiff, zeroscope 16).
- `motion.frames` (F; `clip_frames` here and in dreamer.trainer.spin): frames per training clip, at
  times phase + k / F; 0 = `prior.num_frames`, the only value a fixed-length prior accepts.
- `representation.track_keyframes` (K; gaussians4d's `SimilarityTrack(keyframes)`): keyframes of the
  global similarity track over one loop, interpolated between: a parameter count, not a sampling of
  the loop (nor is `representation.time_resolution`, the HexPlane's cells along time).
- `motion.export_frames` (T; `export_frames` in dreamer.trainer.four_d_outputs): the exported loop at
  times k / T: model.glb's morph targets and frames/frame_NNN.ply, played at `motion.fps` (a loop
  lasts T / motion.fps seconds); eval.json scores the same T frames (`evaluate_motion(eval_frames=T)`,
  its "frames"; `eval_frames` defaults to 8 outside a run).
- motion.mp4's frames (`motion_video_frames` in dreamer.export.four_d_video; no key): one loop at
  `export.fps`, max(2, round(T / motion.fps · export.fps)).
- `export.video_frames` (`turntable_frames` in dreamer.export.four_d_video): turntable.mp4, one turn
  of the camera at `export.fps`, during which the loop plays a whole number of times (`loops_per_turn`).
"""

from __future__ import annotations

import re

import torch

from dreamer import registry
from dreamer.cameras import clip_cameras
from dreamer.errors import UserError
from dreamer.guidance.base import GuidanceOutput
from dreamer.representations.base import RenderOutput
from dreamer.run_config import RunConfig
from dreamer.trainer.trainer import Trainer

DEFORMATION_PREFIX = "deformation"  # parameter groups of the deformation field (the rest is the canonical asset)


def image_prompt(prompt: str, prior_name: str) -> str:
    """The prompt the image prior gets: for the embedded priors (which know only the static library),
    the prompt without its motion ("a red cube bouncing" -> "a red cube"); others get it unchanged."""
    from dreamer import registry

    if not registry.component_class("prior", prior_name).embedded:
        return prompt
    from dreamer.shapes.prompt import static_prompt

    return static_prompt(prompt)


class MotionTrainer(Trainer):
    """`Trainer` for dynamic representations (see the module docstring)."""

    def __init__(self, config: RunConfig, run, on_progress=None, should_stop=None):
        super().__init__(config, run, on_progress=on_progress, should_stop=should_stop)
        m = config.motion
        self.clip_frames = m.frames or int(self.prior.num_frames)  # F: frames per training clip (module notes)
        image_prior = m.component("prior")
        image_rule = m.component("guidance")
        try:
            self.image_prior = registry.component_class("prior", image_prior.name)(image_prior.config, self.device)
        except UserError as error:  # the prior names its options as the run's `prior.…`; here they sit elsewhere
            raise UserError(re.sub(r"(?<![\w.])prior\.", "motion.image_prior.", str(error))) from None
        self.image_embedding = self.image_prior.encode_prompt(
            image_prompt(config.prompt, image_prior.name), m.image_negative_prompt,
            view_dependent=image_rule.config.view_dependent_prompt)
        self.image_rule_config = image_rule.config
        self._stage: str | None = None  # the stage the representation and the optimiser are set for
        self.image_guidance = registry.component_class("guidance", image_rule.name)(
            image_rule.config, self.image_prior, m.static_steps or config.steps, self.guidance_generator)
        extra = self.image_guidance.trainable_parameters()
        if extra:
            self.optimizer.add_param_group({"params": extra, "lr": image_rule.config.trainable_lr,
                                            "name": "image_guidance"})

    # -- stages ---------------------------------------------------------------------------
    # Each stage runs its rule's schedules from the start: the static stage the image rule's (the hybrid image
    # steps after it stay at its end: low t, details), the motion stage the video rule's (high t first, where the
    # target clip is a blurred average that shows where the object goes, then low t).
    def guidance_steps(self) -> int:
        return self.config.steps - self.config.motion.static_steps

    def image_rule_step(self, step: int) -> int:
        static = self.config.motion.static_steps
        return min(step, static - 1) if static else step

    def video_rule_step(self, step: int) -> int:
        return step - self.config.motion.static_steps

    def stage(self, step: int) -> str:
        return "static" if step < self.config.motion.static_steps else "motion"

    def is_image_step(self, step: int) -> bool:
        m = self.config.motion
        if self.stage(step) == "static":
            return True
        return bool(m.image_every) and (step - m.static_steps) % m.image_every == m.image_every - 1

    def _enter_stage(self, stage: str) -> None:
        """Render mode and trainable parameters of the stage (deformation off in the static stage;
        the canonical asset frozen in the motion stage when `freeze_canonical`). At the motion stage's first
        step, its whole turns per loop are chosen (`motion.spin_turns`; a resumed run keeps its choice)."""
        if stage == self._stage:
            return
        self._stage = stage
        self.representation.set_stage(stage)
        if stage == "motion" and self.step == self.config.motion.static_steps:
            self._choose_spin()
        freeze_canonical = stage == "motion" and self.config.motion.freeze_canonical
        for group in self.optimizer.param_groups:
            name = str(group.get("name", ""))
            if name.startswith(DEFORMATION_PREFIX):
                trainable = stage == "motion"
            elif name in ("guidance", "image_guidance"):
                continue
            else:
                trainable = not freeze_canonical
            for p in group["params"]:
                p.requires_grad_(trainable)

    def _choose_spin(self) -> None:
        import json

        from dreamer.io import atomic_write_text
        from dreamer.trainer.spin import choose_spin

        choice = choose_spin(self.representation, self.prior, self.embedding, self.config, self.clip_frames,
                             self.device)
        if choice is not None:  # what the test measured, beside the run's other records
            atomic_write_text(self.run.asset("spin.json"), json.dumps(choice.to_dict(), indent=2) + "\n")

    # -- one step -------------------------------------------------------------------------
    def guided_render(self) -> tuple[RenderOutput, GuidanceOutput, float, dict]:
        c, m = self.config, self.config.motion
        stage = self.stage(self.step)
        self._enter_stage(stage)
        if self.is_image_step(self.step):
            views = self.image_prior.views_per_sample  # a multi-view image prior scores view sets of one time
            cameras = self.sample_cameras(views)
            sets = len(cameras) // views
            times = torch.rand(sets, generator=self.camera_generator) if stage == "motion" else torch.zeros(sets)
            cameras = cameras.with_time(times.repeat_interleave(views).to(self.device))
            out = self.representation.render(cameras)
            inputs = self.image_rule_config.render_inputs(out.depth, out.alpha)
            guided = self.image_guidance(out.rgb, self.image_embedding, cameras, self.image_rule_step(self.step),
                                         **inputs)
            return out, guided, m.image_weight, {"video_step": 0}
        cameras = self.sample_cameras()
        B = len(cameras)
        if m.video_resolution:
            cameras = cameras.with_resolution(m.video_resolution)
        phase = torch.rand(B, 1, generator=self.camera_generator)
        times = phase + torch.arange(self.clip_frames, dtype=torch.float32)[None] / self.clip_frames  # [B, F]
        clip = clip_cameras(cameras, times)
        out = self.representation.render(clip)
        per_clip = lambda x: x.unflatten(0, (B, self.clip_frames))  # noqa: E731
        inputs = c.guidance.config.render_inputs(per_clip(out.depth), per_clip(out.alpha))
        guided = self.guidance(per_clip(out.rgb), self.embedding, clip, self.video_rule_step(self.step), **inputs)
        return out, guided, m.video_weight, {"video_step": 1}

    # -- checkpoints ----------------------------------------------------------------------
    def _guidance_state(self) -> dict:
        return {"video": self.guidance.checkpoint_state(), "image": self.image_guidance.checkpoint_state()}

    def restore(self) -> int:
        step = super().restore()
        self._enter_stage(self.stage(step))
        return step

    def load_guidance_state(self, state: dict) -> None:
        if state.get("video"):
            self.guidance.load_state_dict(state["video"], strict=False)
        if state.get("image"):
            self.image_guidance.load_state_dict(state["image"], strict=False)
