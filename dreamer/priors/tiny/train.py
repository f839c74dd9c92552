"""Training of the tiny prior: `train(config, out_dir)` (behind `dreamer prior train`).

Each step: a batch of composited views (data.TrainingData), t ~ U{0..T−1}, ε ~ N(0, I),
x_t = α_t x0 + σ_t ε with x0 = 2·image − 1, and the loss ‖v̂ − v‖² with v = α_t ε − σ_t x0.
Prompt dropout replaces the caption by the empty prompt (for classifier-free guidance); camera
dropout, independently, replaces the camera features by the "no camera" zeros (the camera-free
branch that `predict_noise(camera=None)` uses). AdamW at a constant learning rate after a linear
warm-up (a constant rate keeps "resume to a larger step count" meaningful), gradient clipping,
and an EMA of the weights, which is what gets shipped.

All randomness (batches, t, ε, dropouts) comes from one torch.Generator seeded with `seed`,
whose state is checkpointed. Out folder: checkpoints/last.pt (resumable state, not shipped),
model.safetensors + config.json (EMA weights, fp16), loss.jsonl, TRAINING.md and training.json.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from dreamer.errors import UserError
from dreamer.io import atomic_write_text
from dreamer.devices import resolve_device
from dreamer.priors import schedule
from dreamer.priors.tiny import checkpoint as ckpt
from dreamer.priors.tiny.loop import Session, final_loss, optimizer_step, render_progress, train_loop
from dreamer.priors.tiny.data import TinyDataConfig, TrainingData
from dreamer.priors.tiny.ema import EMA
from dreamer.priors.tiny.lifted import LiftedConfig
from dreamer.priors.tiny.model import TinyUNetConfig, count_parameters, network_call
from dreamer.priors.tiny.text import DEFAULT_MAX_LENGTH, CaptionBank, MiniLMEncoder, TextEncoder
from dreamer.priors.tiny.weights import ScheduleConfig, TinyModelInfo, build_network, save_weights


@dataclass
class TinyTrainConfig:
    """A training run of the tiny prior (saved in its checkpoint; see `dreamer prior train`)."""

    steps: int = 5500  # total optimisation steps: the ~2-hour CPU run (1.3–1.45 s/step on 2 cores); the shipped
    # weights are the GPU recipe: --steps 1400 --decay-from 770 --batch-size 512 lr=6e-4 (assets/priors/tiny/TRAINING.md)
    batch_size: int = 32  # images per step
    lr: float = 3e-4  # AdamW learning rate after warm-up
    warmup_steps: int = 200  # linear learning-rate warm-up from 0
    decay_start: int | None = None  # from this step the lr follows a cosine down to lr·final_lr_ratio at `steps`; None = constant
    final_lr_ratio: float = 0.05  # lr at the last step as a share of `lr` when decaying
    weight_decay: float = 0.0  # AdamW weight decay
    grad_clip: float = 1.0  # max global gradient norm
    ema_decay: float = 0.999  # EMA decay of the shipped weights
    prompt_dropout: float = 0.1  # share of examples trained with the empty prompt (CFG)
    camera_dropout: float = 0.1  # share of examples trained without a camera (camera-free branch)
    checkpoint_every: int = 500  # steps between checkpoints (also written at the end and on Ctrl-C)
    log_every: int = 50  # steps per loss.jsonl record (mean loss over the window)
    seed: int = 0  # training seed (batches, timesteps, noise, dropouts, initialisation)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # where to train
    threads: int | None = None  # torch CPU threads; None = torch's default (all cores)
    max_length: int = DEFAULT_MAX_LENGTH  # text tokens per caption
    unet: TinyUNetConfig = field(default_factory=TinyUNetConfig)  # the architecture
    # "lifted": the `tiny-3d` network (dreamer.priors.tiny.lifted, configured by `lifted`) instead of the UNet;
    # it is trained on x̂0 (its v̂ divides by σ_t, which would weight the loss by 1/σ² towards t = 0)
    architecture: Literal["unet", "lifted"] = "unet"
    lifted: LiftedConfig = field(default_factory=LiftedConfig)
    data: TinyDataConfig = field(default_factory=TinyDataConfig)  # the training data
    # making the camera count in the loss (issue 27's candidates): the background and the colour dominate the
    # pixels, and the camera only decides the object's outline, most of all at high t where x_t shows little
    object_weight: float = 0.0  # per-pixel loss weight 1 + object_weight·coverage (normalised by the mean weight)
    high_t_share: float = 0.0  # share of samples whose t is drawn from the upper half [T/2, T) instead of [0, T)
    # lifted only: weight of the 3D loss, the volume's voxel opacities against the library object's occupancy
    # (dreamer.priors.tiny.occupancy); 0 = the x̂0 loss alone
    volume_weight: float = 0.0
    volume_skip_surface: bool = False  # the 3D loss only on voxels wholly inside or outside (occupancy_loss)
    # a weights folder whose network starts this run (tiny-mv starts from tiny's weights: the new inputs,
    # the raymap channels and the field-of-view feature, start at zero weight); None = random initialisation
    init_from: str | None = None

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1:
            raise UserError("tiny training: steps must be >= 0 and batch_size >= 1")
        if self.unet.image_size != self.data.image_size:
            raise UserError(f"tiny training: unet.image_size ({self.unet.image_size}) must equal "
                            f"data.image_size ({self.data.image_size})")
        if self.decay_start is not None and not 0 <= self.decay_start < max(self.steps, 1):
            raise UserError(f"tiny training: decay_start ({self.decay_start}) must be in [0, steps)")
        if not (0 <= self.prompt_dropout < 1 and 0 <= self.camera_dropout < 1):
            raise UserError("tiny training: prompt_dropout and camera_dropout must be in [0, 1)")
        views = self.data.views_per_set
        if self.object_weight < 0 or not 0 <= self.high_t_share <= 1:
            raise UserError("tiny training: object_weight must be >= 0 and high_t_share in [0, 1]")
        if self.batch_size % views:
            raise UserError(f"tiny training: batch_size ({self.batch_size}) must be a multiple of "
                            f"data.views_per_set ({views})")
        if views > 1 and not (self.unet.cross_view or self.architecture == "lifted"):
            raise UserError("tiny training: view sets (data.views_per_set > 1) need unet.cross_view=true")
        if self.architecture == "lifted" and self.camera_dropout:
            raise UserError("tiny training: the lifted network renders at the cameras, so it takes no camera_dropout")
        if self.volume_weight < 0 or (self.volume_weight and self.architecture != "lifted"):
            raise UserError("tiny training: volume_weight must be >= 0, and only the lifted network (tiny-3d) has a "
                            "volume")


@dataclass
class TrainSummary:
    """What a finished (or already finished) run reports."""

    out_dir: Path  # the out folder
    step: int  # steps done
    final_loss: float  # mean loss of the last log window (nan if no step was taken)
    steps_per_second: float  # over this session's steps (nan if none)
    resumed_from: int  # step the session started at (0 = fresh)
    parameters: int  # UNet parameter count


def recipe(model: str) -> TinyTrainConfig:
    """The training config a `dreamer prior train --model MODEL` run starts from (overrides go on top)."""
    if model == "tiny":
        return TinyTrainConfig()
    if model == "tiny-mv":
        # fine-tuned from tiny's weights (the text, colour and shape it already knows) so that the CPU budget
        # goes to what is new: reading the raymap and agreeing across the views of a set; object-weighted
        # loss and half the sets at high t, where the camera decides most (the shipped weights ran 1,250
        # steps without these, then 1,800 with them: assets/priors/tiny_mv/TRAINING.md)
        return TinyTrainConfig(
            steps=3050, decay_start=2250, batch_size=32, lr=2e-4, warmup_steps=100, init_from="assets/priors/tiny",
            object_weight=4.0, high_t_share=0.5, checkpoint_every=250,
            unet=TinyUNetConfig(camera_fov=True, ray_channels=6, cross_view=True),
            data=TinyDataConfig(views_per_set=4, source="live", fovy_range=(36.0, 50.0)))
    if model == "tiny-3d":
        # a view-set denoiser that renders one volume per set (dreamer.priors.tiny.lifted): camera-true by
        # construction, so the CPU budget goes to shape and colour; trained from scratch on x̂0, with the
        # object's pixels weighted as tiny-mv's stage 2 (the background is most of a 32 px view)
        return TinyTrainConfig(
            architecture="lifted", steps=3500, decay_start=2640, batch_size=32, lr=1e-3, warmup_steps=100,
            camera_dropout=0.0, object_weight=2.0, checkpoint_every=250,
            data=TinyDataConfig(views_per_set=4, source="live", fovy_range=(36.0, 50.0)))
    raise UserError(f"unknown prior model {model!r}; known: {', '.join(PRIOR_MODELS)}")


# each embedded prior model and its shipped weights folder (a Python-package name: no hyphen)
PRIOR_MODELS = {"tiny": "assets/priors/tiny", "tiny-mv": "assets/priors/tiny_mv", "tiny-3d": "assets/priors/tiny_3d"}

# Settings a resumed run may change; everything else (model, data, seed, lr) comes from the checkpoint.
RESUMABLE = ("steps", "batch_size", "checkpoint_every", "log_every", "device", "threads", "decay_start", "final_lr_ratio")


def config_to_dict(config: TinyTrainConfig) -> dict:
    from dreamer.config import to_dict

    return to_dict(config)


def config_from_dict(d: dict) -> TinyTrainConfig:
    from dreamer.config import merge

    return merge(TinyTrainConfig(), d, prefix="train")


def learning_rate(config: TinyTrainConfig, step: int) -> float:
    """The lr of optimisation step `step` (0-based): linear warm-up, constant, then an optional cosine tail.

    The tail exists because a constant lr leaves the loss flat once the model has learned the
    coarse structure; decaying it lets a resumed run settle (`decay_start` can be set on resume).
    """
    warm = config.warmup_steps
    lr = config.lr * (min(1.0, (step + 1) / warm) if warm > 0 else 1.0)
    start = config.decay_start
    if start is None or step < start:
        return lr
    progress = min(1.0, (step - start) / max(config.steps - start, 1))
    ratio = config.final_lr_ratio + (1 - config.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return lr * ratio


class _Run:
    """The state of one training session (model, EMA, optimizer, generator, history)."""

    def __init__(self, config: TinyTrainConfig, device: torch.device) -> None:
        self.config, self.device = config, device
        torch.manual_seed(config.seed)  # parameter initialisation
        self.unet = build_network(_model_info(config))
        if config.init_from:
            _start_from(self.unet, config.init_from)
        self.unet = self.unet.to(device).train()
        self.occupancy = None
        if config.volume_weight:
            from dreamer.priors.tiny.occupancy import OccupancyTargets

            self.occupancy = OccupancyTargets(self.unet.voxel_centres("cpu", torch.float32),
                                              config.lifted.voxel_spacing)
        self.ema = EMA(self.unet, config.ema_decay)
        self.optimizer = torch.optim.AdamW(self.unet.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(config.seed)
        s = ScheduleConfig()
        acp = schedule.make_alphas_cumprod(s.num_train_timesteps, s.beta_schedule, s.beta_start, s.beta_end)
        self.alphas_cumprod = acp.to(device)  # [T]
        self.step = 0
        self.history: list[dict] = []  # loss.jsonl records
        self.elapsed = 0.0  # seconds of training over all sessions

    def state(self) -> dict:
        return {"unet": self.unet.state_dict(), "ema": self.ema.state_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.step, "generator": self.generator.get_state(), "history": self.history,
                "elapsed": self.elapsed, "config": config_to_dict(self.config)}

    def restore(self, state: dict) -> None:
        self.unet.load_state_dict(state["unet"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.step, self.history, self.elapsed = int(state["step"]), list(state["history"]), float(state["elapsed"])

    def lr(self) -> float:
        return learning_rate(self.config, self.step)

    def _timesteps(self, n: int) -> torch.Tensor:
        """[n] t ~ U{0..T−1}, or from the upper half for `high_t_share` of them (drawn only when it is set)."""
        T, gen = len(self.alphas_cumprod), self.generator
        t = torch.randint(T, (n,), generator=gen)
        if self.config.high_t_share > 0:
            upper = torch.randint(T // 2, T, (n,), generator=gen)
            t = torch.where(torch.rand(n, generator=gen) < self.config.high_t_share, upper, t)
        return t

    def train_step(self, data, captions: CaptionBank) -> float:
        """One step on `batch_size` images: single views (TrainingData) or sets of V views (ViewSetData),
        where the views of a set share t, the caption and the text and camera dropouts."""
        c, gen, dev = self.config, self.generator, self.device
        views = c.data.views_per_set
        b = c.batch_size
        n = b // views  # samples (sets of V views; single views when V = 1)
        batch = data.batch(n, gen)
        per_view = (lambda x: x.repeat_interleave(views, dim=0)) if views > 1 else (lambda x: x)  # noqa: E731
        x0 = (batch.images * 2.0 - 1.0).to(dev)  # [B, 3, S, S]
        t = per_view(self._timesteps(n))  # [B]
        eps = torch.randn(x0.shape, generator=gen).to(dev)  # [B, 3, S, S]
        drop_text = per_view(torch.rand(n, generator=gen) < c.prompt_dropout)  # [B]
        drop_cam = per_view(torch.rand(n, generator=gen) < c.camera_dropout)  # [B]
        text = captions.lookup(batch.caption_index)  # [B, L, D]
        text = torch.where(drop_text[:, None, None], captions.empty.expand_as(text), text).to(dev)
        t = t.to(dev)
        x_t = schedule.add_noise(x0, eps, t, self.alphas_cumprod)
        alpha, sigma = schedule.alphas_sigmas(self.alphas_cumprod, t)  # [B, 1, 1, 1]
        weight = None if not c.object_weight else 1.0 + c.object_weight * batch.alpha.to(dev)
        if c.architecture == "lifted":
            x0_hat, volume = self.unet.predict_x0_and_volume(x_t, t, text, _batch_camera(batch, c), views)
            loss = weighted_mse(x0_hat.float(), x0.float(), weight)
            if self.occupancy is not None:
                from dreamer.priors.tiny.occupancy import occupancy_loss

                target = self.occupancy(batch.specs).to(dev)
                loss = loss + c.volume_weight * occupancy_loss(self.unet.voxel_opacity(volume).float(), target,
                                                             c.volume_skip_surface)
        else:
            v_hat = network_call(self.unet, c.unet, x_t, t, text, _batch_camera(batch, c), views, drop=drop_cam,
                                 spherical=batch.cameras.to(dev))
            loss = weighted_mse(v_hat.float(), schedule.velocity(x0, eps, alpha, sigma).float(), weight)
        return optimizer_step(self, loss, self.unet, c.grad_clip, "tiny-prior")

    def shipped_unet(self) -> torch.nn.Module:
        """A copy of the UNet holding the EMA weights (CPU, eval)."""
        unet = build_network(_model_info(self.config))
        unet.load_state_dict({k: v.cpu() for k, v in self.unet.state_dict().items()})
        shadow = {k: v.cpu() for k, v in self.ema.shadow.items()}
        unet.load_state_dict(shadow, strict=False)
        return unet.eval()


def weighted_mse(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error, per-pixel weighted by `weight` [B, 1, S, S] (normalised by its mean) when given."""
    if weight is None:
        return torch.nn.functional.mse_loss(prediction, target)
    return ((prediction - target) ** 2 * weight).mean() / weight.mean()


