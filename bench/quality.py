"""Quality benchmark (issues 2 and 3): SDS + NeRF + a prior on the five foundation prompts.

Runs `dreamer.generate` per prompt, reads eval.json (IoU, colour error, R-precision), and writes
a table to the prior's section of docs/benchmarks.md.
Usage: python bench/quality.py [--config default|reference] [--prior NAME] [--steps N] [key=value ...]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import markdown_table, write_section  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"
PROMPTS = ["a red cube", "a blue sphere", "a green torus", "a yellow cone", "an orange mushroom"]
TARGETS = {
    "quality-reference": "Targets (issue 2, reference prior): mean IoU ≥ 0.85, colour error ≤ 0.08.",
    "quality-tiny": "Targets (issue 3, tiny prior): mean IoU ≥ 0.75, R-precision ≥ 0.8, each run under 3 minutes.",
    "quality-gaussians-tiny": "Target (issue 5): IoU and R-precision no worse than SDS + NeRF + tiny prior "
                              "(the section above) in less wall time.",
    "quality-gaussians-tiny-mesh": "Two stages (issue 5): the Gaussians of the section above, then a DMTet mesh "
                                   "initialised from their surface and refined by the same rule; compare with it.",
}


def comparison_row(run_dir: Path, prompt: str, resolution: int = 96):
    """[H, 8W, 3]: ground truth at 4 azimuths, then the run's NeRF from the same cameras."""
    import torch

    from dreamer.cameras import turntable
    from dreamer.export.images import tile_row
    from dreamer.shapes import parse_prompt, render_spec
    from dreamer.trainer.outputs import load_run

    _, representation, _ = load_run(run_dir, device="cpu")
    cams = turntable(4, resolution, elevation=20.0)
    gt = render_spec(parse_prompt(prompt), cams, supersample=2).rgb
    with torch.no_grad():
        ours = representation.render(cams, background=torch.ones(3)).rgb
    return torch.cat([tile_row(gt), tile_row(ours)], dim=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--prior", help="prior name (default: the preset's)")
    p.add_argument("--config", default="default")
    p.add_argument("--steps", type=int)
    p.add_argument("--out", default="runs/bench-quality")
    p.add_argument("--prompts", nargs="*", default=PROMPTS)
    p.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()

    import dreamer

    from dreamer.run_config import load_run_config

    preset = load_run_config(args.config, dotted=args.overrides)  # overrides may drop or add a refine stage
    prior = args.prior or preset.prior.name
    rep = preset.representation.name
    name = {"nerf": "NeRF", "gaussians": "Gaussians"}.get(rep, rep)
    key = f"quality-{prior}" if rep == "nerf" else f"quality-{rep}-{prior}"  # NeRF keys predate the others
    if preset.refine.steps:  # a two-stage preset: the first stage, then a mesh refined from it
        refined = preset.refine.representation.get("name", "mesh")
        key, name = f"{key}-{refined}", f"{name} → {refined}"
    rows, ious, errs, rprec, sheet = [], [], [], [], []
    for prompt in args.prompts:
        kwargs = {"trainer__progress": False}
        if args.prior:
            kwargs["prior"] = args.prior
        if args.steps:
            kwargs["steps"] = args.steps
        start = time.perf_counter()
        result = dreamer.generate(prompt, config=args.config, overwrite=True, out=Path(args.out) / key / prompt.replace(" ", "-"),
                                  dotted=args.overrides, **kwargs)
        seconds = time.perf_counter() - start
        import json

        ev = json.loads((result.run_dir / "eval.json").read_text())
        ious.append(ev["iou"])
        errs.append(ev["colour_error"])
        rprec.append(ev["r_precision"])
        rows.append([prompt, ev["iou"], ev["colour_error"], ev["r_precision"], ", ".join(sorted(set(ev["predicted_prompts"]))),
                     " + ".join(str(result.metrics[k]) for k in ("steps", "refine_steps") if k in result.metrics),
                     f"{seconds:.0f}"])
        sheet.append(comparison_row(result.run_dir, prompt))
        print(f"{prompt:>22}: IoU {ev['iou']:.3f}  colour error {ev['colour_error']:.3f}  "
              f"R-precision {ev['r_precision']:.3f}  {seconds:.0f} s", flush=True)
    rows.append(["**mean**", sum(ious) / len(ious), sum(errs) / len(errs), sum(rprec) / len(rprec), "", "", ""])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table = markdown_table(["prompt", "IoU", "colour error", "R-precision", "evaluator's top prompts", "steps",
                            "seconds (train+export+eval)"], rows)
    print(table)
    print(f"peak memory {peak_mb:.0f} MB")
    if not args.no_write:
        import torch

        from dreamer.export.images import save_image

        save_image(DOCS / f"{key}.png", torch.cat(sheet, dim=0))
        command = "python bench/quality.py " + " ".join(sys.argv[1:])
        body = (f"{preset.guidance.name.upper()} + {name} + `{prior}` prior, preset `{args.config}`; eval protocol of `dreamer eval` "
                f"(8 views, elevation 20°, 128 px; R-precision: the evaluator classifier ranks the 176 library "
                f"prompts for each view). {TARGETS.get(key, '')}\n\n{table}\n\n"
                f"Peak resident memory of the whole benchmark process: {peak_mb:.0f} MB.")
        body += (f"\n\n![ground truth (left four) and result (right four) per prompt]({key}.png)\n\n"
                 f"Each row: ground truth at azimuth 0/90/180/270°, then the optimised {name} from the same cameras.")
        write_section(key, f"Quality: {preset.guidance.name.upper()} + {name} + {prior} prior", body, command.strip())


if __name__ == "__main__":
    main()
