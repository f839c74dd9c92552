"""Time every paper preset for a few dozen steps with full-size random-weight priors (no download).

    python bench/gpu_timing.py            # CUDA: 50 steps per preset, writes "GPU" in docs/benchmarks.md
    python bench/gpu_timing.py --cpu      # the same code path on the CPU with tiny models (CI; about a minute)
    python bench/gpu_timing.py --only lucid-ism 4d-zeroscope --no-write

The priors' weights are model folders with random weights in the published architectures, built once
per run by bench/random_models.py (which says where each config comes from) and loaded by the priors' own
`from_pretrained` code through `prior.model=<folder>` (`prior.motion_adapter=<folder>` and
`motion.image_prior.model=<folder>` for the 4D presets): SD 2.1-base, SDXL base, DeepFloyd IF-I-XL (its
T5-XXL cut to one layer of the real width: it runs once per run, before the first step, on the CPU by
default, so it does not change s/step), SD 1.5 + the AnimateDiff v1-5-2 motion adapter (`4d-animatediff`;
SD 1.5 is also its frame prior) and zeroscope v2 576w's UNet3DConditionModel (`4d-zeroscope`, whose frame
prior is SD 2.1-base). No paper preset uses IF; it is timed as `dreamfusion-sd` with `prior=deepfloyd-if`
(DreamFusion's own prior is pixel-space Imagen). Weights go to disk in fp16 where the prior runs in fp16 on
CUDA, fp32 with --cpu.

Each preset then runs through the real trainer (`dreamer.api.resolve_config` + `Trainer.fit`, or
`MotionTrainer.fit` for a 4D preset: the path `dreamer.api.generate` takes, without the export and eval
that follow training) at the preset's own resolution for `--steps` steps. Reported: the mean s/step over
the steps after `--warmup` (the last step is left out as well: it writes the checkpoint), the peak GPU
memory of the run (torch.cuda.max_memory_allocated, the prior's loading included), and the projected time
of a full run, s/step × the preset's steps (first stage only: DreamGaussian's 50-step mesh stage is not
timed). Schedules that depend on the run's length see 50-step runs, which does not change what a step
costs; densification does not happen in 50 steps, so Gaussian counts stay at their initial values (growth
makes later Gaussian steps slower).

A 4D preset has two stages whose steps cost very different amounts: static steps (one image-prior step on
single frames) and motion steps (a video-prior step on a clip of F frames, with an image step every
`motion.image_every`-th step, 4D-fy's hybrid). Its timing run shortens the static stage to 2/5 of the steps
(`motion.static_steps`, at least warm-up + 1), so both stages are timed, each after its own warm-up; the
projected full run is static s/step × the preset's static steps + motion s/step × its motion steps.

`--budget` seconds (from the script's start) stops timing presets when too little time is left;
those rows say "not timed" and the script still exits 0. A preset that raises is a FAILED row and
the exit status is 1.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from random_models import TINY_IMAGE_SIZE, BuiltModel, build_model_folder  # noqa: E402

# Every paper preset: configs/*.yaml except the "-tiny" CPU twins and the CPU presets default, reference, 4d and
# 4d-oracle (tests/test_gpu_check.py checks that PRESETS and NOT_TIMED together cover configs/).
PRESETS = ("dreamfusion-sd", "dreamgaussian-sds", "prolificdreamer-vsd", "esd", "lucid-ism", "scaledreamer-asd",
           "dreamerxl-tsm", "4d-zeroscope", "4d-animatediff")
# Paper presets not timed, with why (each gets a row in the report that says so). None at present.
NOT_TIMED: dict[str, str] = {}
# Extra rows: (label, preset, prior) for priors no paper preset uses.
EXTRA = (("dreamfusion-sd + IF", "dreamfusion-sd", "deepfloyd-if"),)

# Published wall times of the authors' code, printed beside ours.
ANCHORS = {
    "dreamgaussian-sds": "DreamGaussian: 500 steps ≈ 2 min",
    "dreamfusion-sd": "threestudio DreamFusion-SD ≈ 30 min",
    "lucid-ism": "LucidDreamer ≈ 35 min",
    "prolificdreamer-vsd": "ProlificDreamer: hours",
    "esd": "(VSD-based; ProlificDreamer: hours)",
}

PROMPT = "a red chair"
PROMPT_4D = "a corgi running"  # the 4D presets' own example prompt

# Which random-weight model folder (bench/random_models.py MODELS) goes into which weights option of a prior:
# prior name -> {config field: model}. A 4D preset's frame prior gets its folders under motion.image_prior.
PRIOR_WEIGHTS: dict[str, dict[str, str]] = {
    "sd21-base": {"model": "sd21-base"},
    "sdxl": {"model": "sdxl"},
    "deepfloyd-if": {"model": "deepfloyd-if"},
    "sd15": {"model": "sd15"},
    "animatediff": {"model": "sd15", "motion_adapter": "motion-adapter"},
    "zeroscope": {"model": "zeroscope"},
}
# Running order: rows are sorted by the last of their models in this order, so the presets on SD 2.1-base come
# first, then 4d-zeroscope (whose frame prior reuses that folder), 4d-animatediff, SDXL, IF (the extra row,
# last: no paper preset uses it). A folder is deleted after the last row that needs it.
BUILD_ORDER = ("sd21-base", "zeroscope", "sd15", "motion-adapter", "sdxl", "deepfloyd-if")
# Rough seconds on one H200 to build + save a model folder, and to load a row's priors and run its 50 steps: a
# row is not started with less time left than this (guesses before the first GPU run; see --budget).
GPU_BUILD_S = {"sd21-base": 20, "zeroscope": 25, "sd15": 15, "motion-adapter": 10, "sdxl": 60, "deepfloyd-if": 60}
GPU_RUN_S = {"sd21-base": 30, "zeroscope": 60, "animatediff": 60, "sdxl": 90, "deepfloyd-if": 45}
STAGES = ("static", "motion")  # a 4D preset's stages, in the order they run


# ----------------------------------------------------------------------------- one preset

@dataclass
class Row:
    label: str
    preset: str
    prior: str
    image_prior: str = ""  # a 4D preset's frame prior (motion.image_prior); "" for 3D presets
    weights: dict[str, str] = field(default_factory=dict)  # dotted weights option -> model (random_models.MODELS)
    representation: str = ""
    resolution: int = 0
    preset_steps: int = 0
    stage_steps: dict[str, int] = field(default_factory=dict)  # 4D: the preset's steps per stage
    steps: int = 0
    timed_steps: int = 0
    s_per_step: float | None = None  # 4D: the mean over a full run of the preset (projected / preset steps)
    stage_s: dict[str, float] = field(default_factory=dict)  # 4D: s/step per stage
    peak_gib: float | None = None
    setup_s: float | None = None
    status: str = "ok"  # ok | FAILED: ... | not timed: ...
    extra: dict = field(default_factory=dict)

    @property
    def models(self) -> tuple[str, ...]:
        """The model folders this row loads, in BUILD_ORDER."""
        return tuple(sorted(set(self.weights.values()), key=BUILD_ORDER.index))

    @property
    def projected_s(self) -> float | None:
        if self.stage_s:
            return sum(self.stage_s[k] * self.stage_steps[k] for k in self.stage_s)
        return None if self.s_per_step is None else self.s_per_step * self.preset_steps


def preset_path(preset: str) -> Path:
    return ROOT / "configs" / f"{preset}.yaml"


def preset_steps(preset: str) -> int:
    import yaml

    return int(yaml.safe_load(preset_path(preset).read_text())["steps"])


def timing_static_steps(steps: int, warmup: int) -> int:
    """A 4D timing run's static stage: 2/5 of its steps, at least warm-up + 1 (50 steps: 20 static, 30 motion)."""
    return max(warmup + 1, steps * 2 // 5)


def run_overrides(steps: int, device: str, weights: dict[str, Path], *, prior_override: str = "", prior: str = "",
                  representation: str = "", tiny: bool = False, static_steps: int | None = None) -> list[str]:
    """The dotted overrides of a timing run: N steps, no previews / progress / eval / second stage, the priors'
    weights from the random-weight folders (`weights`: dotted option -> folder), and for a 4D run (static_steps
    given) a static stage of that many steps. `prior` is the run's prior, `prior_override` its name when the
    preset names another."""
    dotted = [f"steps={steps}", f"device={device}", "trainer.preview_every=0", f"trainer.checkpoint_every={10 ** 9}",
              f"trainer.log_every={10 ** 9}", "trainer.progress=false", "trainer.evaluate=false",
              "export.video=false", "refine.steps=0"]
    if prior_override:
        dotted.append(f"prior.name={prior_override}")
    dotted += [f"{key}={folder}" for key, folder in weights.items()]
    if static_steps is not None:
        dotted.append(f"motion.static_steps={static_steps}")
    if tiny:
        dotted.append("resolution=32")
        if representation.startswith("gaussians"):
            dotted += ["representation.num_gaussians=256", "representation.max_gaussians=4096"]
        if prior == "deepfloyd-if":
            dotted.append(f"prior.image_size={TINY_IMAGE_SIZE}")
        if static_steps is not None:  # tiny clips: 4 frames of 32 px renders; fp32 (the presets say fp16); a
            # hybrid image step in the motion stage of a 5-step run
            dotted += [f"prior.image_size={TINY_IMAGE_SIZE}", "prior.num_frames=4", "prior.dtype=fp32",
                       f"motion.image_prior.image_size={TINY_IMAGE_SIZE}", "motion.image_prior.dtype=fp32",
                       "motion.video_resolution=32", "motion.image_every=2"]
    return dotted


def mean_step(times: list[float], first: int, stop: int, floor: int = 0) -> tuple[float, int]:
    """The mean of times[first:stop] and how many; when that is empty (a very short run), of times[floor:stop]
    (the stage from its first step), or of times[floor:]."""
    measured = times[first:stop] or times[floor:stop] or times[floor:]
    return sum(measured) / len(measured), len(measured)


def time_preset(row: Row, weights: dict[str, Path], workdir: Path, args, cuda: bool) -> Row:
    import torch

    from dreamer.api import resolve_config
    from dreamer.trainer.four_d import MotionTrainer
    from dreamer.trainer.run_folder import RunFolder
    from dreamer.trainer.trainer import Trainer

    path = preset_path(row.preset)
    prompt = PROMPT_4D if row.image_prior else PROMPT
    base = resolve_config(prompt, str(path))
    row.representation, row.preset_steps = base.representation.name, preset_steps(row.preset)
    static = None
    if base.is_4d:
        static = timing_static_steps(args.steps, args.warmup)
        row.stage_steps = {"static": base.motion.static_steps, "motion": row.preset_steps - base.motion.static_steps}
    dotted = run_overrides(args.steps, "cuda" if cuda else "cpu", weights,
                           prior_override="" if row.prior == base.prior.name else row.prior, prior=row.prior,
                           representation=row.representation, tiny=args.cpu, static_steps=static)
    cfg = resolve_config(prompt, str(path), dotted)
    row.resolution, row.steps = cfg.resolution, cfg.steps
    stamps: list[float] = []
    video_steps = 0

    def on_progress(event) -> None:
        nonlocal video_steps
        if cuda:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        video_steps += int(event.metrics.get("video_step", 0))

    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer_class = MotionTrainer if cfg.is_4d else Trainer
    trainer = trainer_class(cfg, RunFolder(workdir / "runs" / row.label.replace(" ", "").replace("+", "-")),
                            on_progress=on_progress)
    row.setup_s = time.perf_counter() - t0
    prior = trainer.prior
    row.extra["prior_dtype"] = str(getattr(prior, "model_dtype", "")).replace("torch.", "")
    vae = getattr(prior, "vae", None)
    if vae is not None:
        row.extra["vae_dtype"] = str(vae.dtype).replace("torch.", "")
    try:
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.fit()
        if cuda:
            row.peak_gib = torch.cuda.max_memory_allocated() / 2 ** 30
    finally:
        del trainer, prior, vae
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    times = [b - a for a, b in zip([start] + stamps[:-1], stamps)]  # step k's wall time
    if static is None:
        row.s_per_step, row.timed_steps = mean_step(times, args.warmup, len(times) - 1)  # the last step checkpoints
        return row
    # each stage after its own warm-up (the motion stage's first steps are the video UNet's first)
    (s_static, n_static), (s_motion, n_motion) = (mean_step(times, args.warmup, static),
                                                  mean_step(times, static + args.warmup, len(times) - 1, floor=static))
    row.stage_s = {"static": s_static, "motion": s_motion}
    row.extra["video_steps"] = video_steps  # of the run's steps (the rest: image steps)
    row.timed_steps = n_static + n_motion
    row.s_per_step = row.projected_s / row.preset_steps
    return row


# ----------------------------------------------------------------------------- the table

def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def table(rows: list[Row], cpu: bool) -> str:
    from report import markdown_table

    headers = ["preset", "prior", "dtype", "representation", "render px", "s/step", "peak GPU GiB", "preset steps",
               "projected full run", "published (authors' code)", "status"]
    body = []
    for r in rows:
        dtype = r.extra.get("prior_dtype", "—")
        if r.extra.get("vae_dtype", dtype) != dtype:
            dtype += f" (VAE {r.extra['vae_dtype']})"
        prior = f"{r.prior} + {r.image_prior} (frames)" if r.image_prior else r.prior
        if r.stage_s:  # 4D: per stage
            per_step = " / ".join(f"{r.stage_s[k]:.3f} {k}" for k in STAGES)
            steps = f"{r.preset_steps} ({r.stage_steps['static']} static)"
        else:
            per_step = "—" if r.s_per_step is None else f"{r.s_per_step:.3f}"
            steps = r.preset_steps or "—"
        body.append([r.label, prior, dtype, r.representation or "—", r.resolution or "—", per_step,
                     "n/a (CPU)" if cpu else ("—" if r.peak_gib is None else f"{r.peak_gib:.1f}"),
                     steps, fmt_duration(r.projected_s), ANCHORS.get(r.preset, "—"), r.status])
    return markdown_table(headers, body)


def models_table(models: list[BuiltModel]) -> str:
    from report import markdown_table

    def count(n: int) -> str:
        return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.0f} M" if n >= 1e6 else f"{n / 1e3:.0f} k"

    rows = [[m.name, ", ".join(f"{k} {count(v)}" for k, v in m.parameters.items()),
             f"{m.bytes / 2 ** 30:.2f}", f"{m.seconds:.0f}"] for m in models]
    return markdown_table(["model", "parameters (random weights)", "GiB on disk", "build + save s"], rows)


