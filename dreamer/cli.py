"""The `dreamer` command line: generate, export, eval.

User mistakes print one line `error: ...` and exit 2; a diverged run exits 1; Ctrl-C saves a
checkpoint and exits 130. Nothing here does math.
"""

from __future__ import annotations

import argparse
import sys

from dreamer.errors import Interrupted, TrainingDiverged, UserError


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dreamer", description="Text to 3D by score distillation.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    g = sub.add_parser("generate", help="optimise a 3D asset for a prompt and export it",
                       description="Optimise a 3D asset for PROMPT; writes model.glb, the turntable and eval.json.")
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
    g.add_argument("--formats", help="extra export formats, comma separated: obj,ply")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. guidance.guidance_scale=20")

    e = sub.add_parser("export", help="export a run folder's asset", description="Export RUN_DIR's checkpoint as a mesh.")
    e.add_argument("run_dir")
    e.add_argument("--format", default="glb", help="glb, obj, ply or a comma-separated list (default: glb)")
    e.add_argument("--resolution", type=int, help="marching-cubes grid side (default: the run's)")
    e.add_argument("--video", action="store_true", help="also write the turntable video")

    v = sub.add_parser("eval", help="score a run against the shape library",
                       description="IoU and colour error of RUN_DIR against ground truth; writes eval.json.")
    v.add_argument("run_dir")

    sub.add_parser("presets", help="list the presets in configs/")
    return p


def _split_overrides(items: list[str], prompt: str | None) -> tuple[str | None, list[str]]:
    """argparse can put a key=value into PROMPT when no prompt is given (with --resume)."""
    if prompt is not None and "=" in prompt and " " not in prompt and not items:
        return None, [prompt]
    return prompt, items


def _generate(args) -> int:
    from dreamer.api import generate

    prompt, dotted = _split_overrides(args.overrides, args.prompt)
    if prompt is None and not args.resume:
        raise UserError('no prompt given: run `dreamer generate "a red chair"`')
    overrides = {}
    for key in ("guidance", "representation", "prior", "negative_prompt", "steps", "seed", "device"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    if args.formats:
        overrides["export.formats"] = [f.strip() for f in args.formats.split(",") if f.strip()]
    if args.quiet:
        overrides["trainer.progress"] = False
    result = generate(prompt, config=args.config, out=args.out, resume=args.resume, dotted=dotted,
                      **{k.replace(".", "__"): v for k, v in overrides.items()})
    print(f"run folder: {result.run_dir}")
    for name, path in result.exports.items():
        print(f"{name:>6}: {path}")
    if "eval" in result.metrics:
        ev = result.metrics["eval"]
        print(f"  eval: IoU {ev['iou']:.3f}, colour error {ev['colour_error']:.3f}")
    return 0


def _export(args) -> int:
    from dreamer.api import export

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    for path in export(args.run_dir, formats, video=args.video, mesh_resolution=args.resolution).values():
        print(path)
    return 0


def _eval(args) -> int:
    from dreamer.api import evaluate

    result = evaluate(args.run_dir)
    print(f"IoU {result['iou']:.3f}  colour error {result['colour_error']:.3f}  ({result['views']} views)")
    print(f"written: {args.run_dir}/eval.json")
    return 0


def _presets(args) -> int:
    from dreamer.config import list_presets

    print("\n".join(list_presets()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    # key=value overrides may come after options, which argparse's positional matching rejects.
    args, extra = parser.parse_known_args(argv)
    stray = [x for x in extra if x.startswith("-") or "=" not in x or args.command != "generate"]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    handler = {"generate": _generate, "export": _export, "eval": _eval, "presets": _presets}[args.command]
    try:
        return handler(args)
    except (UserError, TrainingDiverged, Interrupted) as e:
        print(f"error: {e}" if not isinstance(e, Interrupted) else str(e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