def _batch_camera(batch, config: TinyTrainConfig):
    """The batch's cameras as a Camera (only the raymap needs more than the spherical coordinates)."""
    if not (config.unet.ray_channels or config.unet.camera_fov or config.architecture == "lifted"):
        return None
    from dreamer.cameras import from_spherical

    fovy = getattr(batch, "fovy", None)
    sph = batch.cameras
    return from_spherical(sph[:, 0], sph[:, 1], sph[:, 2], fovy if fovy is not None else config.data.fovy,
                          config.unet.image_size)


def _start_from(unet: torch.nn.Module, folder: str) -> None:
    """Load the weights in `folder` into `unet`, widened where the layout has extra inputs (a lifted network
    takes weights of the same layout only)."""
    from dreamer.priors.tiny.lifted import LiftedDenoiser
    from dreamer.priors.tiny.multiview import widen_state_dict
    from dreamer.resources import resolve_weights
    from dreamer.priors.tiny.weights import load_weights

    source, _ = load_weights(resolve_weights(folder))
    if isinstance(unet, LiftedDenoiser):
        if not isinstance(source, LiftedDenoiser) or source.config != unet.config:
            raise UserError(f"tiny training: init_from={folder} holds another network than this lifted one "
                            f"(its layout must equal lifted={unet.config.to_dict()})")
        unet.load_state_dict(source.state_dict())
        return
    unet.load_state_dict(widen_state_dict(unet.state_dict(), source.state_dict()))


