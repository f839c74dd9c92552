"""The `dreamer` command line: generate, export, eval, presets, ui (the web UI), prior (train / sample the tiny prior).

User mistakes print one line `error: ...` and exit 2; a diverged run exits 1; Ctrl-C saves a
checkpoint and exits 130. Nothing here does math.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from contextlib import contextmanager

from dreamer.errors import DiskFull, Interrupted, TrainingDiverged, UserError


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dreamer", description="Text to 3D by score distillation.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    g = sub.add_parser("generate", help="optimise a 3D asset for a prompt and export it",
                       description="Optimise a 3D asset for PROMPT; writes model.glb, the turntable and eval.json. "
                                   "With a 4D preset (--config 4d) and a moving prompt such as \"a red cube bouncing\": "
                                   "an animated model.glb, splats.ply + frames/, motion.mp4 and turntable.mp4.")
    g.add_argument("prompt", nargs="?", help='what to make, e.g. "a red chair" (optional with --resume)')
    g.add_argument("--config", default="default", help="preset name in configs/ or a YAML path (default: default)")
    g.add_argument("--guidance", help="guidance rule, e.g. sds")
    g.add_argument("--representation", help="representation, e.g. nerf")
    g.add_argument("--prior", help="prior, e.g. reference, sd21-base")
    g.add_argument("--negative", dest="negative_prompt", help="negative prompt")
    g.add_argument("--steps", type=int, help="optimisation steps")
    g.add_argument("--seed", type=int, help="random seed")
    g.add_argument("--out", help="run folder (default: runs/<time>-<prompt>)")
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to run (default: auto)")
    g.add_argument("--resume", action="store_true", help="continue the run folder given by --out")
    g.add_argument("--overwrite", action="store_true", help="start again in a --out folder that holds a run")
    g.add_argument("--formats", help="extra export formats, comma separated: obj,ply (caps: export.max_faces=N, "
                   "export.texture_size=N, export.texture=false)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--amortized", metavar="DIR", help="make the asset with the trained generator in DIR "
                   "(dreamer amortized train): one forward pass instead of an optimisation")
    g.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. guidance.guidance_scale=20")

    e = sub.add_parser("export", help="export a run folder's asset",
                       description="Export RUN_DIR's checkpoint as a mesh: model.glb (textured when the "
                                   "representation has colour) plus the formats asked for.")
    e.add_argument("run_dir")
    e.add_argument("--formats", "--format", dest="formats", default="glb",
                   help="comma-separated glb, obj (+ mtl + png), ply (default: glb; glb is always written)")
    e.add_argument("--resolution", type=int, help="marching-cubes grid side (default: the run's)")
    e.add_argument("--max-faces", type=int, help="decimate to at most this many triangles (default: the run's, 50000)")
    e.add_argument("--texture-size", type=int, help="texture side, a power of two (default: the run's, 1024)")
    e.add_argument("--padding", type=int, help="texels of colour dilated past UV chart edges (default: 4)")
    e.add_argument("--no-texture", dest="texture", action="store_false", default=None,
                   help="vertex colours instead of a baked UV texture")
    e.add_argument("--video", action="store_true", help="also write the turntable video")

    v = sub.add_parser("eval", help="score a run against the shape library",
                       description="Silhouette IoU, colour error and R-precision of RUN_DIR's renders, and volume IoU, chamfer, F-score, normal consistency and extent error of its exported mesh, against ground truth; writes eval.json. "
                       "For a 4D run: per-frame silhouette and volume IoU, trajectory error, amplitude ratio and flicker against the animated library.")
    v.add_argument("run_dir")

    sub.add_parser("presets", help="list the presets in configs/: rule, representation, prior, what each needs")

    u = sub.add_parser("ui", help="start the web UI (queue, live progress, cancel/resume, history)",
                       description="Serve the Gradio web UI: jobs queue up, show live progress and previews, "
                                   "can be cancelled and resumed, and every job is a run folder under --runs.")
    u.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    u.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    u.add_argument("--runs", default="runs", help="runs folder: jobs are written and history read here (default: runs)")
    u.add_argument("--concurrency", type=int, default=1, help="jobs run at once; the rest wait in line (default: 1)")
    u.add_argument("--auth", help="require a login USER:PASSWORD (default: the DREAMER_UI_AUTH variable, else none)")
    u.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides applied to every job, e.g. steps=300 prior=reference")

    b = sub.add_parser("batch", help="make an asset for every prompt of a file, on Ray (local or a cluster)",
                       description="Each prompt of PROMPTS (one per line) is a Ray task running `dreamer generate`, "
                                   "into DIR/<index>-<prompt>/. Finished prompts are skipped when the batch runs "
                                   "again, interrupted ones resume; a killed worker's task is retried. Writes "
                                   "DIR/batch.json and the contact sheet DIR/batch.png.")
    b.add_argument("prompts", metavar="PROMPTS", help="a text file, one prompt per line (# comments)")
    b.add_argument("--out", required=True, help="the batch folder")
    b.add_argument("--address", default=None, help="a running Ray cluster to join (default: start a local Ray)")
    b.add_argument("--parallel", type=int, default=1, help="prompts run at once (default 1)")
    b.add_argument("--threads", type=int, default=1, help="CPU threads per prompt (default 1)")
    b.add_argument("--gpus", type=float, default=0.0, help="GPUs per prompt on a GPU cluster (default 0)")
    b.add_argument("--config", default="default", help="preset for every prompt (default: default)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every prompt")

    am = sub.add_parser("amortized", help="train or use one generator for many prompts (amortised, ASD)",
                        description="One text-conditioned generator for many prompts. Use a trained one with "
                                    "`dreamer generate PROMPT --amortized DIR`.")
    asub = am.add_subparsers(dest="amortized_command", required=True, metavar="ACTION")
    from dreamer.amortized.arguments import add_arguments as add_amortized_train_arguments

    add_amortized_train_arguments(asub.add_parser(
        "train", help="train (or --resume) a generator; several processes: torchrun -m dreamer.amortized.train"))
    ai = asub.add_parser("interpolate", help="a video morphing between two prompts")
    ai.add_argument("generator", metavar="DIR", help="the folder of a trained generator")
    ai.add_argument("start", help='the first prompt, e.g. "a red cube"')
    ai.add_argument("end", help='the last prompt, e.g. "a blue sphere"')
    ai.add_argument("--frames", type=int, default=16, help="frames (mixtures) in the video (default 16)")
    ai.add_argument("--out", default=None, help="video path (default: DIR/interpolation.mp4)")

    pr = sub.add_parser("prior", help="train or sample the embedded tiny prior",
                        description="Train the tiny prior on shape-library renders, or sample from it.")
    psub = pr.add_subparsers(dest="prior_command", required=True, metavar="ACTION")
    t = psub.add_parser("train", help="train (or resume training) the tiny prior",
                        description="Train the tiny prior into --out; resumes automatically from a checkpoint there.")
    t.add_argument("--model", choices=["tiny", "tiny-mv", "tiny-3d"], default="tiny",
                   help="which embedded prior: tiny (single view), tiny-mv (multi-view, raymaps) or tiny-3d (multi-view, "
                        "a rendered voxel volume); default: tiny")
    t.add_argument("--out", help="out folder (default: the model's shipped folder, assets/priors/tiny, tiny_mv or tiny_3d)")
    _training_arguments(t, "the planned 2-hour run", "images", "lr=3e-4 unet.block_out_channels=[32,64,128]")
    s = psub.add_parser("sample", help="a grid of DDIM samples around an object",
                        description="Sample PROMPT from the tiny prior at --views azimuths; writes a PNG grid.")
    s.add_argument("prompt", help='what to draw, e.g. "a red chair"')
    s.add_argument("--views", type=int, default=8, help="azimuths, evenly spaced from the front (default: 8)")
    s.add_argument("--out", default="prior-sample.png", help="PNG file to write (default: prior-sample.png)")
    s.add_argument("--steps", type=int, default=50, help="DDIM steps (default: 50)")
    s.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance scale (default: 2)")
    s.add_argument("--high-noise-guidance", type=float, default=None, metavar="SCALE",
                   help="a different scale for the high-noise half of the steps (t >= 500), where the shape is "
                        "decided (default: --guidance)")
    s.add_argument("--eta", type=float, default=1.0,
                   help="DDIM η: 0 deterministic, 1 fresh noise every step like DDPM (default: 1)")
    s.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    s.add_argument("--negative", default="", help="negative prompt (default: the empty prompt)")
    s.add_argument("--elevation", type=float, default=20.0, help="camera elevation, degrees (default: 20)")
    s.add_argument("--distance", type=float, default=2.8, help="camera distance (default: 2.8)")
    s.add_argument("--truth", action="store_true", help="add a row of shape-library renders of the prompt from the same cameras")
    s.add_argument("--model", choices=["tiny", "tiny-mv", "tiny-3d"], default="tiny",
                   help="which embedded prior (tiny-mv and tiny-3d sample their views jointly, 4 at a time; default: tiny)")
    s.add_argument("--weights", help="weights folder (default: the model's shipped folder)")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to run (default: auto)")
    m = psub.add_parser("train-motion", help="train (or resume training) the tiny-motion video prior",
                        description="Train the temporal layers of the tiny-motion prior (tiny's image UNet, frozen) on "
                                    "clips of the animated shape library into --out; resumes from a checkpoint there.")
    m.add_argument("--out", help="out folder (default: the shipped folder, assets/priors/tiny_motion)")
    _training_arguments(m, "the CPU recipe", "clips", "lr=3e-4 data.views_per_pair=16")
    sm = psub.add_parser("sample-motion", help="a grid of clips sampled from the tiny-motion prior",
                         description="Sample PROMPT (\"a blue torus spinning\") from the tiny-motion prior, one clip "
                                     "per camera at --views azimuths; writes a PNG grid, frames across, views down.")
    sm.add_argument("prompt", help='what to film, e.g. "a blue torus spinning"')
    sm.add_argument("--views", type=int, default=2, help="cameras (clips), evenly spaced azimuths (default: 2)")
    sm.add_argument("--frames", type=int, default=None, help="frames per clip (default: the clip length it was trained on)")
    sm.add_argument("--out", default="motion-sample.png", help="PNG file to write (default: motion-sample.png)")
    sm.add_argument("--steps", type=int, default=50, help="DDIM steps (default: 50)")
    sm.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance scale (default: 2)")
    sm.add_argument("--eta", type=float, default=1.0, help="DDIM η (default: 1)")
    sm.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    sm.add_argument("--negative", default="", help="negative prompt (default: the empty prompt)")
    sm.add_argument("--elevation", type=float, default=20.0, help="camera elevation, degrees (default: 20)")
    sm.add_argument("--distance", type=float, default=2.8, help="camera distance (default: 2.8)")
    sm.add_argument("--truth", action="store_true",
                    help="under each sampled clip, the animated library's clip of the prompt from the same camera")
    sm.add_argument("--weights", help="weights folder (default: assets/priors/tiny_motion)")
    sm.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to run (default: auto)")
    return p


def _training_arguments(parser, default_steps: str, items: str, example: str) -> None:
    """The options every prior-training command takes."""
    parser.add_argument("--steps", type=int, help=f"total steps to reach (default: {default_steps})")
    parser.add_argument("--batch-size", type=int, help=f"{items} per step")
    parser.add_argument("--seed", type=int, help="training seed")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to train (default: auto)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    parser.add_argument("--decay-from", dest="decay_start", type=int, metavar="STEP",
                        help="cosine-decay the learning rate from STEP to the last step (can be set when resuming)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="require a checkpoint in --out and continue it")
    mode.add_argument("--fresh", action="store_true", help="start over even if --out has a checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help=f"training config overrides, e.g. {example}")


def _split_overrides(items: list[str], prompt: str | None) -> tuple[str | None, list[str]]:
    """argparse can put a key=value into PROMPT when no prompt is given (with --resume)."""
    if prompt is not None and "=" in prompt and " " not in prompt:
        return None, [prompt, *items]
    return prompt, items


def _generate(args) -> int:
    from dreamer.api import generate

    prompt, dotted = _split_overrides(args.overrides, args.prompt)
    if args.amortized:
        return _generate_amortized(args, prompt, dotted)
    if prompt is None and not args.resume:
        raise UserError('no prompt given: run `dreamer generate "a red chair"`')
    overrides = {}
    for key in ("guidance", "representation", "prior", "negative_prompt", "steps", "seed", "device"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    if args.formats:
        from dreamer.export.options import parse_formats

        overrides["export.formats"] = parse_formats(args.formats)
    if args.quiet:
        overrides["trainer.progress"] = False
    result = generate(prompt, config=args.config, out=args.out, resume=args.resume, overwrite=args.overwrite,
                      dotted=dotted,
                      **{k.replace(".", "__"): v for k, v in overrides.items()})
    _print_result(result)
    return 0


def _print_result(result, note: str = "") -> None:
    print(f"run folder: {result.run_dir}{note}")
    for name, path in result.exports.items():
        print(f"{name:>6}: {path}")
    if "eval" in result.metrics:
        print(f"  eval: {_eval_line(result.metrics['eval'])}")


def _generate_amortized(args, prompt: str | None, dotted: list[str]) -> int:
    from dreamer.api import generate_amortized

    if args.resume or args.config != "default" or any(getattr(args, k) is not None for k in (
            "guidance", "representation", "prior", "steps", "seed", "negative_prompt", "device")):
        raise UserError("--amortized makes the asset in one forward pass on the CPU: it takes a prompt, --out, "
                        "--overwrite, --formats and export.* overrides, not training options")
    if prompt is None:
        raise UserError('no prompt given: run `dreamer generate "a red chair" --amortized DIR`')
    if args.formats:
        from dreamer.export.options import parse_formats

        dotted = [*dotted, f"export.formats={parse_formats(args.formats)}"]
    result = generate_amortized(prompt, args.amortized, out=args.out, overwrite=args.overwrite, dotted=dotted)
    _print_result(result, f" (generator forward pass {result.metrics['forward_seconds']:.2f} s)")
    return 0


def _batch(args) -> int:
    from dreamer.api import batch

    summary = batch(args.prompts, args.out, address=args.address, parallel=args.parallel, threads=args.threads,
                    config=args.config, dotted=args.overrides, gpus_per_task=args.gpus, progress=not args.quiet)
    print(f"{summary.count('finished')} made, {summary.count('skipped')} already there, {summary.count('failed')} failed "
          f"in {summary.seconds:.0f} s: {summary.out / 'batch.json'}")
    for r in summary.results:
        if r.status == "failed":
            print(f"  failed: {r.prompt}: {r.error}")
    return 0 if not summary.count("failed") else 1


def _amortized(args) -> int:
    if args.amortized_command == "train":
        from dreamer.amortized.train import run_from_args

        return run_from_args(args)
    from dreamer.api import amortized_interpolate

    out = args.out or str(Path(args.generator) / "interpolation.mp4")
    path = amortized_interpolate(args.generator, args.start, args.end, out, frames=args.frames)
    print(f"video: {path}")
    return 0


def _eval_line(ev: dict) -> str:
    if "trajectory_error" in ev:  # a 4D run
        ratio = ev.get("amplitude_ratio")
        shown = "n/a" if ratio is None else f"{ratio:.2f}"
        if ratio is None and ev.get("amplitude_note"):
            shown += " (no image shows this motion)"
        phase = lambda key: f" ({ev[key]:.3f} at the best phase)" if isinstance(ev.get(key), float) else ""  # noqa: E731
        return (f"per-frame IoU {ev['mean_frame_iou']:.3f}{phase('mean_frame_iou_phase')}, volume IoU "
                f"{ev['mean_frame_volume_iou']:.3f}, trajectory error {ev['trajectory_error']:.3f}"
                f"{phase('trajectory_error_phase')}, amplitude ratio {shown}, flicker {ev['flicker']:.4f}")
    line = f"IoU {ev['iou']:.3f}, colour error {ev['colour_error']:.3f}"
    if ev.get("r_precision") is not None:
        line += f", R-precision {ev['r_precision']:.3f}"
    if ev.get("volume_iou") is not None:
        line += (f"; 3D: volume IoU {ev['volume_iou']:.3f}, F-score@0.05 {ev['fscore_005']:.3f},"
                 f" chamfer {ev['chamfer_l1']:.4f}")
    return line


def _export(args) -> int:
    from dreamer.api import export
    from dreamer.export.options import parse_formats

    paths = export(args.run_dir, parse_formats(args.formats), video=args.video, mesh_resolution=args.resolution,
                   max_faces=args.max_faces, texture=args.texture, texture_size=args.texture_size,
                   padding=args.padding)
    for path in paths.values():
        print(path)
    return 0


def _eval(args) -> int:
    from dreamer.api import evaluate

    result = evaluate(args.run_dir)
    print(f"{_eval_line(result)}  ({result['views']} views{', %d frames' % result['frames'] if 'frames' in result else ''})")
    print(f"written: {args.run_dir}/eval.json")
    return 0


def _presets(args) -> int:
    from dreamer.presets import format_preset_table, preset_table

    print(format_preset_table(preset_table()))
    return 0


def _ui(args) -> int:
    from dreamer.ui_launch import run_ui

    return run_ui(args.runs, args.host, args.port, args.concurrency, args.auth, args.overrides)


def _prior_train(args) -> int:
    from dreamer.config import merge
    from dreamer.priors.tiny.train import PRIOR_MODELS, RESUMABLE, recipe, train

    updates = _training_updates(args)
    args.out = args.out or PRIOR_MODELS[args.model]
    return _run_training(args, "tiny prior", merge(recipe(args.model), updates, prefix="train"), updates,
                         RESUMABLE, train)


def _prior_train_motion(args) -> int:
    from dreamer.config import merge
    from dreamer.priors.tiny_motion.train import RESUMABLE, WEIGHTS, MotionTrainConfig, train_motion

    updates = _training_updates(args)
    args.out = args.out or WEIGHTS
    return _run_training(args, "tiny-motion prior", merge(MotionTrainConfig(), updates, prefix="train-motion"),
                         updates, RESUMABLE, train_motion)


def _run_training(args, label: str, config, updates: dict, resumable, train) -> int:
    """Train `config` into --out (resuming from a checkpoint there unless --fresh; settings outside `resumable`
    cannot change on a resume) and print what was done."""
    from dreamer.priors.tiny.checkpoint import checkpoint_path

    resuming = args.resume or (not args.fresh and checkpoint_path(args.out).is_file())
    fixed = sorted(set(updates) - set(resumable))
    if resuming and fixed:
        raise UserError(f"{args.out} holds a run to resume, whose {', '.join(fixed)} cannot change: "
                        "drop those settings, or pass --fresh to start over")
    summary = train(config, args.out, resume=True if args.resume else (False if args.fresh else None),
                    progress=not args.quiet)
    print(f"{label}: {summary.step} steps, final loss {summary.final_loss:.4f}, "
          f"{summary.steps_per_second:.2f} steps/s this session")
    print(f"written: {args.out}/model.safetensors, config.json, TRAINING.md")
    return 0


def _training_updates(args) -> dict:
    """The key=value overrides and the named options of a training command, as one nested dict."""
    from dreamer.config import nested_update, parse_override

    updates: dict = {}
    for item in args.overrides:
        path, value = parse_override(item)
        nested_update(updates, path, value)
    for key in ("steps", "batch_size", "seed", "device", "threads", "decay_start"):
        value = getattr(args, key)
        if value is not None:
            updates[key] = value
    return updates


def _prior_sample(args) -> int:
    from dreamer.cameras import turntable
    from dreamer.priors.tiny.prior import TinyPrior, TinyPriorConfig
    from dreamer.priors.tiny.sample import SamplerConfig, ground_truth_views, sample_views, save_grid

    if args.views < 1:
        raise UserError("--views must be positive")
    sampler = SamplerConfig(steps=args.steps, guidance=args.guidance, high_noise_guidance=args.high_noise_guidance,
                            eta=args.eta)
    from dreamer.priors.tiny.train import PRIOR_MODELS

    prior = TinyPrior(TinyPriorConfig(weights=args.weights or PRIOR_MODELS[args.model]), device=args.device)
    cameras = turntable(args.views, prior.image_size, elevation=args.elevation, distance=args.distance,
                        fovy=float(prior.info.data.get("fovy", 42.5)))
    images = sample_views(prior, args.prompt, cameras, sampler, seed=args.seed, negative_prompt=args.negative)
    if args.truth:
        import torch

        images = torch.cat([images, ground_truth_views(args.prompt, cameras)])
    print(f"written: {save_grid(images, args.out, columns=args.views)}")
    return 0


def _prior_sample_motion(args) -> int:
    import torch

    from dreamer.cameras import turntable
    from dreamer.priors.tiny.sample import SamplerConfig, save_grid
    from dreamer.priors.tiny_motion.prior import TinyMotionPrior, TinyMotionPriorConfig
    from dreamer.priors.tiny_motion.sample import sample_clips, truth_clips

    if args.views < 1 or (args.frames is not None and args.frames < 2):
        raise UserError("--views must be positive and --frames at least 2")
    if args.truth:  # the truth needs a prompt of the animated library: say so before sampling
        from dreamer.shapes.prompt import parse_motion_prompt

        parse_motion_prompt(args.prompt)
    config = TinyMotionPriorConfig(**({"weights": args.weights} if args.weights else {}))
    prior = TinyMotionPrior(config, device=args.device)
    frames = args.frames or prior.num_frames
    cameras = turntable(args.views, prior.image_size, elevation=args.elevation, distance=args.distance,
                        fovy=float(prior.info.data.get("fovy", 42.5)))
    clips = sample_clips(prior, args.prompt, cameras, frames, SamplerConfig(steps=args.steps, guidance=args.guidance,
                                                                             eta=args.eta),
                         seed=args.seed, negative_prompt=args.negative)
    if args.truth:  # each sampled clip, then the truth from its camera
        clips = torch.stack([clips, truth_clips(args.prompt, cameras, frames)], dim=1).flatten(0, 1)
    print(f"written: {save_grid(clips.flatten(0, 1), args.out, columns=frames)}")
    return 0


def _prior(args) -> int:
    return {"train": _prior_train, "sample": _prior_sample, "train-motion": _prior_train_motion,
            "sample-motion": _prior_sample_motion}[args.prior_command](args)


@contextmanager
def _one_line_warnings():
    """Our own warnings (an out-of-vocabulary prompt) as one `warning: ...` line on stderr."""
    import warnings

    from dreamer.errors import OutOfVocabularyWarning

    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, OutOfVocabularyWarning):
            print(f"warning: {message}", file=sys.stderr, flush=True)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    # key=value overrides may come after options, which argparse's positional matching rejects.
    args, extra = parser.parse_known_args(argv)
    takes_overrides = isinstance(getattr(args, "overrides", None), list)
    stray = [x for x in extra if x.startswith("-") or "=" not in x or not takes_overrides]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    handler = {"generate": _generate, "export": _export, "eval": _eval, "presets": _presets, "ui": _ui,
               "prior": _prior, "amortized": _amortized, "batch": _batch}[args.command]
    from dreamer.signals import sigterm_interrupts

    try:
        with sigterm_interrupts(), _one_line_warnings():
            return handler(args)
    except (UserError, TrainingDiverged, Interrupted, DiskFull) as e:
        print(f"error: {e}" if not isinstance(e, Interrupted) else str(e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
