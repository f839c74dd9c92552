"""A run's training, every stage: the first stage, then, when `refine.steps > 0`, the mesh refine
stage in `<run>/refine`, started from the first stage's surface. A 4D run trains its static and
motion stages in one `MotionTrainer` (dreamer.trainer.four_d)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from dreamer.errors import UserError
from dreamer.io import atomic_save
from dreamer.run_config import RunConfig, refine_stage_config
from dreamer.trainer.events import ProgressEvent
from dreamer.trainer.outputs import load_run
from dreamer.trainer.run_folder import RunFolder
from dreamer.trainer.trainer import Trainer


@dataclass
class StagesResult:
    representation: Any  # the last stage's representation, in eval mode: what is exported
    first_stage_steps: int  # the step the run's evaluation is recorded at
    metrics: dict[str, Any] = field(default_factory=dict)  # steps, final_loss, seconds, resumed_from[, refine_steps]


def train_stages(cfg: RunConfig, run: RunFolder, resume: bool = False,
                 on_progress: Callable[[ProgressEvent], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> StagesResult:
    """Train the first stage and, when configured, the refine stage; resumable stage by stage."""
    if cfg.is_4d:  # one trainer for both of its stages (static, then motion)
        from dreamer.trainer.four_d import MotionTrainer

        trainer = MotionTrainer(cfg, run, on_progress=on_progress, should_stop=should_stop)
    else:
        trainer = Trainer(cfg, run, on_progress=on_progress, should_stop=should_stop)
    first = trainer.fit(resume=resume)
    metrics: dict[str, Any] = {"steps": first.steps, "final_loss": first.final_loss,
                               "seconds": round(first.seconds, 2), "resumed_from": first.resumed_from}
    if cfg.refine.steps:
        trainer = _refine_trainer(cfg, run, resume, on_progress, should_stop)
        refine = trainer.fit(resume=resume and trainer.run.has_checkpoint())
        metrics.update(refine_steps=refine.steps, final_loss=refine.final_loss,
                       seconds=round(first.seconds + refine.seconds, 2))
    trainer.representation.eval()
    return StagesResult(trainer.representation, first.steps, metrics)


def _refine_trainer(cfg: RunConfig, run: RunFolder, resume: bool, on_progress, should_stop) -> Trainer:
    """The refine stage's trainer, over the first stage's surface (written once, as coarse.ply)."""
    stage = RunFolder(run.refine_dir).prepare()
    start = stage.asset("coarse.ply")  # the first stage's surface, with vertex colours
    if not (resume and start.exists()):  # a fresh or overwritten run never reuses an old surface
        _, coarse, _ = load_run(run.root, stage="first")
        mesh = coarse.to_mesh(cfg.refine.start_resolution)
        if len(mesh.faces) == 0:
            raise UserError("the first stage renders empty: there is no surface to refine "
                            "(more first-stage steps, or refine.steps=0)")
        atomic_save(start, lambda p: mesh.export(p, file_type="ply"))
    return Trainer(refine_stage_config(cfg, start), stage, on_progress=on_progress, should_stop=should_stop)
