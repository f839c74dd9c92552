"""Train an amortised generator by score distillation, on one process or several.

    dreamer amortized train --out DIR [--guidance sds|asd|vsd] [--prompts FILE|vocabulary] [--steps N] [key=value …]
    torchrun --nproc_per_node=N -m dreamer.amortized.train --out DIR …

Each step takes `batch_size` prompts (over all processes), renders each once from its own camera and
scores it with the per-prompt preset's prior and rule (`train.preset`, default `default`); the loss is
the batch mean. With several processes: gloo on CPU, nccl on GPU, the generator in
DistributedDataParallel (the frozen prior is never wrapped), a rule's own trained parameters (VSD's
LoRA) averaged by all-reduce, every random draw from (seed, step, prompt index) (`prompts`), rank 0
writes and the others wait at a barrier. Seeded and resumable (`--resume`), a progress bar with ETA,
a checkpoint every `train.checkpoint_every` steps and on Ctrl-C or SIGTERM.

Keys: `train.*` (AmortizedTrainConfig), `generator.*` (GeneratorConfig), and any per-prompt run key
(`guidance.guidance_scale=7.5`, `camera.elevation=[0,30]`, …) applied over the preset.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from dreamer.amortized.arguments import add_arguments
from dreamer.amortized.config import WEIGHTS, AmortizedTrainConfig, GeneratorConfig
from dreamer.amortized.generator import AmortizedNeRF
from dreamer.amortized.prompts import load_prompts, sample_generator, shard, step_prompts
from dreamer.cameras import sample_orbit
from dreamer.config import load_yaml, merge, parse_override, to_dict
from dreamer.devices import resolve_device
from dreamer.errors import Interrupted, TrainingDiverged, UserError
from dreamer.io import atomic_save, atomic_write_text
from dreamer.run_config import RunConfig, load_run_config
from dreamer.trainer.build import build_guidance, build_prior
from dreamer.trainer.trainer import random_backgrounds

CHECKPOINT = Path("checkpoints") / "last.pt"


@dataclass
class AmortizedSetup:
    """Everything a run is made of, as parsed from the command line or a saved config.yaml."""

    train: AmortizedTrainConfig
    generator: GeneratorConfig
    run: RunConfig  # the per-prompt preset with the overrides: prior, guidance, cameras, regularizers
    run_overrides: list[str]

    def to_dict(self) -> dict:
        return {"train": to_dict(self.train), "generator": to_dict(self.generator), "run_overrides": self.run_overrides}


def make_setup(overrides: list[str], guidance: str = "", prompts: str = "", steps: int | None = None,
               base: dict | None = None) -> AmortizedSetup:
    """`train.*`, `generator.*` and run keys (over `base`, a saved config.yaml, when resuming)."""
    base = base or {}
    train_data, gen_data = dict(base.get("train", {})), dict(base.get("generator", {}))
    run_overrides = list(base.get("run_overrides", []))
    for text in overrides:
        path, value = parse_override(text)
        if path[0] == "train" and len(path) == 2:
            train_data[path[1]] = value
        elif path[0] == "generator" and len(path) == 2:
            gen_data[path[1]] = value
        else:
            run_overrides.append(text)
    if guidance:
        train_data["guidance"] = guidance
    if prompts:
        train_data["prompts"] = prompts
    if steps is not None:
        train_data["steps"] = steps
    train = merge(AmortizedTrainConfig(), train_data, prefix="train")
    generator = merge(GeneratorConfig(), gen_data, prefix="generator").validate()
    # the rule's name first: naming another rule than the preset's drops the preset's options for it, and
    # must not drop the guidance.* overrides given for the new one
    dotted = ([f"guidance={train.guidance}"] if train.guidance else []) + run_overrides
    # any training prompt validates the run settings; each step sets its own
    run = load_run_config(train.preset, {"prompt": "a red cube"}, dotted).validate()
    return AmortizedSetup(train, generator, run, run_overrides)


# ------------------------------------------------------------------------------------------ processes
@dataclass
class Processes:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, tensors: list[torch.Tensor]) -> None:
        """All-reduce `tensors` in place to their mean over the processes."""
        if self.distributed:
            for t in tensors:
                dist.all_reduce(t, op=dist.ReduceOp.SUM)
                t.div_(self.world_size)

    def any(self, flag: bool) -> bool:
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)


def start_processes(device_name: str) -> Processes:
    """One process, or torchrun's group (WORLD_SIZE > 1): gloo on CPU, nccl on CUDA (one GPU per rank)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world <= 1:
        return Processes(0, 1, device)
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(dist.get_rank(), dist.get_world_size(), device)


