"""Vocabulary benchmark (issue 19): K prompts drawn by seed from all colour × shape pairs, judged in 3D.

    python bench/vocabulary.py --seed S [--sample K | --held-out] [--config NAME] [--label tuning|report]
                               [--fresh] [key=value ...]

Each prompt runs as its own `dreamer generate` process (what a user runs: training, export and
eval), timed, with its peak memory read from the kernel (wait4). A quarter of the prompts are
paraphrases: a colour paraphrase ("crimson", "emerald") and a template ("the {c} {s}"), with the
shape's synonym when it has one. Success = the evaluator's top prompt is the asked one in at least
5 of 8 views AND the exported mesh's volume IoU is at least 0.6. With --held-out the sample is the
18 held-out (colour, shape) pairs of the tiny prior (dreamer.priors.tiny.captions.HELD_OUT, never
in its training data) instead of a random draw, reported under their own label `held-out`.

Writes a table and a contact sheet (ground truth against the result, 4 views each) to
docs/benchmarks.md, one section per (preset, label, seed), with the git commit and whether the tree
had uncommitted changes ("dirty"); a section is never overwritten: writing one whose (preset, label,
seed) is already there is refused before any run. The run folder gets the same figures as
summary.json. Runs already finished in the output folder are read back, so an interrupted benchmark
resumes; runs made by another commit or another config are refused, not mixed in.

Draw the reported seed after tuning, and say so with --fresh: a figure measured on the prompts it was
tuned on says little. Without --fresh a section does not claim the sample is fresh.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
from child import run_generate  # noqa: E402
import provenance as provenance_module  # noqa: E402
from provenance import GitState, Provenance, check_record, git_state, make_provenance, read_back  # noqa: E402,F401
from report import markdown_table  # noqa: E402

SUCCESS_VIEWS = 5  # of 8: views whose top prompt must be the asked one
SUCCESS_VOLUME_IOU = 0.6
PARAPHRASE_SHARE = 0.25
PARAPHRASE_TEMPLATES = ("a {c} {s}", "the {c} {s}", "one {c} {s}")
LABELS = ("tuning", "report")  # --label; --held-out samples are labelled HELD_OUT_LABEL
HELD_OUT_LABEL = "held-out"
DEFAULT_SAMPLE = 32
TARGETS = ("Targets (issue 27, default preset, K = 32 drawn after tuning ended): success ≥ 90 %, mean volume "
           "IoU ≥ 0.75, mean F-score@0.05 ≥ 0.85, the 18 held-out pairs ≥ 80 %, every white prompt a success, "
           "each run ≤ 2 min on 2 cores, peak memory ≤ 2 GB (issue 19's were 90 % / 0.70 / 0.80).")


@dataclass
class Draw:
    prompt: str  # what the run is asked
    shape: str  # the library object it names
    colour: str
    paraphrase: bool


def _phrase(chosen: list[tuple[str, str]], rng: random.Random) -> list[Draw]:
    """(colour, shape) pairs -> prompts, round(K/4) of them paraphrased by `rng`."""
    from dreamer.shapes.colours import COLOUR_PARAPHRASES
    from dreamer.shapes.objects import SHAPE_SYNONYMS
    from dreamer.shapes.spec import ObjectSpec, with_article

    k = len(chosen)
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


def all_pairs() -> list[tuple[str, str]]:
    from dreamer.shapes import COLOURS, OBJECTS

    return [(c, s) for c in COLOURS for s in OBJECTS]


def draw_prompts(k: int, seed: int) -> list[Draw]:
    """K distinct (colour, shape) pairs of the library by seed; round(K/4) of them paraphrased."""
    pairs = all_pairs()
    if not 1 <= k <= len(pairs):
        raise SystemExit(f"error: --sample must be between 1 and {len(pairs)}, got {k}")
    rng = random.Random(seed)
    return _phrase(rng.sample(pairs, k), rng)


def held_out_pairs() -> list[tuple[str, str]]:
    from dreamer.priors.tiny.captions import HELD_OUT

    return list(HELD_OUT)


def draw_held_out(seed: int) -> list[Draw]:
    """The held-out (colour, shape) pairs, every one, in HELD_OUT's order; the seed only picks which
    quarter is paraphrased and how (as for a random draw)."""
    return _phrase(held_out_pairs(), random.Random(seed))


# ----------------------------------------------------------------------------- provenance and resume


def config_sha(config: str, overrides: list[str]) -> str:
    """The preset resolved with the overrides, hashed without its prompt (a 4D preset is refused)."""
    return provenance_module.config_sha(config, overrides)


def provenance(config: str, overrides: list[str], state: GitState | None = None) -> Provenance:
    return make_provenance(config, overrides, state or git_state())


def run_one(draw: Draw, folder: Path, config: str, overrides: list[str], current: Provenance) -> dict:
    """`dreamer generate` in a child process; {seconds, peak_mb, eval, commit, dirty, config, ...} (read back
    when already done by the same commit and config)."""
    done = read_back(folder, current)
    if done is not None:
        return done
    child = run_generate([draw.prompt, "--config", config, "--out", str(folder), "--overwrite", "--quiet", *overrides])
    eval_path = folder / "eval.json"
    ev = json.loads(eval_path.read_text()) if child.returncode == 0 and eval_path.exists() else None
    result = {"seconds": child.seconds, "peak_mb": child.peak_mb, "eval": ev, "returncode": child.returncode,
              "error": child.error, "draw": asdict(draw), **current.fields()}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(json.dumps(result, indent=2))
    return result


# ----------------------------------------------------------------------------- figures


def figures(result: dict) -> dict:
    """The per-prompt figures of a run; a failed run scores zero (and no success)."""
    ev = result["eval"] or {}
    hits = round((ev.get("r_precision") or 0.0) * ev.get("views", 8))
    vol = ev.get("volume_iou", 0.0)
    return {"volume_iou": vol, "fscore_005": ev.get("fscore_005", 0.0), "chamfer_l1": ev.get("chamfer_l1", 1.0),
            "iou": ev.get("iou", 0.0), "r_views": hits, "success": hits >= SUCCESS_VIEWS and vol >= SUCCESS_VOLUME_IOU,
            "top": ", ".join(sorted(set(ev.get("predicted_prompts") or []))) or (result.get("error") or "failed")}


def truth_views(draw: Draw) -> int | None:
    """Views (of the eval's 8) in which the evaluator reads the ground truth itself as the asked prompt: a
    prompt whose truth scores under SUCCESS_VIEWS cannot succeed whatever is made (the evaluator takes a
    square pyramid seen edge-on for a cone)."""
    from dreamer.eval.metrics import truth_r_precision
    from dreamer.shapes import ObjectSpec

    retrieval = truth_r_precision(ObjectSpec(draw.shape, draw.colour))
    return sum(retrieval.per_view) if retrieval is not None else None  # None: no evaluator


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


# ----------------------------------------------------------------------------- sections of docs/benchmarks.md


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def variant(config: str, overrides: list[str]) -> str:
    """What a section is of: the preset, with its overrides when there are any (`default+prior.weights=DIR`), so
    a candidate measured on the same sample as the preset gets its own section."""
    return "+".join([config, *overrides])


def section_key(preset: str, label: str, seed: int) -> str:
    """One section (and contact sheet) per (preset with its overrides, label, seed)."""
    return f"vocabulary-{slug(preset)}-{label}-s{seed}"


_BLOCK = re.compile(r"<!-- bench:(vocabulary-\S*) -->\n(.*?)<!-- /bench:\1 -->", re.S)
_TITLE = re.compile(r"^## Vocabulary: preset `?([^`\s]+)`? \(([^,)]+)(?:, seed (\d+))?", re.M)
_SEED = re.compile(r"^Command: `.*?--seed[ =](\d+)", re.M)


def written_samples(text: str) -> dict[tuple[str, str, int], str]:
    """(preset, label, seed) -> section name of every vocabulary section in `text` (also those written
    before the seed was part of the name: their seed is read from the command line)."""
    found = {}
    for match in _BLOCK.finditer(text):
        title, seed = _TITLE.search(match.group(2)), _SEED.search(match.group(2))
        if title and (title.group(3) or seed):
            found[(title.group(1), title.group(2).strip(), int(title.group(3) or seed.group(1)))] = match.group(1)
    return found


def existing_section(preset: str, label: str, seed: int) -> str | None:
    """The name of the section already written for (preset, label, seed), or None."""
    text = report.DOC.read_text() if report.DOC.exists() else ""
    key = section_key(preset, label, seed)
    if f"<!-- bench:{key} -->" in text:
        return key
    return written_samples(text).get((preset, label, seed))


def refuse_existing(preset: str, label: str, seed: int) -> None:
    name = existing_section(preset, label, seed)
    if name is not None:
        raise SystemExit(f"error: {report.DOC.name} already has the section {name} for preset {preset!r}, label "
                         f"{label!r}, seed {seed}; reports are never overwritten: draw another --seed "
                         "(or pass --no-write)")


# ----------------------------------------------------------------------------- the command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/vocabulary.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sample", type=int, default=None, help=f"prompts to draw (K, default {DEFAULT_SAMPLE})")
    p.add_argument("--held-out", action="store_true",
                   help="the 18 held-out (colour, shape) pairs (dreamer.priors.tiny.captions.HELD_OUT) instead of "
                        f"a random draw, as a sample of their own (label '{HELD_OUT_LABEL}')")
    p.add_argument("--seed", type=int, required=True,
                   help="the draw's seed (S); with --held-out it picks only the paraphrases")
    p.add_argument("--config", default="default", metavar="NAME",
                   help="preset: any configs/NAME.yaml (also ones added later) or a YAML path (default: default)")
    p.add_argument("--label", default=None, choices=LABELS,
                   help="'tuning' for a sample used to tune, 'report' (default) for one that is reported")
    p.add_argument("--fresh", action="store_true",
                   help="declare the sample fresh: drawn after tuning ended, nothing tuned on it (not with "
                        "--label tuning); only then does the section say so")
    p.add_argument("--out", default="runs/bench-vocabulary",
                   help="folder of the per-prompt runs, resumed from (default: runs/bench-vocabulary)")
    p.add_argument("--no-write", action="store_true",
                   help="print only, leave docs/benchmarks.md alone (summary.json is still written)")
    p.add_argument("overrides", nargs="*", help="key=value config overrides for every run")
    args = p.parse_args(argv)
    if args.held_out and args.sample is not None:
        p.error("--held-out draws the 18 held-out pairs: leave out --sample")
    if args.held_out and args.label is not None:
        p.error(f"--held-out is its own label ('{HELD_OUT_LABEL}'): leave out --label")
    args.label = HELD_OUT_LABEL if args.held_out else (args.label or "report")
    if args.fresh and args.label == "tuning":
        p.error("--fresh and --label tuning contradict each other: a tuning sample is not fresh")
    if args.sample is None and not args.held_out:
        args.sample = DEFAULT_SAMPLE
    return args


def describe(args, n: int, n_pairs: int) -> str:
    """The sample and how fresh it is, in words (the word 'fresh' only when --fresh was given)."""
    if args.held_out:
        sample = (f"the {n} held-out colour × shape pairs (`dreamer.priors.tiny.captions.HELD_OUT`, never in the "
                  f"tiny prior's training data) as a sample of their own, not a random draw; seed {args.seed} "
                  "chose which quarter is paraphrased")
    else:
        sample = (f"K = {n} prompts drawn with seed {args.seed} from the {n_pairs} colour × shape pairs, "
                  "a quarter paraphrased")
    if args.label == "tuning":
        what = "a **tuning sample**: settings were chosen on these prompts, so they overstate a user's result"
    elif args.fresh:
        what = "a **fresh sample, measured after tuning ended** (nothing was tuned on these prompts)"
    else:
        what = ("**not declared as drawn after tuning ended**: these prompts may have been looked at while "
                "tuning, so the figures may overstate a user's result")
    return f"{sample}; {what}"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    current = provenance(args.config, args.overrides)  # validates the preset and the overrides
    measured = variant(args.config, args.overrides)
    if not args.no_write:
        refuse_existing(measured, args.label, args.seed)  # before hours of runs, not after

    draws = draw_held_out(args.seed) if args.held_out else draw_prompts(args.sample, args.seed)
    sample_tag = "held-out" if args.held_out else f"k{args.sample}"
    tag = f"{args.config}-{sample_tag}-s{args.seed}" + ("-" + "-".join(args.overrides) if args.overrides else "")
    root = Path(args.out) / slug(tag.replace("/", "_").replace("=", "_"))
    folders = [root / f"{index:02d}-{draw.prompt.replace(' ', '-')}" for index, draw in enumerate(draws)]
    for folder in folders:  # every result to resume from is checked before any run
        read_back(folder, current)
    rows, all_figures, results = [], [], []
    for index, (draw, folder) in enumerate(zip(draws, folders)):
        result = run_one(draw, folder, args.config, args.overrides, current)
        f = figures(result)
        f["truth_views"] = truth_views(draw)
        results.append(result)
        all_figures.append(f)
        rows.append([draw.prompt + (" *(paraphrase)*" if draw.paraphrase else ""), f["volume_iou"], f["fscore_005"],
                     f["chamfer_l1"], f["iou"], f"{f['r_views']}/8",
                     "n/a" if f["truth_views"] is None else f"{f['truth_views']}/8", f["top"],
                     "yes" if f["success"] else "no",
                     f"{result['seconds']:.0f}", f"{result['peak_mb']:.0f}"])
        print(f"[{index + 1}/{len(draws)}] {draw.prompt:>26}: volume IoU {f['volume_iou']:.3f}  F@0.05 "
              f"{f['fscore_005']:.3f}  R {f['r_views']}/8  {'success' if f['success'] else 'miss'}  "
              f"{result['seconds']:.0f} s  {result['peak_mb']:.0f} MB", flush=True)

    n = len(all_figures)
    mean = {key: sum(f[key] for f in all_figures) / n for key in ("volume_iou", "fscore_005", "chamfer_l1", "iou")}
    success = sum(f["success"] for f in all_figures) / n
    reachable = [f for f in all_figures if (f["truth_views"] or 0) >= SUCCESS_VIEWS]
    reach = (f"the evaluator passes the ground truth itself on {len(reachable)} of {n} prompts; success among those "
             f"{sum(f['success'] for f in reachable) / max(1, len(reachable)):.0%}")
    worst_s = max(r["seconds"] for r in results)
    peak = max(r["peak_mb"] for r in results)
    dirty = current.dirty or any(r.get("dirty", True) for r in results)  # any result made on a dirty tree
    rows.append(["**mean**", mean["volume_iou"], mean["fscore_005"], mean["chamfer_l1"], mean["iou"], "", "",
                 "", f"**{success:.0%}**", f"max {worst_s:.0f}", f"max {peak:.0f}"])
    table = markdown_table(["prompt", "volume IoU", "F-score@0.05", "chamfer L1", "silhouette IoU", "R views",
                            "truth's R views", "evaluator's top prompts", "success", "seconds", "peak MB"], rows)
    print(table)
    print(f"success {success:.0%}, mean volume IoU {mean['volume_iou']:.3f}, mean F@0.05 {mean['fscore_005']:.3f}, "
          f"slowest {worst_s:.0f} s, peak {peak:.0f} MB; {reach}; commit {current.commit}{' (dirty)' if dirty else ''}")
    command = "python bench/vocabulary.py " + " ".join(argv)
    summary = {**current.fields(), "dirty": dirty, "label": args.label, "fresh": args.fresh, "seed": args.seed,
               "held_out": args.held_out, "sample": n, "command": command, "success": success, "mean": mean,
               "slowest_seconds": worst_s, "peak_mb": peak, "reachable": len(reachable),
               "prompts": [{**asdict(d), **f} for d, f in zip(draws, all_figures)]}
    root.mkdir(parents=True, exist_ok=True)
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    if args.no_write:
        return
    refuse_existing(measured, args.label, args.seed)  # another process may have written it meanwhile
    import torch

    from dreamer.export.images import save_image

    key = section_key(measured, args.label, args.seed)
    sheet = torch.cat([contact_row(folder, d) for folder, d in zip(folders, draws)])
    save_image(report.DOC.parent / f"{key}.png", sheet)
    body = (f"Preset `{args.config}`{' with ' + ' '.join(args.overrides) if args.overrides else ''}; "
            f"{describe(args, n, len(all_pairs()))}. Commit `{current.commit}`; dirty: "
            f"{'**yes** (uncommitted changes: the commit alone does not reproduce these figures)' if dirty else 'no'}. "
            "Each prompt is one `dreamer generate` process (training, export, eval); 3D figures are of the exported "
            "model.glb against the ground-truth mesh in the world frame (`dreamer.eval.geometry`). Success: top "
            f"prompt right in ≥ {SUCCESS_VIEWS} of 8 views and volume IoU ≥ {SUCCESS_VOLUME_IOU}. `truth's R views`: "
            "the same reading of the ground truth from the same cameras (under 5, the prompt cannot succeed). "
            f"{TARGETS}\n\n"
            f"**Success {success:.0%}; mean volume IoU {mean['volume_iou']:.3f}; mean F-score@0.05 "
            f"{mean['fscore_005']:.3f}; slowest run {worst_s:.0f} s; peak memory {peak:.0f} MB; {reach}.**"
            f"\n\n{table}\n\n"
            f"![ground truth (left four) and result (right four) per prompt]({key}.png)\n\n"
            "Each row: ground truth at azimuth 0/90/180/270°, then the result from the same cameras, in table order.")
    title = (f"Vocabulary: preset {measured} ({args.label}, seed {args.seed}"
             f"{', fresh' if args.fresh else ''}, commit {current.commit}{', dirty' if dirty else ''})")
    report.write_section(key, title, body, command)


if __name__ == "__main__":
    main()