def _model_info(config: TinyTrainConfig) -> TinyModelInfo:
    return TinyModelInfo(unet=config.unet, schedule=ScheduleConfig(), max_length=config.max_length,
                         data=config_to_dict(config.data),
                         lifted=config.lifted if config.architecture == "lifted" else None)


def model_name(config: TinyTrainConfig) -> str:
    """The prior model a training config makes (a PRIOR_MODELS key)."""
    return "tiny-3d" if config.architecture == "lifted" else ("tiny-mv" if config.unet.cross_view else "tiny")


def _write_outputs(run: _Run, out_dir: Path, summary: TrainSummary, command: str) -> None:
    c = run.config
    save_weights(out_dir, run.shipped_unet(), _model_info(c))
    atomic_write_text(out_dir / "loss.jsonl", "".join(json.dumps(r) + "\n" for r in run.history))
    first = run.history[0]["loss"] if run.history else float("nan")
    record = {
        "command": command,
        "steps": run.step,
        "batch_size": c.batch_size,
        "seed": c.seed,
        "data_seed": c.data.seed,
        "first_loss": first,
        "final_loss": summary.final_loss,
        "training_seconds": round(run.elapsed, 1),
        "steps_per_second_last_session": summary.steps_per_second,
        "parameters": summary.parameters,
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "config": config_to_dict(c),
    }
    atomic_write_text(out_dir / "training.json", json.dumps(record, indent=2) + "\n")
    loss_name = "x̂0 MSE" if c.architecture == "lifted" else "v-prediction MSE"
    if c.volume_weight:
        loss_name += f" + {c.volume_weight:g} × voxel-occupancy BCE"
        loss_name += " (whole voxels only)" if c.volume_skip_surface else ""
    atomic_write_text(out_dir / "TRAINING.md", "\n".join([
        f"# {model_name(c)} prior — training record",
        "",
        f"- command: `{command}`",
        f"- steps: {run.step} (batch {c.batch_size}, seed {c.seed}, data seed {c.data.seed})",
        f"- loss ({loss_name}): first log window {first:.4f}, final {summary.final_loss:.4f}",
        f"- training time: {run.elapsed / 60:.1f} min; last session {summary.steps_per_second:.2f} steps/s",
        f"- network parameters: {summary.parameters:,} (shipped as fp16 model.safetensors)",
        f"- torch {torch.__version__}, {record['machine']}",
        "- full config and loss curve: training.json, loss.jsonl",
        "",
    ]))


