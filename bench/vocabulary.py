"""Vocabulary benchmark (issue 19): K prompts drawn by seed from all colour × shape pairs, judged in 3D.

    python bench/vocabulary.py --sample K --seed S [--config NAME] [--label tuning|report] [key=value ...]

Each prompt runs as its own `dreamer generate` process (what a user runs: training, export and
eval), timed, with its peak memory read from the kernel (wait4). A quarter of the prompts are
paraphrases: a colour paraphrase ("crimson", "emerald") and a template ("the {c} {s}"), with the
shape's synonym when it has one. Success = the evaluator's top prompt is the asked one in at least
5 of 8 views AND the exported mesh's volume IoU is at least 0.6. Writes a table and a contact sheet
(ground truth against the result, 4 views each) to docs/benchmarks.md. Runs already finished in
the output folder are read back, so an interrupted benchmark resumes.

Draw the reported seed after tuning: a figure measured on the prompts it was tuned on says little.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from child import run_generate  # noqa: E402
from report import markdown_table, write_section  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"
SUCCESS_VIEWS = 5  # of 8: views whose top prompt must be the asked one
SUCCESS_VOLUME_IOU = 0.6
PARAPHRASE_SHARE = 0.25
PARAPHRASE_TEMPLATES = ("a {c} {s}", "the {c} {s}", "one {c} {s}")
TARGETS = ("Targets (issue 19, default preset, fresh K = 32): success ≥ 90 %, mean volume IoU ≥ 0.70, "
           "mean F-score@0.05 ≥ 0.80, each run ≤ 2 min, peak memory ≤ 2 GB.")


@dataclass
class Draw:
    prompt: str  # what the run is asked
    shape: str  # the library object it names
    colour: str
    paraphrase: bool


def draw_prompts(k: int, seed: int) -> list[Draw]:
    """K distinct (colour, shape) pairs of the library by seed; round(K/4) of them paraphrased."""
    from dreamer.shapes import COLOURS, OBJECTS
    from dreamer.shapes.colours import COLOUR_PARAPHRASES
    from dreamer.shapes.objects import SHAPE_SYNONYMS
    from dreamer.shapes.spec import ObjectSpec, with_article

    pairs = [(c, s) for c in COLOURS for s in OBJECTS]
    if not 1 <= k <= len(pairs):
        raise SystemExit(f"--sample must be between 1 and {len(pairs)}, got {k}")
    rng = random.Random(seed)
    chosen = rng.sample(pairs, k)
    paraphrased = set(rng.sample(range(k), round(k * PARAPHRASE_SHARE)))
    draws = []
    for i, (colour, shape) in enumerate(chosen):
        if i in paraphrased:
            colour_word = rng.choice(COLOUR_PARAPHRASES[colour])
            shape_word = rng.choice([shape, *(w for w, s in SHAPE_SYNONYMS.items() if s == shape)])
            text = rng.choice(PARAPHRASE_TEMPLATES).format(c=colour_word, s=shape_word)
            prompt = with_article(text[2:]) if text.startswith("a ") else text
        else:
            prompt = ObjectSpec(shape, colour).prompt
        draws.append(Draw(prompt, shape, colour, i in paraphrased))
    return draws


def run_one(draw: Draw, folder: Path, config: str, overrides: list[str]) -> dict:
    """`dreamer generate` in a child process; {seconds, peak_mb, eval} (read back when already done)."""
    record = folder / "bench.json"
    if record.exists() and (folder / "eval.json").exists():
        return json.loads(record.read_text())
    child = run_generate([draw.prompt, "--config", config, "--out", str(folder), "--overwrite", "--quiet", *overrides])
    eval_path = folder / "eval.json"
    ev = json.loads(eval_path.read_text()) if child.returncode == 0 and eval_path.exists() else None
    result = {"seconds": child.seconds, "peak_mb": child.peak_mb, "eval": ev, "returncode": child.returncode,
              "error": child.error, "draw": asdict(draw)}
    folder.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(result, indent=2))
    return result


def figures(result: dict) -> dict:
    """The per-prompt figures of a run; a failed run scores zero (and no success)."""
    ev = result["eval"] or {}
    hits = round((ev.get("r_precision") or 0.0) * ev.get("views", 8))
    vol = ev.get("volume_iou", 0.0)
    return {"volume_iou": vol, "fscore_005": ev.get("fscore_005", 0.0), "chamfer_l1": ev.get("chamfer_l1", 1.0),
            "iou": ev.get("iou", 0.0), "r_views": hits, "success": hits >= SUCCESS_VIEWS and vol >= SUCCESS_VOLUME_IOU,
            "top": ", ".join(sorted(set(ev.get("predicted_prompts") or []))) or (result.get("error") or "failed")}


def contact_row(run_dir: Path, draw: Draw, resolution: int = 80):
    """[H, 8W, 3]: the ground truth at 4 azimuths, then the result from the same cameras."""
    import torch

    from dreamer.cameras import turntable
    from dreamer.export.images import tile_row
    from dreamer.shapes import ObjectSpec, render_spec
    from dreamer.trainer.outputs import load_run

    cams = turntable(4, resolution, elevation=20.0)
    gt = render_spec(ObjectSpec(draw.shape, draw.colour), cams, supersample=2).rgb
    try:
        _, representation, _ = load_run(run_dir, device="cpu")
        with torch.no_grad():
            ours = representation.render(cams, background=torch.ones(3)).rgb
    except Exception:  # a run that failed before its checkpoint: an empty (white) row half
        ours = torch.ones_like(gt)
    return torch.cat([tile_row(gt), tile_row(ours)], dim=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sample", type=int, default=32, help="prompts to draw (K)")
    p.add_argument("--seed", type=int, required=True, help="the draw's seed (S)")
    p.add_argument("--config", default="default", help="preset")
    p.add_argument("--label", default="report", choices=["tuning", "report"],
                   help="'report' for a seed drawn after tuning ended, 'tuning' for a sample used to tune")
    p.add_argument("--out", default="runs/bench-vocabulary")
    p.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md alone")
    p.add_argument("overrides", nargs="*", help="key=value config overrides for every run")
    args = p.parse_args()

    draws = draw_prompts(args.sample, args.seed)
    tag = f"{args.config}-k{args.sample}-s{args.seed}" + ("-" + "-".join(args.overrides) if args.overrides else "")
    root = Path(args.out) / tag.replace("/", "_").replace("=", "_")
    rows, all_figures, results = [], [], []
    for index, draw in enumerate(draws):
        folder = root / f"{index:02d}-{draw.prompt.replace(' ', '-')}"
        result = run_one(draw, folder, args.config, args.overrides)
        f = figures(result)
        results.append(result)
        all_figures.append(f)
        rows.append([draw.prompt + (" *(paraphrase)*" if draw.paraphrase else ""), f["volume_iou"], f["fscore_005"],
                     f["chamfer_l1"], f["iou"], f"{f['r_views']}/8", f["top"], "yes" if f["success"] else "no",
                     f"{result['seconds']:.0f}", f"{result['peak_mb']:.0f}"])
        print(f"[{index + 1}/{len(draws)}] {draw.prompt:>26}: volume IoU {f['volume_iou']:.3f}  F@0.05 "
              f"{f['fscore_005']:.3f}  R {f['r_views']}/8  {'success' if f['success'] else 'miss'}  "
              f"{result['seconds']:.0f} s  {result['peak_mb']:.0f} MB", flush=True)

    n = len(all_figures)
    mean = {key: sum(f[key] for f in all_figures) / n for key in ("volume_iou", "fscore_005", "chamfer_l1", "iou")}
    success = sum(f["success"] for f in all_figures) / n
    worst_s = max(r["seconds"] for r in results)
    peak = max(r["peak_mb"] for r in results)
    rows.append(["**mean**", mean["volume_iou"], mean["fscore_005"], mean["chamfer_l1"], mean["iou"], "",
                 "", f"**{success:.0%}**", f"max {worst_s:.0f}", f"max {peak:.0f}"])
    table = markdown_table(["prompt", "volume IoU", "F-score@0.05", "chamfer L1", "silhouette IoU", "R views",
                            "evaluator's top prompts", "success", "seconds", "peak MB"], rows)
    print(table)
    print(f"success {success:.0%}, mean volume IoU {mean['volume_iou']:.3f}, mean F@0.05 {mean['fscore_005']:.3f}, "
          f"slowest {worst_s:.0f} s, peak {peak:.0f} MB")
    if args.no_write:
        return
    import torch

    from dreamer.export.images import save_image

    key = f"vocabulary-{args.config}-{args.label}"
    sheet = torch.cat([contact_row(root / f"{i:02d}-{d.prompt.replace(' ', '-')}", d) for i, d in enumerate(draws)])
    save_image(DOCS / f"{key}.png", sheet)
    what = ("a **fresh seed drawn after tuning ended** (nothing was tuned on these prompts)" if args.label == "report"
            else "a **tuning sample**: settings were chosen on these prompts, so they overstate a user's result")
    body = (f"Preset `{args.config}`{' with ' + ' '.join(args.overrides) if args.overrides else ''}; "
            f"K = {args.sample} prompts drawn with seed {args.seed} from the 176 colour × shape pairs, "
            f"a quarter paraphrased; {what}. Each prompt is one `dreamer generate` process (training, export, "
            "eval); 3D figures are of the exported model.glb against the ground-truth mesh in the world frame "
            f"(`dreamer.eval.geometry`). Success: top prompt right in ≥ {SUCCESS_VIEWS} of 8 views and volume "
            f"IoU ≥ {SUCCESS_VOLUME_IOU}. {TARGETS}\n\n"
            f"**Success {success:.0%}; mean volume IoU {mean['volume_iou']:.3f}; mean F-score@0.05 "
            f"{mean['fscore_005']:.3f}; slowest run {worst_s:.0f} s; peak memory {peak:.0f} MB.**\n\n{table}\n\n"
            f"![ground truth (left four) and result (right four) per prompt]({key}.png)\n\n"
            "Each row: ground truth at azimuth 0/90/180/270°, then the result from the same cameras, in table order.")
    command = "python bench/vocabulary.py " + " ".join(sys.argv[1:])
    write_section(key, f"Vocabulary: preset {args.config} ({args.label})", body, command)


if __name__ == "__main__":
    main()
