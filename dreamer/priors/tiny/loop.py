"""The training loop shared by the embedded priors' trainers (`tiny`, `tiny-mv`, `tiny-3d`: dreamer.priors.tiny.train;
`tiny-motion`: dreamer.priors.tiny_motion.train).

A trainer's run object holds `step`, `history` (loss.jsonl records), `elapsed` (seconds over all sessions),
`state()` (everything a resume needs) and `lr()`; `train_loop` takes its steps up to `steps`, keeps the
history in windows of `log_every` steps, checkpoints every `checkpoint_every` steps (and writes the
weights so far with `write_outputs`), shows a progress bar with the loss and an ETA, and on Ctrl-C (or
SIGTERM, which the CLI turns into Ctrl-C) saves a checkpoint and raises `Interrupted`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from dreamer.errors import Interrupted
from dreamer.priors.tiny import checkpoint as ckpt


@dataclass
class Session:
    """What one call of `train_loop` did."""

    start: int  # the step it started at (0 = fresh)
    done: int  # steps it took
    seconds: float  # its wall time

    @property
    def steps_per_second(self) -> float:
        return self.done / self.seconds if self.done else math.nan


def final_loss(history: list[dict]) -> float:
    """The mean loss of the last log window (nan before the first)."""
    return history[-1]["loss"] if history else math.nan


def train_loop(run, train_step: Callable[[], float], steps: int, log_every: int, checkpoint_every: int,
               out_dir: Path, write_outputs: Callable[[Session], None], desc: str, progress: bool = True) -> Session:
    """Take `train_step()` until `run.step` reaches `steps`; see the module docstring."""
    start, window, done = run.step, [], 0
    bar = progress_bar(progress, steps, start, desc)
    t0 = session_t0 = time.perf_counter()

    def session() -> Session:
        return Session(start, done, time.perf_counter() - session_t0)

    def log() -> None:
        run.history.append({"step": run.step, "loss": sum(window) / len(window), "lr": run.lr(),
                            "elapsed": round(run.elapsed, 2)})

    try:
        while run.step < steps:
            loss = train_step()
            done += 1
            window.append(loss)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{sum(window) / len(window):.4f}")
            if run.step % log_every == 0 or run.step == steps:
                now = time.perf_counter()
                run.elapsed, t0 = run.elapsed + now - t0, now
                log()
                window = []
            if run.step % checkpoint_every == 0 and run.step < steps:
                ckpt.save_checkpoint(out_dir, run.state())
                write_outputs(session())  # the weights so far, usable (and measurable) while the run goes on
    except KeyboardInterrupt:
        run.elapsed += time.perf_counter() - t0
        ckpt.save_checkpoint(out_dir, run.state())
        raise Interrupted(f"interrupted at step {run.step}: checkpoint saved; run the same command to resume") from None
    finally:
        if bar is not None:
            bar.close()
    run.elapsed += time.perf_counter() - t0
    if window:  # a partial window at the end (steps not a multiple of log_every)
        log()
    ckpt.save_checkpoint(out_dir, run.state())
    finished = session()
    write_outputs(finished)
    return finished


def optimizer_step(run, loss, trained, grad_clip: float, diverged: str) -> float:
    """One update of `run` from `loss`: the step's lr, backward, gradient clipping, the optimizer, the EMA of
    `trained` (the module whose weights are shipped), step + 1. A non-finite loss raises TrainingDiverged
    (`diverged` names the model) before anything changes, so the last checkpoint stays good."""
    import torch

    from dreamer.errors import TrainingDiverged

    if not torch.isfinite(loss):
        raise TrainingDiverged(f"{diverged} loss became {loss.item()} at step {run.step + 1}; "
                               "the last checkpoint is kept: lower lr= or resume")
    for group in run.optimizer.param_groups:
        group["lr"] = run.lr()
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trained.parameters(), grad_clip)
    run.optimizer.step()
    run.ema.update(trained)
    run.step += 1
    return float(loss.detach())


def progress_bar(enabled: bool, total: int, initial: int, desc: str, unit: str = "step"):
    """A tqdm bar (with an ETA), or None when progress is off."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)


def render_progress(enabled: bool, desc: str, unit: str) -> Callable[[int, int], None] | None:
    """A `progress(done, total)` callback drawing a bar for rendering a training bank (None when off)."""
    if not enabled:
        return None
    state: dict = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = progress_bar(True, total, 0, desc, unit)
        state["bar"].update(done - state["bar"].n)
        if done == total:
            state["bar"].close()

    return update