def device_line(cuda: bool) -> str:
    import torch

    if not cuda:
        return f"CPU, torch {torch.__version__}, {torch.get_num_threads()} threads"
    p = torch.cuda.get_device_properties(0)
    return f"{p.name}, {p.total_memory / 2 ** 30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}"


# ----------------------------------------------------------------------------- main

def quiet_libraries() -> None:
    """No per-file progress bars or dtype notices from diffusers / transformers in the log."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def make_row(label: str, preset: str, prior: str = "") -> Row:
    """The row of `preset` (with `prior` instead of the preset's when given) and the folders its priors load."""
    from dreamer.config import load_yaml

    data = load_yaml(preset_path(preset))
    prior = prior or data["prior"]["name"]
    image_prior = ((data.get("motion") or {}).get("image_prior") or {}).get("name", "")
    weights = {}
    for option, name in (("prior", prior), ("motion.image_prior", image_prior)):
        if not name:
            continue
        if name not in PRIOR_WEIGHTS:
            raise SystemExit(f"gpu_timing: no random-weight model for prior {name!r} ({preset}): add a builder to "
                             "bench/random_models.py and the prior to PRIOR_WEIGHTS")
        weights.update({f"{option}.{key}": model for key, model in PRIOR_WEIGHTS[name].items()})
    return Row(label, preset, prior, image_prior, weights)


def plan(only: list[str] | None) -> list[Row]:
    """Every row in running order (see BUILD_ORDER); `only`: presets or row labels."""
    rows = [make_row(preset, preset) for preset in PRESETS]
    rows += [make_row(label, preset, prior) for label, preset, prior in EXTRA]
    if only:
        rows = [r for r in rows if r.preset in only or r.label in only]
    return sorted(rows, key=lambda r: BUILD_ORDER.index(r.models[-1]))


def main(argv: list[str] | None = None) -> int:
    started = time.time()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cpu", action="store_true", help="tiny models on the CPU, a few steps at 32 px (CI)")
    p.add_argument("--steps", type=int, help="steps per preset (default 50; 5 with --cpu)")
    p.add_argument("--warmup", type=int, help="first steps left out of s/step (default 5; 1 with --cpu)")
    p.add_argument("--only", nargs="*", help="presets (or row labels) to time")
    p.add_argument("--budget", type=float, default=0.0,
                   help="seconds from the start after which no further preset is started (0 = no limit)")
    p.add_argument("--reserve", type=float, default=30.0,
                   help="do not start a preset (or a model build) with fewer seconds than this left")
    p.add_argument("--workdir", help="where model folders, runs and gpu-timing.md go (default: a new temp folder)")
    p.add_argument("--keep", action="store_true", help="keep the model folders (default: deleted after use)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 with --cpu, where the tiny "
                                               "models gain nothing from more and shared cores make spinning threads slow)")
    p.add_argument("--no-write", action="store_true", help="print the table only (never docs/benchmarks.md)")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may touch the network
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args.steps = args.steps or (5 if args.cpu else 50)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.cpu else 5)
    if args.steps < args.warmup + 1:
        p.error("--steps must exceed --warmup")

    import torch

    quiet_libraries()
    threads = args.threads or (1 if args.cpu else 0)
    if threads:
        torch.set_num_threads(threads)
    cuda = not args.cpu
    if cuda and not torch.cuda.is_available():
        print("gpu_timing: no CUDA device here (torch.cuda.is_available() is False); use --cpu", file=sys.stderr)
        return 2
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="dreamer-gpu-timing-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DREAMER_CACHE", str(workdir / "cache"))
    device = "cuda" if cuda else "cpu"
    print(f"gpu_timing: {device_line(cuda)}; {args.steps} steps per preset, {args.warmup} warm-up; work in {workdir}",
          flush=True)

    def left() -> float:
        return float("inf") if not args.budget else args.budget - (time.time() - started)

    jobs = plan(args.only)
    rows: list[Row] = []
    models: list[BuiltModel] = []
    failed = False
    built: dict[str, BuiltModel | Exception] = {}
    for index, row in enumerate(jobs):
        rows.append(row)
        need = args.reserve
        if not args.cpu:
            need = max(need, GPU_RUN_S.get(row.prior, 0) + sum(GPU_BUILD_S.get(m, 0) for m in row.models
                                                                 if m not in built))
        if left() < need:
            row.status = f"not timed: out of time ({args.budget:.0f} s budget)"
            print(f"== {row.label}: {row.status}", flush=True)
            continue
        for model in row.models:
            if model in built:
                continue
            print(f"== building {model} ({'tiny' if args.cpu else 'full size'}) ...", flush=True)
            try:
                m = built[model] = build_model_folder(model, workdir / "models" / model, args.cpu, device)
                models.append(m)
                print(f"   {m.name}: {sum(m.parameters.values()) / 1e6:.1f} M parameters, "
                      f"{m.bytes / 2 ** 30:.2f} GiB, {m.seconds:.1f} s", flush=True)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a row
                traceback.print_exc()
                built[model] = exc
        broken = [(m, built[m]) for m in row.models if isinstance(built[m], Exception)]
        if broken:
            model, exc = broken[0]
            row.status = f"FAILED: building {model}: {type(exc).__name__}: {str(exc)[:200]}"
            failed = True
        else:
            print(f"== {row.label} ({row.prior}{' + ' + row.image_prior if row.image_prior else ''}) ...", flush=True)
            try:
                time_preset(row, {key: built[m].folder for key, m in row.weights.items()}, workdir, args, cuda)
                peak = "n/a" if row.peak_gib is None else f"{row.peak_gib:.1f} GiB"
                stages = "".join(f", {k} {v:.3f} s/step" for k, v in row.stage_s.items())
                print(f"   {row.s_per_step:.3f} s/step over {row.timed_steps} steps at {row.resolution} px{stages}, "
                      f"setup {row.setup_s:.1f} s, peak {peak}, {row.extra}", flush=True)
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                row.status = f"FAILED: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
                failed = True
        for model in row.models:  # disk: SDXL and IF are 7-9 GiB each
            last_use = all(model not in later.models for later in jobs[index + 1:])
            if not args.keep and last_use and isinstance(built[model], BuiltModel):
                shutil.rmtree(built[model].folder, ignore_errors=True)

    for preset, why in NOT_TIMED.items():
        if not args.only or preset in args.only:
            rows.append(Row(preset, preset, "", status=f"not timed: {why}"))

    notes = [
        f"Device: {device_line(cuda)}. {args.steps} steps per preset at the preset's resolution; s/step is the "
        f"mean over steps {args.warmup + 1}–{args.steps - 1} (warm-up and the checkpointing last step left out). "
        "Peak memory is torch.cuda.max_memory_allocated over the run, the prior's loading included. "
        "Projected full run = s/step × the preset's steps (first stage; DreamGaussian's 50-step mesh stage and "
        "the exports are not included). Priors: random weights in the published architectures, loaded through "
        "`prior.model=<folder>` (see bench/random_models.py: IF's T5 is one layer of the real width).",
    ]
    if any(r.stage_s for r in rows):
        static = timing_static_steps(args.steps, args.warmup)
        notes.append(f"4D presets: s/step per stage, each after its own {args.warmup} warm-up steps: the static "
                     f"stage (image prior on single frames) is shortened to {static} of the {args.steps} steps; motion "
                     "steps are video-prior steps on clips with an image step every `motion.image_every`-th (4D-fy's "
                     "hybrid). Projected full run = static s/step × the preset's static steps + motion s/step × its "
                     "motion steps.")
    if args.cpu:
        notes.append("--cpu: tiny models (a few channels), 32 px renders, 256 Gaussians (4D: 4-frame clips, fp32): "
                     "the figures check the code path, not the speed; projections are not comparable with the anchors.")
    body = "\n\n".join([table(rows, args.cpu), "Models:\n\n" + models_table(models), *notes])
    print("\n" + body + "\n", flush=True)
    out = workdir / "gpu-timing.md"
    out.write_text(body + "\n")
    print(f"gpu_timing: table written to {out}")
    if not (args.cpu or args.no_write):  # --cpu never rewrites the docs (CI runs it)
        from report import write_section

        doc = write_section("gpu", "GPU", body, "bench/gpu_check.sh")
        print(f"gpu_timing: wrote the GPU section of {doc}")
    print(f"gpu_timing: {time.time() - started:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