def train(config: TinyTrainConfig, out_dir: Path | str, *, resume: bool | None = None, progress: bool = True,
          encoder: TextEncoder | None = None, command: str | None = None) -> TrainSummary:
    """Train (or continue training) into `out_dir` up to `config.steps` steps.

    resume: None = continue automatically when out_dir has a checkpoint; True = require one;
    False = start over (an existing checkpoint is overwritten). On resume the saved config is
    used, except the RESUMABLE settings (steps, batch size, logging, device, threads, the lr decay).
    `encoder` replaces MiniLM (tests).
    """
    out_dir = Path(out_dir)
    command = command or " ".join(["dreamer", *sys.argv[1:]])
    has_ckpt = ckpt.checkpoint_path(out_dir).is_file()
    state = None
    if resume or (resume is None and has_ckpt):
        state = ckpt.load_checkpoint(out_dir)
        saved = config_from_dict(state["config"])  # the saved run's model, data and seed win
        keep = {k: getattr(config, k) for k in RESUMABLE}
        config = dataclasses.replace(saved, **keep)
    if config.threads:
        torch.set_num_threads(int(config.threads))
    device = resolve_device(config.device)
    out_dir.mkdir(parents=True, exist_ok=True)

    bank = None
    if config.data.views_per_set > 1:
        from dreamer.priors.tiny.view_sets import ViewSetData

        data = ViewSetData(config.data)
    else:
        if config.data.source == "bank":
            from dreamer.priors.tiny.views import load_or_build_bank

            bank = load_or_build_bank(config.data, progress=render_progress(progress, "rendering views", "object"))
        data = TrainingData(config.data, bank)
    captions = CaptionBank(data.captions, encoder or MiniLMEncoder(config.max_length, device=device))

    run = _Run(config, device)
    if state is not None:
        run.restore(state)

    def write(session: Session) -> None:
        _write_outputs(run, out_dir, _summary(run, out_dir, session), command)

    session = train_loop(run, lambda: run.train_step(data, captions), config.steps, config.log_every,
                         config.checkpoint_every, out_dir, write, "tiny prior", progress)
    return _summary(run, out_dir, session)


def _summary(run: _Run, out_dir: Path, session: Session) -> TrainSummary:
    return TrainSummary(out_dir, run.step, final_loss(run.history), session.steps_per_second, session.start,
                        count_parameters(run.unet))
