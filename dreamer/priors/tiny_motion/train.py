"""Training of the `tiny-motion` prior: `train_motion(config, out_dir)` (behind `dreamer prior train-motion`).

The image UNet (`tiny`'s shipped weights) is frozen; only the temporal transformers and the text
projection learn (dreamer.priors.tiny_motion.model). Each step: B clips (data.ClipData), one
t ~ U{0..T−1} per clip shared by its frames (a share of clips from the upper half, where the
motion is decided), ε ~ N(0, I), x_t = α_t x0 + σ_t ε, and the loss ‖v̂ − v‖² with the object's
pixels weighted (the background is most of a 32 px frame, and nothing there moves) and the pixels
that change during the clip weighted again (the frozen image UNet already predicts each frame's
still content; what the new layers must learn is where the frames differ). With `target=phase_posterior`
the regression target is the v of the exact posterior mean over the clip's start phase instead of the drawn
clip's (posterior.py). Prompt
dropout (CFG) and camera dropout (the camera-free branch) as `tiny`'s training. AdamW with a
warm-up and an optional cosine tail (dreamer.priors.tiny.train.learning_rate), gradient clipping,
and an EMA of the trained weights, which is what gets shipped.

All randomness comes from one generator seeded with `seed`, checkpointed with the rest of the
state (dreamer.priors.tiny.checkpoint: `<out>/checkpoints/last.pt`), so a resumed run continues
exactly; Ctrl-C (and SIGTERM, which the CLI turns into Ctrl-C) writes a checkpoint. Out folder: model.safetensors (the trained layers,
fp16) + config.json, loss.jsonl, training.json and TRAINING.md; the rendered clips are cached
(data.load_or_build_bank).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from dreamer.devices import resolve_device
from dreamer.errors import UserError
from dreamer.io import atomic_write_text
from dreamer.priors import schedule
from dreamer.priors.tiny import checkpoint as ckpt
from dreamer.priors.tiny.loop import Session, final_loss, optimizer_step, render_progress, train_loop
from dreamer.priors.tiny.ema import EMA
from dreamer.priors.tiny.model import camera_features, drop_cameras
from dreamer.priors.tiny.text import MiniLMEncoder, TextEncoder
from dreamer.priors.tiny.train import learning_rate, weighted_mse
from dreamer.priors.tiny_motion.data import ClipData, ClipDataConfig, load_or_build_bank
from dreamer.priors.tiny_motion.model import MotionLayersConfig, build_motion_unet, clip_call, trainable_module
from dreamer.priors.tiny_motion.posterior import phase_posterior_x0, v_target
from dreamer.priors.tiny_motion.weights import MotionModelInfo, save_motion_weights

WEIGHTS = "assets/priors/tiny_motion"  # the shipped weights folder


@dataclass
class MotionTrainConfig:
    """A training run of the motion prior (saved in its checkpoint; see `dreamer prior train-motion`)."""

    steps: int = 4000  # total optimisation steps (the CPU recipe: about 2.5 hours on 2 cores at batch 6)
    batch_size: int = 6  # clips per step
    lr: float = 5e-4  # AdamW learning rate after warm-up
    warmup_steps: int = 100  # linear warm-up from 0
    decay_start: int | None = None  # cosine tail from this step to lr·final_lr_ratio at `steps`; None = constant
    # (the CPU recipe passes --decay-from 3000; it can also be set when resuming)
    final_lr_ratio: float = 0.05
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.998
    prompt_dropout: float = 0.1  # share of clips trained with the empty prompt (CFG)
    camera_dropout: float = 0.1  # share of clips trained without a camera
    object_weight: float = 2.0  # per-pixel loss weight 1 + object_weight·coverage (+ motion_weight·change)
    motion_weight: float = 4.0  # ... + motion_weight × how much the pixel changes over the clip (0–1); see
    # docs/benchmarks.md "tiny-motion" for the recipe the shipped weights used
    high_t_share: float = 0.5  # share of clips whose t comes from the upper half [T/2, T)
    noise_share: float = 0.0  # ρ: the share of noise variance a clip's frames have in common (PYoCo's mixed
    # noise, schedule.frame_noise); stored with the weights, so sampling and distillation draw noise alike
    target: Literal["clip", "phase_posterior"] = "clip"  # what v̂ is regressed onto: the drawn clip's v, or the
    # v of the exact posterior mean over the clip's start phase (posterior.py: lower variance where motion is decided)
    checkpoint_every: int = 250
    log_every: int = 25
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = None  # torch CPU threads; None = all cores
    image_prior: str = "assets/priors/tiny"  # the frozen image prior's weights folder
    init_from: str | None = None  # a tiny-motion weights folder to start from (layers it lacks start at zero)
    layers: MotionLayersConfig = field(default_factory=MotionLayersConfig)
    data: ClipDataConfig = field(default_factory=ClipDataConfig)

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1:
            raise UserError("tiny-motion training: steps must be >= 0 and batch_size >= 1")
        if self.decay_start is not None and not 0 <= self.decay_start < max(self.steps, 1):
            raise UserError(f"tiny-motion training: decay_start ({self.decay_start}) must be in [0, steps)")
        if not (0 <= self.prompt_dropout < 1 and 0 <= self.camera_dropout < 1 and 0 <= self.high_t_share <= 1
                and 0 <= self.noise_share < 1):
            raise UserError("tiny-motion training: dropouts and noise_share must be in [0, 1), high_t_share in [0, 1]")
        if self.target not in ("clip", "phase_posterior"):
            raise UserError(f"tiny-motion training: target must be clip or phase_posterior, got {self.target!r}")
        if self.target == "phase_posterior" and self.noise_share:
            raise UserError("tiny-motion training: target=phase_posterior assumes independent noise per frame; "
                            "set noise_share=0")


RESUMABLE = ("steps", "batch_size", "checkpoint_every", "log_every", "device", "threads", "decay_start",
             "final_lr_ratio")


def config_to_dict(config: MotionTrainConfig) -> dict:
    from dreamer.config import to_dict

    return to_dict(config)


def config_from_dict(d: dict) -> MotionTrainConfig:
    from dreamer.config import merge

    return merge(MotionTrainConfig(), d, prefix="train-motion")


@dataclass
class MotionTrainSummary:
    out_dir: Path
    step: int
    final_loss: float  # mean loss of the last log window (nan before the first)
    steps_per_second: float  # this session (nan if no step)
    resumed_from: int
    trained_parameters: int


def _info(config: MotionTrainConfig) -> MotionModelInfo:
    return MotionModelInfo(image_prior=config.image_prior, layers=config.layers, frames=config.data.frames,
                           data=config_to_dict(config.data), noise_share=config.noise_share)


class _Run:
    """One training session's state: the video UNet, its trained part, EMA, optimizer, generator, history."""

    def __init__(self, config: MotionTrainConfig, device: torch.device) -> None:
        from dreamer.priors.tiny.weights import load_weights
        from dreamer.resources import resolve_weights

        self.config, self.device = config, device
        torch.manual_seed(config.seed)
        image_unet, self.image_info = load_weights(resolve_weights(config.image_prior))
        self.unet = build_motion_unet(image_unet, config.layers).to(device)
        self.unet.requires_grad_(False)
        self.trained = trainable_module(self.unet)
        self.trained.requires_grad_(True)
        if config.init_from:
            warm_start(self.trained, config.init_from)
        self.unet.train()
        self.ema = EMA(self.trained, config.ema_decay)
        self.optimizer = torch.optim.AdamW(self.trained.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(config.seed)
        s = self.image_info.schedule
        self.alphas_cumprod = schedule.make_alphas_cumprod(s.num_train_timesteps, s.beta_schedule, s.beta_start,
                                                           s.beta_end).to(device)
        self.step, self.history, self.elapsed = 0, [], 0.0
        self.empty: torch.Tensor | None = None  # [1, L, D] the empty prompt's embedding (set by train_motion)

    def state(self) -> dict:
        return {"trained": self.trained.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(), "step": self.step, "generator": self.generator.get_state(),
                "history": self.history, "elapsed": self.elapsed, "config": config_to_dict(self.config)}

    def restore(self, state: dict) -> None:
        self.trained.load_state_dict(state["trained"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.step, self.history, self.elapsed = int(state["step"]), list(state["history"]), float(state["elapsed"])

    def lr(self) -> float:
        return learning_rate(self.config, self.step)

    def train_step(self, data: ClipData, encoder: TextEncoder) -> float:
        c, gen, dev = self.config, self.generator, self.device
        b = c.batch_size
        batch = data.batch(b, gen)
        x0 = (batch.clips * 2.0 - 1.0).to(dev)  # [B, F, 3, S, S]
        T = len(self.alphas_cumprod)
        t = torch.randint(T, (b,), generator=gen)
        upper = torch.randint(T // 2, T, (b,), generator=gen)
        t = torch.where(torch.rand(b, generator=gen) < c.high_t_share, upper, t).to(dev)
        eps = schedule.frame_noise(x0.shape, gen, c.noise_share).to(dev)
        drop_text = torch.rand(b, generator=gen) < c.prompt_dropout
        drop_cam = torch.rand(b, generator=gen) < c.camera_dropout
        with torch.no_grad():
            text = encoder(batch.captions).float()  # [B, L, D]
        text = torch.where(drop_text[:, None, None], self.empty.expand_as(text), text).to(dev)
        feats = drop_cameras(camera_features(batch.cameras, b), drop_cam).to(dev)
        alpha, sigma = schedule.alphas_sigmas(self.alphas_cumprod, t)  # [B, 1, 1, 1]
        alpha, sigma = alpha[:, None], sigma[:, None]  # [B, 1, 1, 1, 1]: per clip
        x_t = alpha * x0 + sigma * eps
        v_hat = clip_call(self.unet, x_t, t, text, feats)
        weight = None
        if c.object_weight or c.motion_weight:
            weight = 1.0 + c.object_weight * batch.alpha.to(dev)
            if c.motion_weight:
                weight = weight + c.motion_weight * clip_change(x0)
        if c.target == "phase_posterior":
            candidates = (data.every_phase(batch) * 2.0 - 1.0).to(dev)  # [B, P, F, 3, S, S]
            v = v_target(x_t, alpha, sigma, phase_posterior_x0(x_t, alpha, sigma, candidates))
        else:
            v = alpha * eps - sigma * x0
        loss = weighted_mse(v_hat.float(), v.float(), weight)
        return optimizer_step(self, loss, self.trained, c.grad_clip, "tiny-motion")

    def shipped_state(self) -> dict[str, torch.Tensor]:
        """The EMA of the trained layers (CPU)."""
        return {k: v.detach().cpu() for k, v in self.ema.shadow.items()}


def clip_change(x0: torch.Tensor) -> torch.Tensor:
    """[B, 1, 1, S, S] how much each pixel changes over its clip x0 [B, F, 3, S, S] in [−1, 1]: the range
    over the frames, the largest channel's, in [0, 1]. Zero wherever nothing moves (the background)."""
    spread = (x0.amax(dim=1) - x0.amin(dim=1)).amax(dim=1, keepdim=True) / 2.0  # [B, 1, S, S]
    return spread[:, None]


def warm_start(trained: torch.nn.Module, folder: str) -> None:
    """Load a weights folder's trained layers into `trained`; layers that folder lacks (a newer option) keep
    their zero start. UserError when the folder is missing or its layers do not fit."""
    from safetensors.torch import load_file

    from dreamer.priors.tiny_motion.weights import MODEL_FILE, has_motion_weights
    from dreamer.resources import resolve_weights

    path = resolve_weights(folder)
    if not has_motion_weights(path):
        raise UserError(f"tiny-motion training: init_from {folder} has no tiny-motion weights")
    state = {k: v.float() for k, v in load_file(str(path / MODEL_FILE)).items()}
    own = trained.state_dict()
    unfit = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if unfit:
        raise UserError(f"tiny-motion training: init_from {folder} does not fit these layers ({unfit[0]}, ...)")
    trained.load_state_dict(state, strict=False)


def _write_outputs(run: _Run, out_dir: Path, summary: MotionTrainSummary, command: str) -> None:
    c = run.config
    save_motion_weights(out_dir, run.shipped_state(), _info(c))
    atomic_write_text(out_dir / "loss.jsonl", "".join(json.dumps(r) + "\n" for r in run.history))
    first = run.history[0]["loss"] if run.history else float("nan")
    record = {"command": command, "steps": run.step, "batch_size": c.batch_size, "seed": c.seed,
              "first_loss": first, "final_loss": summary.final_loss, "training_seconds": round(run.elapsed, 1),
              "steps_per_second_last_session": summary.steps_per_second,
              "trained_parameters": summary.trained_parameters, "torch": torch.__version__,
              "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
              "config": config_to_dict(c)}
    atomic_write_text(out_dir / "training.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(out_dir / "TRAINING.md", "\n".join([
        "# tiny-motion prior — training record",
        "",
        f"- command: `{command}`",
        f"- frozen image prior: `{c.image_prior}`; trained: the temporal layers and the text projections"
        + (f"; started from `{c.init_from}`" if c.init_from else ""),
        f"- steps: {run.step} (batch {c.batch_size} clips of {c.data.frames} frames, seed {c.seed}, "
        f"data seed {c.data.seed})",
        f"- loss (v-prediction MSE onto the {'phase-posterior mean' if c.target == 'phase_posterior' else 'drawn clip'}, "
        f"weight 1 + {c.object_weight}·coverage + {c.motion_weight}·change): first log window {first:.4f}, final {summary.final_loss:.4f}",
        f"- training time: {run.elapsed / 60:.1f} min; last session {summary.steps_per_second:.2f} steps/s",
        f"- trained parameters: {summary.trained_parameters:,} (shipped as fp16 model.safetensors)",
        f"- torch {torch.__version__}, {record['machine']}",
        "- full config and loss curve: training.json, loss.jsonl",
        "",
    ]))


def train_motion(config: MotionTrainConfig, out_dir: Path | str, *, resume: bool | None = None,
                 progress: bool = True, encoder: TextEncoder | None = None,
                 command: str | None = None) -> MotionTrainSummary:
    """Train (or continue) into `out_dir` up to `config.steps`. resume: None = continue when out_dir has a
    checkpoint, True = require one, False = start over. On resume the saved config wins except RESUMABLE."""
    out_dir = Path(out_dir)
    command = command or " ".join(["dreamer", *sys.argv[1:]])
    state = None
    if resume or (resume is None and ckpt.checkpoint_path(out_dir).is_file()):
        state = ckpt.load_checkpoint(out_dir)
        keep = {k: getattr(config, k) for k in RESUMABLE}
        config = dataclasses.replace(config_from_dict(state["config"]), **keep)
    if config.threads:
        torch.set_num_threads(int(config.threads))
    device = resolve_device(config.device)
    out_dir.mkdir(parents=True, exist_ok=True)
    bank = load_or_build_bank(config.data, progress=render_progress(progress, "rendering clips", "pair"))
    data = ClipData(config.data, bank)
    run = _Run(config, device)
    encoder = encoder or MiniLMEncoder(run.image_info.max_length)
    with torch.no_grad():
        run.empty = encoder([""]).float()  # [1, L, D] the prompt-dropout embedding
    if state is not None:
        run.restore(state)

    def write(session: Session) -> None:
        _write_outputs(run, out_dir, _summary(run, out_dir, session), command)

    session = train_loop(run, lambda: run.train_step(data, encoder), config.steps, config.log_every,
                         config.checkpoint_every, out_dir, write, "tiny-motion prior", progress)
    return _summary(run, out_dir, session)


def _summary(run: _Run, out_dir: Path, session: Session) -> MotionTrainSummary:
    trained = sum(p.numel() for p in run.trained.parameters())
    return MotionTrainSummary(out_dir, run.step, final_loss(run.history), session.steps_per_second, session.start,
                              trained)