# ------------------------------------------------------------------------------------------ training
@dataclass
class TrainSummary:
    out: Path
    steps: int
    resumed_from: int
    seconds: float
    final_loss: float
    prompts: int


class AmortizedTrainer:
    def __init__(self, out: Path, setup: AmortizedSetup, prompts: list[str], processes: Processes):
        self.out, self.setup, self.prompts, self.proc = out, setup, prompts, processes
        t, run = setup.train, setup.run
        setup.train.validate(processes.world_size)
        self.dtype = torch.float64 if t.dtype == "float64" else torch.float32
        device = processes.device
        self.prior = build_prior(run, device)
        self.prior.requires_grad_(False)
        first = self._embed(prompts[0])
        self.prior.text_vector(first)  # a prior without text features refuses before the other prompts are encoded
        self.embeddings = [first] + [self._embed(p) for p in prompts[1:]]
        self.text = torch.stack([self.prior.text_vector(e) for e in self.embeddings]).to(device, self.dtype)
        if self.dtype == torch.float64:  # the equivalence runs: the whole computation in float64
            self.prior.to(torch.float64)
            if hasattr(self.prior, "model_dtype"):
                self.prior.model_dtype = torch.float64
        torch.manual_seed(t.seed)  # the same initial generator on every process and at every world size
        self.model = AmortizedNeRF(self.text.shape[1], setup.generator).to(device, self.dtype)
        self.guidance = build_guidance(run, self.prior, torch.Generator(), t.steps)
        self.guidance.to(device)  # a rule's own network (VSD's LoRA) stays in its dtype, float32
        self.rule_parameters = list(self.guidance.trainable_parameters())
        groups = [{"params": list(self.model.parameters()), "lr": t.lr}]
        if self.rule_parameters:
            groups.append({"params": self.rule_parameters, "lr": run.guidance.config.trainable_lr})
        self.optimizer = torch.optim.Adam(groups, betas=(0.9, 0.99), eps=1e-15)
        self.network = self.model
        if processes.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.network = DistributedDataParallel(self.model, device_ids=[device] if device.type == "cuda" else None)
        self.weights = dataclasses.asdict(run.regularizers)
        self.step = 0

    def _embed(self, prompt: str):
        run = self.setup.run
        e = self.prior.encode_prompt(prompt, run.negative_prompt,
                                     view_dependent=run.guidance.config.view_dependent_prompt)
        if self.dtype == torch.float64:
            e = dataclasses.replace(e, cond=e.cond.double(), uncond=e.uncond.double(),
                                    empty=None if e.empty is None else e.empty.double(),
                                    views={k: v.double() for k, v in e.views.items()})
        return e

    # -- one sample, one step
    def _background(self, g: torch.Generator) -> torch.Tensor | None:
        trainer = self.setup.run.trainer
        colours = random_backgrounds(trainer.random_background, 1, 1, g, trainer.random_background_colours)
        return None if colours is None else colours.to(self.proc.device, self.dtype)

    def sample_loss(self, planes: torch.Tensor, index: int) -> tuple[torch.Tensor, dict]:
        run, t = self.setup.run, self.setup.train
        g = sample_generator(t.seed, self.step, index)
        camera = sample_orbit(1, run.camera, run.resolution, run.resolution, generator=g).to(self.proc.device)
        if self.dtype == torch.float64:
            camera = camera.to(torch.float64)  # rays, samples and renders in float64 too
        out = self.model.render(planes, camera, self._background(g), generator=g)
        self.guidance.generator = g  # t, ε (and ASD's shift) of this sample
        guided = self.guidance(out.rgb, self.embeddings[index], camera, self.step,
                               **run.guidance.config.render_inputs(out.depth, out.alpha))
        loss = guided.loss
        for name, value in self.model.renderer.regularization(out).items():
            if self.weights.get(name):
                loss = loss + self.weights[name] * value
        return loss, {"guidance_loss": float(guided.loss.detach()), "t": float(guided.t.float().mean())}

    def train_step(self) -> dict:
        t = self.setup.train
        local = shard(step_prompts(t.seed, self.step, t.batch_size, len(self.prompts)), self.proc.rank,
                      self.proc.world_size)
        planes = self.network(self.text[local])  # [b, 3, C, R, R], through DDP when distributed
        loss, records = 0.0, []
        for i, index in enumerate(local):
            sample, record = self.sample_loss(planes[i], index)
            loss = loss + sample / len(local)
            records.append(record)
        diverged = self.proc.any(not bool(torch.isfinite(loss.detach())))
        if diverged:
            raise TrainingDiverged(f"the loss became non-finite at step {self.step + 1}; the last good checkpoint is "
                                   f"kept in {self.out / CHECKPOINT} — lower train.lr and --resume")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.proc.mean([p.grad for p in self.rule_parameters if p.grad is not None])
        grad_norm = torch.sqrt(sum((p.grad.detach().double() ** 2).sum() for p in self.model.parameters()
                                   if p.grad is not None))
        self.optimizer.step()
        self.step += 1
        # the batch means over every process (each holds an equal share of the batch)
        means = torch.tensor([float(loss.detach()), sum(r["guidance_loss"] for r in records) / len(records),
                              sum(r["t"] for r in records) / len(records)], dtype=torch.float64, device=self.proc.device)
        self.proc.mean([means])
        return {"step": self.step, "loss": float(means[0]), "grad_norm": float(grad_norm),
                "guidance_loss": float(means[1]), "t": float(means[2]), "prompts": local}

    # -- files (rank 0 writes)
    def checkpoint_state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "guidance": self.guidance.checkpoint_state(), "step": self.step, "text_dim": self.model.text_dim}

    def save(self) -> None:
        if self.proc.rank == 0:
            state = self.checkpoint_state()
            atomic_save(self.out / CHECKPOINT, lambda p: torch.save(state, p))
            weights = {"model": {k: v.float() for k, v in self.model.state_dict().items()},
                       "text_dim": self.model.text_dim, "step": self.step,
                       "generator": to_dict(self.setup.generator), "run": self.setup.run.to_dict(),
                       "prompts": self.prompts}
            atomic_save(self.out / WEIGHTS, lambda p: torch.save(weights, p))
        self.proc.barrier()

    def restore(self) -> int:
        state = torch.load(self.out / CHECKPOINT, map_location=self.proc.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("guidance"):
            self.guidance.load_state_dict(state["guidance"], strict=False)
        self.step = int(state["step"])
        return self.step

    def fit(self, resume: bool = False, progress: bool = True) -> TrainSummary:
        t = self.setup.train
        start = self.restore() if resume else 0
        bar = None
        if progress and self.proc.rank == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=t.steps, initial=start, desc="amortized", unit="step", dynamic_ncols=True)
        began, last = time.perf_counter(), float("nan")
        metrics = self.out / "metrics.jsonl"
        try:
            while self.step < t.steps:
                record = self.train_step()
                last = record["loss"]
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{last:.4g}")
                if self.proc.rank == 0 and (self.step % t.log_every == 0 or self.step == t.steps):
                    with open(metrics, "a") as f:
                        f.write(json.dumps({k: v for k, v in record.items() if k != "prompts"}) + "\n")
                if self.step % t.checkpoint_every == 0 or self.step == t.steps:
                    self.save()
        except KeyboardInterrupt:
            if self.proc.rank == 0:  # no barrier: the other processes are being stopped too
                state = self.checkpoint_state()
                atomic_save(self.out / CHECKPOINT, lambda p: torch.save(state, p))
            raise Interrupted(f"interrupted at step {self.step}/{t.steps}; checkpoint saved — continue with "
                              f"dreamer amortized train --out {self.out} --resume") from None
        finally:
            if bar is not None:
                bar.close()
        return TrainSummary(self.out, self.step, start, time.perf_counter() - began, last, len(self.prompts))


