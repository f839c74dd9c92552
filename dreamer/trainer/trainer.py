"""The optimisation loop: cameras → render → guidance → step, with checkpoints, metrics and previews.

When `colour.share > 0` the last share of the steps runs with the shape frozen (the colour stage): the
representation's colour parameters alone (`ColourTunable`) under the rule at the colour stage's CFG scale
and timesteps, and without the representation's step hooks, which only maintain the shape (occupancy
grid, densification). The rule's schedules span the steps before it.

Reproducibility: every random draw comes from generators seeded by `config.seed` (cameras,
guidance timesteps/noise, NeRF sample jitter through torch's global RNG), and all of their states
go into the checkpoint so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from dreamer.cameras import sample_orbit, sample_view_sets, turntable
from dreamer.errors import Interrupted, TrainingDiverged
from dreamer.guidance.base import GuidanceOutput
from dreamer.representations.base import RenderOutput
from dreamer.run_config import RunConfig, save_run_config
from dreamer.devices import resolve_device
from dreamer.trainer.build import build_guidance, build_prior, build_representation
from dreamer.trainer.events import ProgressEvent
from dreamer.trainer.run_folder import RunFolder


@dataclass
class TrainResult:
    steps: int  # final step reached
    final_loss: float
    seconds: float  # wall time of this process's training
    resumed_from: int  # 0 when started fresh


def _make_generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def random_backgrounds(share: float, renders: int, views: int, generator: torch.Generator,
                       colours: str = "rgb") -> torch.Tensor | None:
    """[renders, 1, 1, 3] random solid colours, one per set of `views` renders, with probability `share`
    (one draw decides); None otherwise. Draws nothing when `share` is 0. `colours`: "rgb" uniform in the RGB
    cube, "neutral" a uniform grey level (TrainerConfig.random_background_colours)."""
    if share <= 0 or not bool(torch.rand((), generator=generator) < share):
        return None
    sets = renders // views
    drawn = torch.rand(sets, 1, generator=generator).expand(sets, 3) if colours == "neutral" else \
        torch.rand(sets, 3, generator=generator)
    return drawn.repeat_interleave(views, dim=0).view(renders, 1, 1, 3)


class Trainer:
    def __init__(self, config: RunConfig, run: RunFolder,
                 on_progress: Callable[[ProgressEvent], None] | None = None,
                 should_stop: Callable[[], bool] | None = None):
        self.config = config.validate()
        self.run = run
        self.on_progress = on_progress
        self.should_stop = should_stop  # polled each step (the UI's cancel button)
        self.device = resolve_device(config.device)
        self.camera_generator = _make_generator(config.seed)
        self.guidance_generator = _make_generator(config.seed + 1)
        self.colour_steps = config.colour.steps_of(config.steps)  # the last steps: colour alone
        self.representation = build_representation(config, self.device)
        self.prior = build_prior(config, self.device)
        self.embedding = self.prior.encode_prompt(
            config.prompt, config.negative_prompt, view_dependent=config.guidance.config.view_dependent_prompt,
        )
        # name -> weight, for the names the representation's `regularization` returns
        self.regularizer_weights = dataclasses.asdict(self.config.regularizers)
        self.guidance = build_guidance(config, self.prior, self.guidance_generator, self.guidance_steps())
        self.optimizer = self._make_optimizer()
        self.step = 0
        self.last_loss = float("nan")
        self.in_colour_stage = False

    # -- set-up ---------------------------------------------------------------------------
    @property
    def shape_steps(self) -> int:
        """The steps before the colour stage (all of them without one)."""
        return self.config.steps - self.colour_steps

    def guidance_steps(self) -> int:
        """The steps the rule's schedules (t, warm-ups) span: the run's, up to its colour stage."""
        return self.shape_steps

    def _make_optimizer(self) -> torch.optim.Optimizer:
        o = self.config.optim
        groups = self.representation.parameter_groups(o.lr_scale)
        extra = self.guidance.trainable_parameters()
        if extra:
            lr = self.config.guidance.config.trainable_lr
            if lr is None:
                raise TypeError(f"guidance '{self.config.guidance.name}' trains parameters but its config "
                                "declares no trainable_lr")
            groups.append({"params": extra, "lr": lr, "name": "guidance"})
        return torch.optim.Adam(groups, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)

    def enter_colour_stage(self) -> None:
        """Freeze the shape: from here on only the colour parameters train, under the colour stage's rule."""
        c = self.config
        groups = self.representation.colour_parameter_groups(c.colour.lr)
        # no weight decay: it would move the frozen rows that a zero gradient keeps still
        self.optimizer = torch.optim.Adam(groups, betas=c.optim.betas, eps=c.optim.eps)
        colour_rule = dataclasses.replace(c, guidance=dataclasses.replace(
            c.guidance, config=c.colour.guidance_config(c.guidance.config)))
        self.guidance = build_guidance(colour_rule, self.prior, self.guidance_generator, self.colour_steps)
        self.in_colour_stage = True

    @property
    def rule_step(self) -> int:
        """The step as the rule's schedules count it: from 0 again in the colour stage."""
        return self.step - self.shape_steps if self.in_colour_stage else self.step

    # -- checkpoints ----------------------------------------------------------------------
    def _guidance_state(self) -> dict:
        return self.guidance.checkpoint_state()

    def checkpoint_state(self) -> dict:
        return {
            "step": self.step,
            "representation": self.representation.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "guidance": self._guidance_state(),
            "rng": {
                "camera": self.camera_generator.get_state(),
                "guidance": self.guidance_generator.get_state(),
                "torch": torch.get_rng_state(),
            },
            "loss": self.last_loss,
            "stage": "colour" if self.in_colour_stage else "first",
        }

    def save_checkpoint(self) -> None:
        self.run.save_checkpoint(self.checkpoint_state())

    def load_guidance_state(self, state: dict) -> None:
        self.guidance.load_state_dict(state, strict=False)

    def restore(self) -> int:
        """Load the run folder's checkpoint; returns the step it reached."""
        state = self.run.load_checkpoint(map_location=self.device)
        self.representation.load_state_dict(state["representation"])
        if state.get("stage") == "colour":  # its optimizer holds the colour parameters only
            self.enter_colour_stage()
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("guidance"):
            self.load_guidance_state(state["guidance"])
        rng = state["rng"]
        self.camera_generator.set_state(rng["camera"].cpu())
        self.guidance_generator.set_state(rng["guidance"].cpu())
        torch.set_rng_state(rng["torch"].cpu())
        self.step = int(state["step"])
        self.last_loss = float(state.get("loss", float("nan")))
        self.run.truncate_metrics(self.step)
        return self.step

    # -- the loop -------------------------------------------------------------------------
    def sample_cameras(self, views: int | None = None):
        """`batch_size` cameras; for a multi-view prior `batch_size` view sets of its V views (set-major),
        sharing elevation, distance and field of view, at azimuths base + k·360°/V ± 15° as it was trained.
        `views` replaces the run prior's V (the 4D loop's image steps use their own prior's)."""
        c = self.config
        views = self.prior.views_per_sample if views is None else views
        if views > 1:
            return sample_view_sets(c.batch_size, views, c.camera, c.resolution, c.resolution,
                                    generator=self.camera_generator).to(self.device)
        return sample_orbit(c.batch_size, c.camera, c.resolution, c.resolution,
                            generator=self.camera_generator).to(self.device)

    def distill_background(self, renders: int) -> torch.Tensor | None:
        """[renders, 1, 1, 3] random solid colours, one per view set, on `trainer.random_background` of the
        steps; None (the representation's own background) otherwise. Draws from the camera generator only
        when the option is on, so runs without it are unchanged."""
        trainer = self.config.trainer
        colours = random_backgrounds(trainer.random_background, renders, self.prior.views_per_sample,
                                     self.camera_generator, trainer.random_background_colours)
        return None if colours is None else colours.to(self.device)

    def guided_render(self) -> tuple[RenderOutput, GuidanceOutput, float, dict]:
        """One step's render and guidance: (render, guidance output, the loss weight, extra metrics)."""
        cameras = self.sample_cameras()
        background = self.distill_background(len(cameras))
        out = self.representation.render(cameras) if background is None else \
            self.representation.render(cameras, background=background)
        # depth and opacity reach only rules that declare they use them (GuidanceConfig.render_inputs)
        inputs = self.config.guidance.config.render_inputs(out.depth, out.alpha)
        return out, self.guidance(out.rgb, self.embedding, cameras, self.rule_step, **inputs), 1.0, {}

    def train_step(self) -> dict:
        if self.colour_steps and self.step >= self.shape_steps and not self.in_colour_stage:
            self.enter_colour_stage()
        if not self.in_colour_stage:
            self.representation.before_step(self.step)
        out, guided, weight, record = self.guided_render()
        loss = weight * guided.loss
        record.update({"guidance_loss": float(guided.loss.detach()), "grad_norm": float(guided.grad_norm),
                       "t": float(guided.t.float().mean())})
        for name, value in self.representation.regularization(out).items():
            weight = self.regularizer_weights[name]
            if weight:
                loss = loss + weight * value
                record[f"reg_{name}"] = float(value.detach())
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"the loss became {float(loss.detach())} at step {self.step + 1}; the last good checkpoint is kept "
                f"in {self.run.checkpoint_path} — lower optim.lr_scale or the guidance scale and --resume"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if not self.in_colour_stage:
            self.representation.after_step(self.step, self.optimizer)
        self.step += 1
        self.last_loss = float(loss.detach())
        record["loss"] = self.last_loss
        return record

    def fit(self, resume: bool = False) -> TrainResult:
        c = self.config
        self.run.prepare()
        resumed_from = self.restore() if resume and self.run.has_checkpoint() else 0
        if not resume:
            self.run.metrics_path.unlink(missing_ok=True)
        save_run_config(c, self.run.config_path)
        start_time = time.perf_counter()
        bar = self._progress_bar(resumed_from)
        try:
            while self.step < c.steps:
                if self.should_stop is not None and self.should_stop():
                    raise KeyboardInterrupt
                record = self.train_step()
                elapsed = time.perf_counter() - start_time
                done_here = self.step - resumed_from
                eta = elapsed / done_here * (c.steps - self.step)
                record.update(step=self.step, elapsed_s=round(elapsed, 3))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{self.last_loss:.4g}", refresh=False)
                preview = None
                if c.trainer.preview_every and self.step % c.trainer.preview_every == 0:
                    preview = self.write_preview()
                if self.step % c.trainer.log_every == 0 or self.step == c.steps:
                    self.run.append_metrics(record)
                # and where the shape is final, before the colour stage
                if self.step % c.trainer.checkpoint_every == 0 or self.step in (self.shape_steps, c.steps):
                    self.save_checkpoint()
                if self.on_progress is not None:
                    self.on_progress(ProgressEvent(self.step, c.steps, self.last_loss, elapsed, eta, preview, record))
        except KeyboardInterrupt:
            self.save_checkpoint()
            raise Interrupted(
                f"interrupted at step {self.step}/{c.steps}; checkpoint saved — continue with "
                f"`dreamer generate --resume --out {self.run.root}`"
            ) from None
        finally:
            if bar is not None:
                bar.close()
        return TrainResult(self.step, self.last_loss, time.perf_counter() - start_time, resumed_from)

    def _progress_bar(self, initial: int):
        if not self.config.trainer.progress:
            return None
        import sys

        from tqdm.auto import tqdm

        # In a log file (not a terminal) every refresh is a new line: refresh less often there.
        return tqdm(total=self.config.steps, initial=initial, desc="dreamer", unit="step", dynamic_ncols=True,
                    mininterval=0.1 if sys.stderr.isatty() else 5.0)

    # -- previews -------------------------------------------------------------------------
    @torch.no_grad()
    def write_preview(self) -> Path:
        from dreamer.export.images import save_image, tile_row

        from dreamer.representations.particles import particle_members

        res = self.config.trainer.preview_resolution
        cams = turntable(4, res, res, elevation=15.0).to(self.device)
        was_training = self.representation.training
        self.representation.eval()
        white = torch.ones(3, device=self.device)
        # one row of four views per particle
        rows = [tile_row(member.render(cams, background=white).rgb) for member in particle_members(self.representation)]
        self.representation.train(was_training)
        path = self.run.preview_dir / f"step_{self.step:06d}.png"
        image = torch.cat(rows, dim=0)
        save_image(path, image)
        save_image(self.run.preview_dir / "latest.png", image)
        return path