def train(out: Path | str, overrides: list[str] | None = None, guidance: str = "", prompts: str = "",
          steps: int | None = None, resume: bool = False, progress: bool = True) -> TrainSummary:
    """Train (or with `resume`, continue) the generator in `out`; the Python API of the command."""
    out = Path(out)
    saved = out / "config.yaml"
    if resume:
        if not (out / CHECKPOINT).is_file() or not saved.is_file():
            raise UserError(f"{out} holds no amortised training to resume (no config.yaml and {CHECKPOINT})")
        setup = make_setup(overrides or [], guidance, prompts, steps, base=load_yaml(saved))
        fixed = _changed_fixed_settings(load_yaml(saved), setup)
        if fixed:
            raise UserError(f"{out} was trained with other {', '.join(fixed)}: these cannot change on --resume")
    else:
        if (out / CHECKPOINT).exists():
            raise UserError(f"{out} already holds a training: add --resume to continue it, or choose another --out")
        setup = make_setup(overrides or [], guidance, prompts, steps)
    if setup.train.threads:
        torch.set_num_threads(setup.train.threads)
    train_prompts, left_out = load_prompts(setup.train.prompts)
    processes = start_processes(setup.run.device)
    if processes.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        import yaml

        atomic_write_text(saved, yaml.safe_dump(setup.to_dict(), sort_keys=False))
        atomic_write_text(out / "prompts.txt", "\n".join(train_prompts) + "\n")
        if left_out:
            print(f"left out {len(left_out)} held-out prompt(s): {', '.join(left_out)}")
    processes.barrier()
    trainer = AmortizedTrainer(out, setup, train_prompts, processes)
    return trainer.fit(resume=resume, progress=progress)


RESUMABLE_TRAIN_KEYS = ("steps", "checkpoint_every", "log_every", "threads")


def _changed_fixed_settings(saved: dict, setup: AmortizedSetup) -> list[str]:
    now = setup.to_dict()
    changed = [f"train.{k}" for k, v in saved.get("train", {}).items()
               if k not in RESUMABLE_TRAIN_KEYS and now["train"].get(k) != v]
    changed += [f"generator.{k}" for k, v in saved.get("generator", {}).items() if now["generator"].get(k) != v]
    if saved.get("run_overrides", []) != now["run_overrides"]:
        changed.append("run settings")
    return changed


# ------------------------------------------------------------------------------------------ command line
def run_from_args(args: argparse.Namespace) -> int:
    summary = train(args.out, args.overrides, args.guidance, args.prompts, args.steps, args.resume,
                    progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained {summary.steps} steps on {summary.prompts} prompts in {summary.seconds:.0f} s "
              f"(final loss {summary.final_loss:.4g}): {Path(summary.out) / WEIGHTS}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`torchrun --nproc_per_node=N -m dreamer.amortized.train --out DIR …` (also runs as one process)."""
    import sys

    from dreamer.signals import sigterm_interrupts

    parser = argparse.ArgumentParser(prog="python -m dreamer.amortized.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        with sigterm_interrupts():
            return run_from_args(args)
    except (UserError, TrainingDiverged, Interrupted) as e:
        print(f"error: {e}" if not isinstance(e, Interrupted) else str(e), file=sys.stderr)
        return e.exit_code
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
